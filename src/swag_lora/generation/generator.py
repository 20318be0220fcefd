"""Answer prompts with a run's posterior: :class:`Generator` and :func:`generate`.

A :class:`Generator` holds loaded runs (more than one for the deep ensemble and MultiSWAG) and one
method's members, drawn once (``seed``), so every call sees the same posterior samples. Its
``mode`` is ``"ensemble"`` (one answer per prompt from the members' averaged next-token
distribution, with total, aleatoric and epistemic uncertainty per token and per answer) or
``"sample"`` (each member writes its own answer; the majority answer, its share and the semantic
entropy of the groups). Prompts with reference answers are also judged (exact match, token F1),
and :func:`generate`'s summary then holds the quality of every uncertainty score
(:func:`~swag_lora.generation.quality.summarise_answers`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..bayes.registry import MethodContext
from ..bayes.sampling import SamplingOptions
from ..errors import InvalidSettingError
from ..lm.loading import base_causal_lm
from ..lm.text_encoding import encode_prompts
from ..runs.load import LoadedRun, attach_run, load_run
from ..runs.provenance import provenance
from ..tasks import TextRow
from .answers import MODES, GeneratedAnswer, ensemble_answer, sampled_answer
from .decoding import DecodingOptions, StopTokens, ensemble_decode, member_decode
from .inputs import read_prompts, rows_from_records
from .members import generation_method
from .quality import summarise_answers

__all__ = ["GenerateResult", "Generator", "generate"]


@dataclass
class GenerateResult:
    """What :func:`generate` returns: the answers in input order, and a summary (settings,
    provenance and, when references were given, the quality of answers and uncertainty scores)."""

    answers: list[GeneratedAnswer]
    summary: dict = field(default_factory=dict)


def _runs(runs, allow_base_mismatch: bool, device) -> list[LoadedRun]:
    items = [runs] if isinstance(runs, (str, os.PathLike, LoadedRun)) else list(runs)
    if not items:
        raise InvalidSettingError("give at least one run")
    host = items[0] if isinstance(items[0], LoadedRun) else load_run(items[0], device, allow_base_mismatch)
    return [host] + [r if isinstance(r, LoadedRun) else attach_run(r, host, allow_base_mismatch) for r in items[1:]]


class Generator:
    """A method of one or more runs, ready to answer prompts (members drawn once, from ``seed``)."""

    def __init__(
        self,
        runs: LoadedRun | str | os.PathLike | Sequence,
        method: str = "swag",
        mode: str = "ensemble",
        n_samples: int = 10,
        scale: float = 1.0,
        seed: int = 0,
        dropout: float | None = None,
        max_new_tokens: int = 32,
        batch_size: int = 8,
        do_sample: bool = False,
        temperature: float = 1.0,
        stop_at_newline: bool = True,
        progress: bool = False,
        allow_base_mismatch: bool = False,
        device=None,
    ) -> None:
        if mode not in MODES:
            raise InvalidSettingError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
        self.runs = _runs(runs, allow_base_mismatch, device)
        self.run = self.runs[0]
        sampling = SamplingOptions(n_samples=n_samples, scale=scale, seed=seed)
        self.method = generation_method(method, MethodContext(self.runs, sampling=sampling, dropout=dropout))
        self.mode = mode
        self.tokenizer = self.run.tokenizer
        self.causal = base_causal_lm(self.run.model.lm)
        self.stops = StopTokens.of(self.tokenizer, newline=stop_at_newline)
        self.options = DecodingOptions(max_new_tokens, do_sample, temperature, seed, batch_size)
        self.progress = progress
        self.settings = {"method": method, "mode": mode, **self.method.settings, "members": len(self.method),
                         "max_new_tokens": max_new_tokens, "do_sample": do_sample, "temperature": temperature,
                         "stop_at_newline": stop_at_newline, "runs": [str(r.path) for r in self.runs]}

    @property
    def prompt_form(self) -> str:
        """How ``question`` records are prompted: as the run's task was (``choices`` or ``open``)."""
        return self.run.config.data.prompt_form

    def rows(self, inputs) -> list[TextRow]:
        """Rows from a path (``"-"``: standard input), rows, or records (dicts)."""
        if isinstance(inputs, (str, os.PathLike)):
            return read_prompts(inputs, self.prompt_form)
        return rows_from_records(inputs, self.prompt_form)

    def generate(self, inputs: Iterable | str | os.PathLike) -> list[GeneratedAnswer]:
        """One :class:`~swag_lora.generation.answers.GeneratedAnswer` per input, in input order."""
        rows = self.rows(inputs)
        if not rows:
            return []
        prompts = encode_prompts(rows, self.tokenizer, self.run.config.model.max_length)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        args = (self.causal, self.method.members, prompts, pad, self.stops, self.options, self.progress)
        if self.mode == "ensemble":
            return [ensemble_answer(row, d, self.tokenizer, self.stops) for row, d in zip(rows, ensemble_decode(*args))]
        per_member = member_decode(*args)
        return [sampled_answer(row, [decoded[i] for decoded in per_member], self.tokenizer, self.stops)
                for i, row in enumerate(rows)]


def generate(runs, inputs, **options) -> GenerateResult:
    """Answer ``inputs`` (a path, ``"-"``, rows or records) with :class:`Generator` ``(runs, **options)``;
    the summary holds the settings, the provenance and :func:`~swag_lora.generation.quality.summarise_answers`."""
    generator = Generator(runs, **options)
    answers = generator.generate(inputs)
    summary = {**generator.settings, "n_inputs": len(answers), "quality": summarise_answers(answers),
               "provenance": provenance()}
    return GenerateResult(answers, summary)
