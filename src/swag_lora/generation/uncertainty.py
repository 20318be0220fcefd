"""Uncertainty of generated answers: sequence-level measures of one decoded answer, and the
spread of S sampled answers grouped by meaning.

Per answer (over its generated tokens, the stopping token included; T tokens):

- ``sequence_log_prob`` Σ_t log p̄(token_t), the log-probability of the whole answer;
- ``perplexity`` exp(−mean_t log p̄(token_t));
- ``total``, ``aleatoric``, ``epistemic``: the per-token entropy of p̄, the members' mean entropy
  and their difference (mutual information), each summed (``*_sum``) and averaged (``*_mean``)
  over the tokens. With one member (MAP) the epistemic part is 0 and ``total_mean`` is the mean
  token entropy.

Over S answers (sample-then-decode), answers are grouped by normalised exact match (SQuAD's
normalisation: case, punctuation, articles, white space); the *semantic entropy* is the entropy
of the groups' shares −Σ_g (n_g/S) log(n_g/S) (the discrete estimator of Kuhn et al., ICLR
2023, with exact match standing in for bidirectional entailment), and the majority group gives
the answer and its share.

Scores for ranking answers (higher: less sure) are named in :data:`ENSEMBLE_SCORES` and
:data:`SAMPLE_SCORES`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..metrics.text import normalize_answer
from .decoding import Decoded

__all__ = ["ENSEMBLE_SCORES", "SAMPLE_SCORES", "AnswerGroup", "ensemble_scores", "group_answers", "sample_scores",
           "semantic_entropy", "sequence_measures"]

# score name -> (measure it is, in words); every score is "higher: less sure"
ENSEMBLE_SCORES = {
    "msp": "−log p̄(answer) (maximum sequence probability)",
    "perplexity": "perplexity of the answer under p̄",
    "mean_token_entropy": "mean entropy of p̄ over the answer's tokens (total)",
    "aleatoric": "mean over tokens of the members' mean entropy",
    "epistemic": "mean over tokens of the mutual information",
    "epistemic_sum": "sum over tokens of the mutual information",
}
SAMPLE_SCORES = {
    "semantic_entropy": "entropy of the shares of the answer groups",
    "disagreement": "1 − the majority group's share",
}


def sequence_measures(decoded: Decoded) -> dict[str, float]:
    """The answer-level measures of one decoded answer (see the module docstring)."""
    n = len(decoded.tokens)
    out = {"n_tokens": n, "sequence_log_prob": float(decoded.log_prob.sum())}
    out["perplexity"] = float(math.exp(-decoded.log_prob.mean())) if n else float("nan")
    for name, values in (("total", decoded.total), ("aleatoric", decoded.aleatoric), ("epistemic", decoded.epistemic)):
        out[f"{name}_sum"] = float(values.sum())
        out[f"{name}_mean"] = float(values.mean()) if n else float("nan")
    return out


def ensemble_scores(measures: dict) -> dict[str, float]:
    """The :data:`ENSEMBLE_SCORES` of an answer's measures."""
    return {"msp": -measures["sequence_log_prob"], "perplexity": measures["perplexity"],
            "mean_token_entropy": measures["total_mean"], "aleatoric": measures["aleatoric_mean"],
            "epistemic": measures["epistemic_mean"], "epistemic_sum": measures["epistemic_sum"]}


@dataclass
class AnswerGroup:
    """Answers that mean the same (equal after normalisation): the first one's text, the members
    that wrote them, and their share of all answers."""

    answer: str
    members: list[int]
    share: float

    def to_dict(self) -> dict:
        return {"answer": self.answer, "members": self.members, "share": self.share}


def group_answers(answers: Sequence[str]) -> list[AnswerGroup]:
    """Groups of equal normalised answers, largest first (ties: the group met first)."""
    if not answers:
        raise ValueError("no answers to group")
    groups: dict[str, list[int]] = {}
    for s, answer in enumerate(answers):
        groups.setdefault(normalize_answer(answer), []).append(s)
    ordered = sorted(groups.values(), key=lambda members: (-len(members), members[0]))
    return [AnswerGroup(answers[m[0]], m, len(m) / len(answers)) for m in ordered]


def semantic_entropy(groups: Sequence[AnswerGroup]) -> float:
    """−Σ_g share_g log share_g, in nats (0 when every answer agrees)."""
    return float(-sum(g.share * math.log(g.share) for g in groups if g.share > 0)) + 0.0  # never -0.0


def sample_scores(groups: Sequence[AnswerGroup]) -> dict[str, float]:
    """The :data:`SAMPLE_SCORES` of the groups of one prompt's answers."""
    return {"semantic_entropy": semantic_entropy(groups), "disagreement": 1.0 - groups[0].share}
