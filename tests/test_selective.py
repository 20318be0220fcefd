"""Risk-coverage curves, AURC and its oracle minimum, abstention thresholds."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swag_lora import metrics as M
from swag_lora.metrics.selective import (
    answered,
    aurc,
    coverage_thresholds,
    excess_aurc,
    oracle_aurc,
    random_aurc,
    risk_coverage_curve,
    selective_outcome,
)


def direct_aurc(scores, correct):
    """AURC of a tie-free ranking, straight from the definition."""
    order = np.argsort(-np.asarray(scores))
    wrong = ~np.asarray(correct, dtype=bool)[order]
    return np.mean([wrong[:k].sum() / k for k in range(1, len(order) + 1)])


def test_perfect_ranking_reaches_the_known_minimum():
    correct = np.array([1, 0, 1, 1, 0, 1, 1, 0, 1, 1], dtype=bool)
    scores = np.where(correct, 0.9, 0.3) + np.linspace(0, 0.01, 10)  # every right answer ranked first
    n, e = 10, 3
    minimum = sum((k - (n - e)) / k for k in range(n - e + 1, n + 1)) / n
    assert aurc(scores, correct) == pytest.approx(minimum, abs=1e-12)
    assert oracle_aurc(correct) == pytest.approx(minimum, abs=1e-12)
    assert excess_aurc(scores, correct) == pytest.approx(0.0, abs=1e-12)
    # the reverse ranking is the worst, far above the minimum
    assert aurc(-scores, correct) > minimum + 0.3


def test_oracle_tends_to_the_continuous_formula():
    for r in (0.1, 0.3, 0.6):
        n = 20000
        correct = np.arange(n) >= round(r * n)
        assert oracle_aurc(correct) == pytest.approx(r + (1 - r) * math.log(1 - r), abs=1e-3)
    assert oracle_aurc(np.ones(7, bool)) == 0.0
    assert oracle_aurc(np.zeros(7, bool)) == 1.0


def test_tied_scores_give_the_random_ranking_and_a_flat_curve():
    correct = np.array([1, 1, 0, 1, 0, 1, 1, 1])
    coverage, risk = risk_coverage_curve(np.zeros(8), correct)
    assert np.allclose(coverage, np.arange(1, 9) / 8)
    assert np.allclose(risk, 0.25)
    assert aurc(np.zeros(8), correct) == pytest.approx(random_aurc(correct)) == pytest.approx(0.25)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=1, max_size=7))
def test_ties_are_the_mean_over_orders_within_ties(pairs):
    scores = np.array([s for s, _ in pairs], dtype=float)
    correct = np.array([c for _, c in pairs])
    # brute force: average the tie-free AURC over every order that respects the scores
    values = []
    for perm in itertools.permutations(range(len(pairs))):
        if all(scores[perm[i]] >= scores[perm[i + 1]] for i in range(len(perm) - 1)):
            ranks = np.empty(len(perm))
            ranks[list(perm)] = -np.arange(len(perm))
            values.append(direct_aurc(ranks, correct))
    assert aurc(scores, correct) == pytest.approx(np.mean(values), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=40), st.randoms())
def test_aurc_is_at_least_the_oracle_and_ignores_input_order(pairs, rnd):
    scores = np.array([s for s, _ in pairs])
    correct = np.array([c for _, c in pairs])
    value = aurc(scores, correct)
    assert value >= oracle_aurc(correct) - 1e-12
    perm = list(range(len(pairs)))
    rnd.shuffle(perm)
    assert aurc(scores[perm], correct[perm]) == pytest.approx(value, abs=1e-12)
    if len(set(scores.tolist())) == len(scores):
        assert value == pytest.approx(direct_aurc(scores, correct), abs=1e-12)


def test_summarise_reports_the_confidence_aurc():
    rng = np.random.default_rng(0)
    lp = np.log(rng.dirichlet(np.ones(4), size=(50, 3)))
    labels = rng.integers(0, 4, 50)
    p_bar = np.exp(M.average_log_probs(lp))
    expected = aurc(p_bar.max(1), p_bar.argmax(1) == labels)
    assert M.summarise(lp, labels)["aurc"] == pytest.approx(expected)


def test_thresholds_and_outcomes():
    confidence = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    correct = np.array([1, 1, 1, 0, 1, 0, 0, 1], dtype=bool)
    keep = answered(confidence, min_confidence=0.65)
    assert keep.tolist() == [True] * 4 + [False] * 4
    out = selective_outcome(keep, correct)
    assert out["coverage"] == 0.5 and out["accuracy"] == 0.75 and out["accuracy_all"] == 0.625
    mi = np.array([0.0, 0.2, 0.05, 0.0, 0.3, 0.0, 0.0, 0.0])
    both = answered(confidence, mi, min_confidence=0.65, max_mutual_information=0.1)
    assert both.tolist() == [True, False, True, True] + [False] * 4
    assert selective_outcome(np.zeros(8, bool), correct)["accuracy"] is None
    rows = coverage_thresholds(confidence, correct, (1.0, 0.5, 0.25))
    assert [r["threshold"] for r in rows] == [0.3, 0.7, 0.9]
    assert [r["coverage"] for r in rows] == [1.0, 0.5, 0.25]
    assert rows[2]["accuracy"] == 1.0
    tied = coverage_thresholds(np.array([0.5, 0.5, 0.5, 0.1]), [1, 0, 1, 1], (0.5,))
    assert tied[0]["coverage"] == 0.75  # ties answered together: at least the target
    with pytest.raises(ValueError, match="give min_confidence"):
        answered(confidence)
    with pytest.raises(ValueError, match="scores for"):
        aurc([0.1, 0.2], [True])


def test_the_report_table_uses_the_same_tempered_predictive_as_metrics_json(tmp_path):
    """A ``+ts`` (or ``temperature``) row's AURC in the report's selective table is its
    metrics.json AURC: the table tempers p̄ exactly as the evaluation did."""
    from swag_lora.evaluation.store import write_evaluation
    from swag_lora.report.records import find_records
    from swag_lora.report.selective import selective_entry

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 3, 4)) * rng.uniform(0.2, 4.0, size=(200, 1, 1))  # questions of varied sharpness
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    labels = rng.integers(0, 4, size=200)
    temperature = 3.0
    record = {"task": "t", "split": "test", "method": "swag+ts", "run": "r", **M.summarise(log_probs, labels,
                                                                                          temperature=temperature)}
    write_evaluation(tmp_path / "t" / "test" / "swag+ts", record, log_probs, labels, [str(i) for i in range(200)])
    (saved,) = find_records([tmp_path])
    assert selective_entry(saved)["aurc"] == pytest.approx(record["aurc"], abs=1e-12)
    untempered = M.summarise(log_probs, labels)["aurc"]
    assert abs(untempered - record["aurc"]) > 1e-4  # the temperature changes the ranking: not a vacuous check
