"""Metrics of generated answers: SQuAD exact match and F1 on SQuAD's own kind of examples, the
prediction-rejection ratio against brute force and against numbers lm-polygraph 0.7.0 gives,
AUROC and AURC of scores against brute force, and semantic grouping on a constructed case."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from swag_lora.generation.answers import GeneratedAnswer
from swag_lora.generation.quality import summarise_answers
from swag_lora.generation.uncertainty import group_answers, sample_scores, semantic_entropy
from swag_lora.metrics import aurc, error_detection_auroc
from swag_lora.metrics.rejection import prediction_rejection_ratio, rejection_area, rejection_curve
from swag_lora.metrics.text import exact_match, normalize_answer, token_f1


# ------------------------------------------------------------------ exact match and F1
@pytest.mark.parametrize("answer, references, em, f1", [
    ("Denver Broncos", ["Denver Broncos", "The Denver Broncos"], 1.0, 1.0),
    ("the Denver Broncos!", ["Denver Broncos"], 1.0, 1.0),  # case, punctuation and articles do not count
    ("Broncos", ["Denver Broncos"], 0.0, 2 * 1.0 * 0.5 / 1.5),  # precision 1, recall 1/2
    ("Denver Broncos won", ["Denver Broncos"], 0.0, 2 * (2 / 3) * 1.0 / (2 / 3 + 1)),
    ("Santa Clara, California", ["Levi's Stadium", "Santa Clara"], 0.0, 0.8),  # the best reference counts
    ("Carolina Panthers", ["Denver Broncos"], 0.0, 0.0),
    ("the", ["a"], 1.0, 1.0),  # both normalise to nothing (SQuAD v2)
    ("the", ["Denver"], 0.0, 0.0),
])
def test_exact_match_and_f1_as_squad_scores_them(answer, references, em, f1):
    assert exact_match(answer, references) == em
    assert token_f1(answer, references) == pytest.approx(f1)


def test_normalisation_is_squads():
    assert normalize_answer("  The  Quick, brown-fox! AN apple ") == "quick brownfox apple"
    with pytest.raises(ValueError):
        exact_match("x", [])


# ------------------------------------------------------------------ prediction rejection
def brute_force_area(order: list[int], quality: np.ndarray, n_rejected: int) -> float:
    """Mean quality kept, rejecting answers in ``order`` (most uncertain first), k = 0..n_rejected − 1."""
    kept = [np.mean(quality[order[k:]]) for k in range(n_rejected)]
    return float(np.mean(kept))


@pytest.mark.parametrize("max_rejection", [1.0, 0.5])
def test_prr_against_brute_force_over_every_order(max_rejection):
    rng = np.random.default_rng(0)
    u = rng.permutation(7).astype(float) + rng.random(7) * 0.1
    q = rng.random(7).round(2)
    n = len(q)
    k = int(max_rejection * n)
    order = list(np.argsort(-u))
    area = brute_force_area(order, q, k)
    assert rejection_area(u, q, max_rejection) == pytest.approx(area)
    every = [brute_force_area(list(p), q, k) for p in itertools.permutations(range(n))]
    random, oracle = float(np.mean(every)), max(every)  # the expectation over orders, and the best order
    assert random == pytest.approx(q.mean())
    assert prediction_rejection_ratio(u, q, max_rejection) == pytest.approx((area - random) / (oracle - random))
    fraction, kept = rejection_curve(u, q, max_rejection)
    assert fraction[0] == 0 and len(fraction) == k and kept[0] == pytest.approx(q.mean())


# Numbers from lm-polygraph 0.7.0's PredictionRejectionArea (its normalised quality) and its
# PRR formula (area − random) / (oracle − random), with the random area averaged over every order
# of the answers; its 1000-shuffle estimate of random gave PRRs within 0.012 of these.
LM_POLYGRAPH = {
    "binary6": ([0.9, 0.1, 0.5, 0.3, 0.7, 0.2], [0, 1, 0, 1, 1, 1],
                {1.0: (0.8694444444444445, 0.8295454545454547), 0.5: (0.7388888888888889, 0.4642857142857144)}),
    "f1_7": ([2.0, 0.5, 1.5, 0.1, 3.0, 0.7, 1.1], [0.2, 0.3, 0.5, 0.9, 0.0, 0.75, 1.0],
             {1.0: (0.6724659863945579, 0.5904527624493057), 0.5: (0.6065873015873016, 1.0)}),
    "binary8": ([0.35, 0.8, 0.1, 0.95, 0.05, 0.55, 0.2, 0.6], [1, 0, 0, 1, 1, 1, 1, 0],
                {1.0: (0.697470238095238, 0.26684931506849285), 0.5: (0.6657738095238095, 0.2424778761061944)}),
}


@pytest.mark.parametrize("case", sorted(LM_POLYGRAPH))
def test_prr_matches_lm_polygraph(case):
    u, q, expected = LM_POLYGRAPH[case]
    q = np.asarray(q, dtype=float)
    normalised = (q - q.min()) / (q.max() - q.min())  # lm-polygraph rescales quality to [0, 1]
    for max_rejection, (area, prr) in expected.items():
        assert rejection_area(u, normalised, max_rejection) == pytest.approx(area, abs=1e-12)
        assert prediction_rejection_ratio(u, q, max_rejection) == pytest.approx(prr, abs=1e-12)


def test_prr_full_range_is_one_minus_aurc_and_ignores_input_order_and_ties():
    rng = np.random.default_rng(1)
    u = rng.integers(0, 4, size=40).astype(float)  # many ties
    correct = rng.random(40) < 0.6
    assert rejection_area(u, correct) == pytest.approx(1 - aurc(-u, correct))
    perm = rng.permutation(40)
    assert prediction_rejection_ratio(u[perm], correct[perm]) == pytest.approx(prediction_rejection_ratio(u, correct))
    assert prediction_rejection_ratio(np.zeros(40), correct) == pytest.approx(0.0, abs=1e-12)  # constant: random
    assert prediction_rejection_ratio(-correct.astype(float), correct) == pytest.approx(1.0)  # the oracle
    assert prediction_rejection_ratio(u, np.ones(40)) is None


def test_auroc_and_aurc_of_scores_against_brute_force():
    rng = np.random.default_rng(2)
    u = rng.random(30)
    correct = rng.random(30) < 0.5
    pairs = [(a > b) + 0.5 * (a == b) for a in u[~correct] for b in u[correct]]
    assert error_detection_auroc(u, correct) == pytest.approx(np.mean(pairs))
    order = np.argsort(u)  # surest first
    risks = [np.mean(~correct[order[:k]]) for k in range(1, 31)]
    assert aurc(-u, correct) == pytest.approx(np.mean(risks))


# ------------------------------------------------------------------ grouping and summaries
def test_answers_group_by_normalised_exact_match_and_semantic_entropy_counts_groups():
    answers = ["The heart", "heart.", "lungs", "Heart", "the lungs", "liver"]
    groups = group_answers(answers)
    assert [(g.answer, g.members) for g in groups] == [("The heart", [0, 1, 3]), ("lungs", [2, 4]), ("liver", [5])]
    shares = [3 / 6, 2 / 6, 1 / 6]
    assert [g.share for g in groups] == pytest.approx(shares)
    assert semantic_entropy(groups) == pytest.approx(-sum(p * math.log(p) for p in shares))
    assert sample_scores(groups) == pytest.approx({"semantic_entropy": semantic_entropy(groups),
                                                   "disagreement": 0.5})
    one = group_answers(["Paris", "paris", "PARIS!"])
    assert len(one) == 1 and semantic_entropy(one) == 0.0 and str(semantic_entropy(one)) == "0.0"
    # a tie between groups goes to the group met first
    assert group_answers(["b", "a", "a", "b"])[0].answer == "b"


def test_summary_of_answers_with_references():
    def answer(i, text, score, refs=("right",)):
        from swag_lora.metrics.text import exact_match, token_f1

        return GeneratedAnswer(str(i), "p", "ensemble", text, {}, {"msp": score, "bad": -score}, references=refs,
                               exact_match=exact_match(text, refs), f1=token_f1(text, refs))

    answers = [answer(0, "right", 0.1), answer(1, "wrong", 0.9), answer(2, "right", 0.2), answer(3, "right wrong", 0.5)]
    summary = summarise_answers(answers)
    assert summary["n"] == 4 and summary["accuracy"] == 0.5 and summary["f1"] == pytest.approx((1 + 0 + 1 + 2 / 3) / 4)
    assert summary["scores"]["msp"]["auroc"] == 1.0 and summary["scores"]["bad"]["auroc"] == 0.0
    assert summary["scores"]["msp"]["prr"] == pytest.approx(1.0)
    assert summary["scores"]["msp"]["aurc"] == pytest.approx(summary["aurc_oracle"])
    unjudged = GeneratedAnswer("x", "p", "ensemble", "a", {}, {"msp": 1.0})
    assert summarise_answers([unjudged]) == {"n": 0}
