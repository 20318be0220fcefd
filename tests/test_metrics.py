"""Metrics against independent references and hand-computed cases."""

import math

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import multiclass_calibration_error

from swag_lora import metrics as M


def random_probs(n, c, seed=0, sharp=3.0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c)) * sharp
    p = np.exp(logits - logits.max(1, keepdims=True))
    return p / p.sum(1, keepdims=True), rng.integers(0, c, size=n)


@pytest.mark.parametrize("n_bins", [10, 15, 20])
def test_ece_matches_torchmetrics(n_bins):
    p, y = random_probs(2000, 4, seed=n_bins)
    # torchmetrics puts a confidence of exactly 1 in an extra bin; these have none on an edge
    assert p.max(1).max() < 1.0
    ref = multiclass_calibration_error(torch.tensor(p), torch.tensor(y), num_classes=4, n_bins=n_bins, norm="l1")
    assert M.expected_calibration_error(p, y, n_bins) == pytest.approx(ref.item(), abs=1e-6)
    ref_max = multiclass_calibration_error(torch.tensor(p), torch.tensor(y), num_classes=4, n_bins=n_bins, norm="max")
    assert M.maximum_calibration_error(p, y, n_bins) == pytest.approx(ref_max.item(), abs=1e-6)


def test_ece_hand_computed_with_edges_and_certainty():
    # confidences 1.0 (correct), 1.0 (wrong), 0.5 exactly on the 2-bin edge (correct), 0.3->0.7 (wrong)
    p = np.array([[1.0, 0.0], [1.0, 0.0], [0.5, 0.5], [0.3, 0.7]])
    y = np.array([0, 1, 0, 0])
    # 2 bins: [0, .5] holds the 0.5 (acc 1, conf .5); (.5, 1] holds 1, 1, .7 (acc 1/3, conf 2.7/3)
    expected = 1 / 4 * abs(1 - 0.5) + 3 / 4 * abs(1 / 3 - 2.7 / 3)
    assert M.expected_calibration_error(p, y, n_bins=2) == pytest.approx(expected)
    assert M.maximum_calibration_error(p, y, n_bins=2) == pytest.approx(max(0.5, abs(1 / 3 - 0.9)))
    assert list(M.confidence_bins([0.0, 0.5, 0.5000001, 1.0], 2)) == [0, 0, 1, 1]


def test_nll_brier_accuracy_hand_computed():
    p = np.array([[0.7, 0.2, 0.1], [0.2, 0.2, 0.6]])
    y = np.array([0, 1])
    assert M.accuracy(p, y) == 0.5
    assert M.negative_log_likelihood(np.log(p), y) == pytest.approx(-(math.log(0.7) + math.log(0.2)) / 2)
    brier = ((0.3**2 + 0.2**2 + 0.1**2) + (0.2**2 + 0.8**2 + 0.6**2)) / 2
    assert M.brier_score(p, y) == pytest.approx(brier)


def test_average_log_probs_is_log_of_mean_probability_in_float64():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(5, 7, 4)) * 30  # extreme logits: naive exp would underflow
    lp = logits - np.logaddexp.reduce(logits, axis=2, keepdims=True)
    got = M.average_log_probs(lp.astype(np.float32))
    ref = np.log(np.mean(np.exp(lp.astype(np.float32).astype(np.float64)), axis=1))
    finite = np.isfinite(ref)
    np.testing.assert_allclose(got[finite], ref[finite], rtol=1e-10)
    assert np.all(np.isfinite(got))  # log-sum-exp keeps what exp(.) underflows


def test_absent_choices_are_minus_inf_and_ignored():
    with np.errstate(divide="ignore"):
        lp = np.log(np.array([[[0.5, 0.5, 0.0]], [[0.2, 0.3, 0.5]]]))
    with np.errstate(divide="ignore"):
        bar = M.average_log_probs(lp)
    assert np.isneginf(bar[0, 2])
    assert list(M.num_choices(lp)) == [2, 3]
    s = M.summarise(lp, [0, 2])
    applicable = {k: v for k, v in s.items() if v is not None}  # error AUROCs: two right answers, nothing to rank
    assert {k for k in s if k not in applicable} <= set(M.error_detection(lp, [0, 2]))
    assert np.isfinite(list(applicable.values())).all()
    # normalised entropy: a uniform answer over its own choices has entropy 1
    assert M.predictive_entropy(np.exp(bar), M.num_choices(lp))[0] == pytest.approx(1.0)


def test_mutual_information_decomposition():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(50, 6, 4))
    lp = logits - np.logaddexp.reduce(logits, axis=2, keepdims=True)
    p_bar = np.exp(M.average_log_probs(lp))
    total = M.predictive_entropy(p_bar)
    aleatoric = M.expected_entropy(lp)
    mi = M.mutual_information(lp)
    np.testing.assert_allclose(mi, total - aleatoric, atol=1e-12)
    assert (mi >= 0).all()
    # brute-force reference for one example
    ps = np.exp(lp[0])
    h = lambda q: -(q * np.log(q)).sum()  # noqa: E731
    assert total[0] == pytest.approx(h(ps.mean(0)))
    assert aleatoric[0] == pytest.approx(np.mean([h(q) for q in ps]))
    # one member: no epistemic part
    assert np.allclose(M.mutual_information(lp[:, :1]), 0.0)


def test_summarise_uses_one_averaged_predictive_for_accuracy_too():
    # member 0 is confidently wrong, member 1 right: the averaged probabilities decide
    p0 = np.array([[0.05, 0.95]])
    p1 = np.array([[0.9, 0.1]])
    lp = np.log(np.stack([p0, p1], axis=1))
    s = M.summarise(lp, [0])
    # mean probs: [0.475, 0.525] -> predicts class 1 -> wrong
    assert s["acc"] == 0.0
    assert s["nll"] == pytest.approx(-math.log(0.475))


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="labels"):
        M.accuracy(np.ones((3, 2)) / 2, [0, 1])
    with pytest.raises(ValueError, match="N, S, C"):
        M.average_log_probs(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="n_bins"):
        M.confidence_bins([0.5], 0)


def brute_force_auroc(s_in, s_out):
    wins = sum((o > i) + 0.5 * (o == i) for o in s_out for i in s_in)
    return wins / (len(s_in) * len(s_out))


def brute_force_ap(s_in, s_out):
    """Mean over OOD examples of the precision at the threshold that first admits each (ties together)."""
    precisions = []
    for o in s_out:
        admitted_out = sum(x >= o for x in s_out)
        admitted_in = sum(x >= o for x in s_in)
        precisions.append(admitted_out / (admitted_out + admitted_in))
    return float(np.mean(precisions))


def test_auroc_and_average_precision_against_brute_force():
    rng = np.random.default_rng(3)
    s_in = np.round(rng.normal(0, 1, 60), 1)  # rounding makes ties
    s_out = np.round(rng.normal(0.8, 1, 40), 1)
    assert M.auroc(s_in, s_out) == pytest.approx(brute_force_auroc(s_in, s_out))
    assert M.average_precision(s_in, s_out) == pytest.approx(brute_force_ap(s_in, s_out))


def test_planted_perfect_and_reversed_ood_scores():
    s_in, s_out = np.linspace(0, 1, 30), np.linspace(2, 3, 10)
    assert M.auroc(s_in, s_out) == pytest.approx(1.0, abs=1e-12)
    assert M.average_precision(s_in, s_out) == pytest.approx(1.0, abs=1e-12)
    assert M.auroc(s_out, s_in) == pytest.approx(0.0, abs=1e-12)
    fpr, tpr = M.roc_curve(s_in, s_out)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1


def test_error_detection_auroc_is_the_pairwise_probability():
    """AUROC of telling wrong answers from right ones = P(u_wrong > u_right) + ½ P(tie), by brute force
    over every (wrong, right) pair; None when there is nothing to tell apart."""
    rng = np.random.default_rng(3)
    u = np.round(rng.normal(size=60), 1)  # ties on purpose
    correct = rng.random(60) < 0.6
    wrong, right = u[~correct], u[correct]
    brute = np.mean([(w > r) + 0.5 * (w == r) for w in wrong for r in right])
    assert M.error_detection_auroc(u, correct) == pytest.approx(brute, abs=1e-12)
    assert M.error_detection_auroc(u, np.ones(60, bool)) is None
    logits = rng.normal(size=(80, 2, 4)) * 3
    lp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    labels = rng.integers(0, 4, size=80)
    out = M.error_detection(lp, labels)
    p_bar = np.exp(M.average_log_probs(lp))
    ok = p_bar.argmax(1) == labels
    assert out["auroc_err_confidence"] == pytest.approx(M.error_detection_auroc(-p_bar.max(1), ok))
    assert out["auroc_err_mi"] == pytest.approx(M.error_detection_auroc(M.mutual_information(lp), ok))
    assert M.error_detection(lp[:, :1], labels)["auroc_err_mi"] is None
    assert set(out) <= set(M.summarise(lp, labels))
