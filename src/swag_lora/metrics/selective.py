"""Selective prediction: answer only the questions a model is sure of, and measure the trade-off.

Pure functions on arrays (no model). A *score* ranks questions from most to least sure (the
confidence max p̄, or minus the mutual information); ``correct`` says which answers are right.
Answering the k most sure of N questions has *coverage* k/N and *risk* (error rate among the
answered) errors(k)/k; the risk-coverage curve runs over k = 1..N and AURC is its mean.

Ties are handled as the expectation over a random order within each group of tied scores: the
errors counted at k inside a tie group grow linearly across it. So the curve does not depend on
the order of the input, and a score that is the same for every question (e.g. the mutual
information of a single model, identically 0) gives risk = overall error rate at every
coverage, the AURC of a random ranking.

The smallest AURC for a given set of right and wrong answers is that of the *oracle* ranking
(every right answer before every wrong one), :func:`oracle_aurc`; E-AURC = AURC − oracle AURC
compares rankings across models of different accuracy (Geifman et al., ICLR 2019).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "answered",
    "aurc",
    "coverage_thresholds",
    "excess_aurc",
    "expected_prefix_sums",
    "oracle_aurc",
    "random_aurc",
    "risk_coverage_curve",
    "selective_outcome",
]


def _arrays(scores, correct) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    c = np.asarray(correct).reshape(-1)
    if c.dtype != bool:
        if not np.isin(c, (0, 1)).all():
            raise ValueError("correct must hold booleans or 0/1")
        c = c.astype(bool)
    if s.shape != c.shape:
        raise ValueError(f"{s.shape[0]} scores for {c.shape[0]} answers")
    if s.size == 0:
        raise ValueError("selective prediction needs at least one question")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    return s, c


def expected_prefix_sums(scores, values) -> np.ndarray:
    """Sums of ``values`` over the k highest ``scores``, for k = 1..N.

    Within a group of tied scores the values are spread evenly (their expectation under a
    random order of the group), so the result is the same for any order of the input.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    n = s.size
    order = np.argsort(-s, kind="mergesort")
    s_sorted, v_sorted = s[order], v[order]
    # group boundaries of tied scores: [starts[g], ends[g])
    new_group = np.r_[True, s_sorted[1:] != s_sorted[:-1]]
    starts = np.flatnonzero(new_group)
    ends = np.r_[starts[1:], n]
    before = np.r_[0.0, np.cumsum(v_sorted)][starts]
    group_sums = np.add.reduceat(v_sorted, starts)
    g = np.cumsum(new_group) - 1
    k = np.arange(1, n + 1, dtype=np.float64)
    return before[g] + (k - starts[g]) * group_sums[g] / (ends - starts)[g]


def risk_coverage_curve(scores, correct) -> tuple[np.ndarray, np.ndarray]:
    """Coverage k/N and risk errors(k)/k for k = 1..N, answering the highest scores first.

    Within a group of tied scores the errors are spread evenly (their expectation under a
    random order), so the result is the same for any order of the input.
    """
    s, c = _arrays(scores, correct)
    k = np.arange(1, s.size + 1, dtype=np.float64)
    return k / s.size, expected_prefix_sums(s, ~c) / k


def aurc(scores, correct) -> float:
    """Area under the risk-coverage curve: the mean risk over coverages 1/N, 2/N, ..., 1."""
    _, risk = risk_coverage_curve(scores, correct)
    return float(risk.mean())


def oracle_aurc(correct) -> float:
    """The smallest AURC any ranking of these answers can have: right answers all first.

    With N answers of which E are wrong, risk(k) = max(0, k − (N − E)) / k; for large N this
    tends to r + (1 − r)·ln(1 − r) with r = E/N.
    """
    c = np.asarray(correct).reshape(-1).astype(bool)
    if c.size == 0:
        raise ValueError("selective prediction needs at least one question")
    n, n_right = c.size, int(c.sum())
    k = np.arange(1, n + 1, dtype=np.float64)
    return float((np.maximum(k - n_right, 0.0) / k).mean())


def excess_aurc(scores, correct) -> float:
    """E-AURC = AURC − oracle AURC (≥ 0; 0 for a ranking with every right answer first)."""
    return aurc(scores, correct) - oracle_aurc(correct)


def random_aurc(correct) -> float:
    """The AURC of a ranking that knows nothing (all scores tied): the error rate."""
    c = np.asarray(correct).reshape(-1).astype(bool)
    return float(1.0 - c.mean())


def answered(
    confidence=None,
    mutual_information=None,
    min_confidence: float | None = None,
    max_mutual_information: float | None = None,
) -> np.ndarray:
    """Which questions to answer: confidence ≥ ``min_confidence`` and mutual information
    ≤ ``max_mutual_information`` (a threshold that is ``None`` is not applied)."""
    if min_confidence is None and max_mutual_information is None:
        raise ValueError("give min_confidence, max_mutual_information or both")
    keep = None
    if min_confidence is not None:
        if confidence is None:
            raise ValueError("min_confidence needs the confidences")
        keep = np.asarray(confidence, dtype=np.float64) >= min_confidence
    if max_mutual_information is not None:
        if mutual_information is None:
            raise ValueError("max_mutual_information needs the mutual information")
        mi_ok = np.asarray(mutual_information, dtype=np.float64) <= max_mutual_information
        keep = mi_ok if keep is None else keep & mi_ok
    return keep


def selective_outcome(keep, correct) -> dict:
    """Coverage of the answered questions and their accuracy (None when none is answered)."""
    keep = np.asarray(keep, dtype=bool).reshape(-1)
    c = np.asarray(correct).reshape(-1).astype(bool)
    if keep.shape != c.shape:
        raise ValueError(f"{keep.shape[0]} answer flags for {c.shape[0]} questions")
    n_answered = int(keep.sum())
    return {
        "n": int(c.size),
        "answered": n_answered,
        "coverage": n_answered / c.size if c.size else float("nan"),
        "accuracy": float(c[keep].mean()) if n_answered else None,
        "accuracy_all": float(c.mean()) if c.size else None,
    }


def coverage_thresholds(scores, correct, coverages: Sequence[float] = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)) -> list[dict]:
    """For each target coverage, the threshold on ``scores`` that answers at least that share of
    the questions (answer when score ≥ threshold), with the coverage and accuracy it gives.

    Ties can make the coverage larger than the target; it is reported as reached.
    """
    s, c = _arrays(scores, correct)
    desc = np.sort(s)[::-1]
    rows = []
    for target in coverages:
        if not 0.0 < target <= 1.0:
            raise ValueError(f"coverage must be in (0, 1], got {target}")
        k = max(1, math.ceil(target * s.size - 1e-9))
        threshold = float(desc[k - 1])
        outcome = selective_outcome(s >= threshold, c)
        rows.append({"target_coverage": float(target), "threshold": threshold, **outcome})
    return rows
