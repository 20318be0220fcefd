"""Correctness of generated answers against reference answers, as the SQuAD evaluation scores it.

An answer is normalised (lower case, punctuation and the articles a/an/the removed, white space
collapsed: SQuAD v1.1's ``normalize_answer``); *exact match* is whether a normalised answer
equals a normalised reference, and *token F1* the harmonic mean of precision and recall of their
bags of words. Both take the best over the references. As in SQuAD v2, an answer or reference
that normalises to nothing has F1 1 when both are empty and 0 otherwise.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

__all__ = ["exact_match", "normalize_answer", "token_f1"]

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (SQuAD's normalisation)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _references(references: str | Sequence[str]) -> list[str]:
    refs = [references] if isinstance(references, str) else list(references)
    if not refs:
        raise ValueError("no reference answers to compare with")
    return refs


def exact_match(answer: str, references: str | Sequence[str]) -> float:
    """1.0 when the normalised answer equals a normalised reference, else 0.0."""
    normalised = normalize_answer(answer)
    return float(any(normalised == normalize_answer(r) for r in _references(references)))


def _f1(answer: str, reference: str) -> float:
    a, r = normalize_answer(answer).split(), normalize_answer(reference).split()
    if not a or not r:
        return float(a == r)
    common = sum((Counter(a) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(a), common / len(r)
    return 2 * precision * recall / (precision + recall)


def token_f1(answer: str, references: str | Sequence[str]) -> float:
    """The best token F1 of the answer against any reference."""
    return max(_f1(answer, r) for r in _references(references))
