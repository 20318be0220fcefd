"""How good generated answers and their uncertainties are, on prompts with reference answers.

Correctness: normalised exact match and token F1 (:mod:`swag_lora.metrics.text`), averaged as
``accuracy`` and ``f1``. For every uncertainty score (higher: less sure): the AUROC of telling
wrong answers (exact match 0) from right ones (:func:`~swag_lora.metrics.misclassification.error_detection_auroc`),
the PRR with exact match as the quality over the full rejection range and up to half rejected
(``prr``, ``prr_50``) and with F1 as the quality (``prr_f1``) (:mod:`swag_lora.metrics.rejection`),
and the AURC of answering the surest first (:func:`~swag_lora.metrics.selective.aurc`; risk = 1 − exact match).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..metrics.misclassification import error_detection_auroc
from ..metrics.rejection import prediction_rejection_ratio
from ..metrics.selective import aurc, oracle_aurc
from .answers import GeneratedAnswer

__all__ = ["score_quality", "summarise_answers"]


def score_quality(uncertainty, exact, f1) -> dict[str, float | None]:
    """AUROC, PRR (full range, up to 50%, and with F1 quality) and AURC of one uncertainty score."""
    u = np.asarray(uncertainty, dtype=np.float64)
    correct = np.asarray(exact, dtype=np.float64) > 0.5
    return {
        "auroc": error_detection_auroc(u, correct),
        "prr": prediction_rejection_ratio(u, exact, 1.0),
        "prr_50": prediction_rejection_ratio(u, exact, 0.5),
        "prr_f1": prediction_rejection_ratio(u, f1, 1.0),
        "aurc": aurc(-u, correct),
    }


def summarise_answers(answers: Sequence[GeneratedAnswer]) -> dict:
    """``n``, ``accuracy`` (mean exact match), ``f1`` (mean token F1), the oracle AURC, and per score
    name :func:`score_quality`, over the answers that came with references (``{"n": 0}`` if none)."""
    judged = [a for a in answers if a.exact_match is not None]
    if not judged:
        return {"n": 0}
    exact = np.array([a.exact_match for a in judged])
    f1 = np.array([a.f1 for a in judged])
    out = {"n": len(judged), "accuracy": float(exact.mean()), "f1": float(f1.mean()),
           "aurc_oracle": oracle_aurc(exact > 0.5), "scores": {}}
    for name in judged[0].scores:
        values = np.array([a.scores[name] for a in judged], dtype=np.float64)
        if np.isnan(values).any():
            continue
        out["scores"][name] = score_quality(values, exact, f1)
    return out
