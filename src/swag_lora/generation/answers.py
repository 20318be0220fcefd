"""Generated answers as records: the text, its uncertainty, and its correctness when the prompt
came with reference answers.

:func:`ensemble_answer` turns one ensemble-decoded answer into a :class:`GeneratedAnswer` with the
answer-level measures and per-token detail; :func:`sampled_answer` turns the S answers of
sample-then-decode into one, the majority group's answer, with the groups and each member's
answer. ``to_dict`` is the JSON line ``swag-lora generate`` writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..metrics.text import exact_match, token_f1
from ..tasks import TextRow
from .decoding import Decoded, StopTokens
from .uncertainty import ensemble_scores, group_answers, sample_scores, sequence_measures

__all__ = ["MODES", "GeneratedAnswer", "answer_text", "ensemble_answer", "sampled_answer"]

MODES = ("ensemble", "sample")


def answer_text(tokenizer, decoded: Decoded, stops: StopTokens) -> str:
    """The answer's text: its tokens but an end-of-sequence token, up to the first newline,
    without surrounding white space."""
    ids = [t for t in decoded.tokens if t not in stops.eos]
    return tokenizer.decode(ids, skip_special_tokens=True).split("\n")[0].strip()


@dataclass
class GeneratedAnswer:
    """One prompt's answer and how sure the method is of it.

    ``measures`` are the answer-level numbers (:func:`~swag_lora.generation.uncertainty.sequence_measures`
    in ensemble mode; the groups' entropy and shares in sample mode) and ``scores`` the uncertainty
    scores for ranking answers (higher: less sure). ``tokens`` (ensemble mode) holds per token its
    text, log p̄, total, aleatoric and epistemic uncertainty; ``samples`` and ``groups`` (sample
    mode) each member's answer and the groups of equal answers. With references, ``exact_match``
    and ``f1`` say how right it is."""

    id: str
    prompt: str
    mode: str
    answer: str
    measures: dict
    scores: dict
    stop: str | None = None
    tokens: dict | None = None
    samples: list[dict] | None = None
    groups: list[dict] | None = None
    references: tuple[str, ...] = ()
    exact_match: float | None = None
    f1: float | None = None

    def to_dict(self, with_tokens: bool = True) -> dict:
        out = {"id": self.id, "prompt": self.prompt, "mode": self.mode, "answer": self.answer}
        if self.stop is not None:
            out["stop"] = self.stop
        out.update(measures=self.measures, scores=self.scores)
        if self.tokens is not None and with_tokens:
            out["tokens"] = self.tokens
        if self.samples is not None:
            out.update(samples=self.samples, groups=self.groups)
        if self.references:
            out.update(references=list(self.references), exact_match=self.exact_match, f1=self.f1)
        return out


def _judged(row: TextRow, answer: str) -> dict:
    if not row.answers:
        return {}
    return {"references": tuple(row.answers), "exact_match": exact_match(answer, row.answers),
            "f1": token_f1(answer, row.answers)}


def ensemble_answer(row: TextRow, decoded: Decoded, tokenizer, stops: StopTokens) -> GeneratedAnswer:
    """The record of one ensemble-decoded answer."""
    text = answer_text(tokenizer, decoded, stops)
    measures = sequence_measures(decoded)
    tokens = {"text": [tokenizer.decode([t]) for t in decoded.tokens],
              "log_prob": decoded.log_prob.tolist(), "total": decoded.total.tolist(),
              "aleatoric": decoded.aleatoric.tolist(), "epistemic": decoded.epistemic.tolist()}
    return GeneratedAnswer(row.id, row.prompt, "ensemble", text, measures, ensemble_scores(measures),
                           stop=decoded.stop, tokens=tokens, **_judged(row, text))


def sampled_answer(row: TextRow, decoded: Sequence[Decoded], tokenizer, stops: StopTokens) -> GeneratedAnswer:
    """The record of S members' answers to one prompt: the majority group's answer."""
    texts = [answer_text(tokenizer, d, stops) for d in decoded]
    groups = group_answers(texts)
    scores = sample_scores(groups)
    measures = {"n_samples": len(texts), "n_groups": len(groups), "majority_share": groups[0].share,
                "semantic_entropy": scores["semantic_entropy"]}
    samples = [{"answer": t, "sequence_log_prob": float(d.log_prob.sum()), "stop": d.stop}
               for t, d in zip(texts, decoded)]
    answer = groups[0].answer
    return GeneratedAnswer(row.id, row.prompt, "sample", answer, measures, scores, samples=samples,
                           groups=[g.to_dict() for g in groups], **_judged(row, answer))
