"""The data an evaluation runs on: which task and split (:class:`EvalSpec`), loaded and encoded
for a run's scorer (:class:`EvalData`).

The number of choice slots a run produces for a dataset is decided here and nowhere else
(:func:`choice_slots`): a letter-mode run has a fixed set of answer letters; a cloze run widens
to the data's largest number of choices. The collator carries it to the model; the shared
model is never changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidSettingError
from ..lm.encoding import MultipleChoiceCollator, encode_rows
from ..runs.build import load_split
from ..runs.config import RunError
from ..tasks import load_task
from ..tasks.custom import run_task

__all__ = ["EvalData", "EvalSpec", "choice_slots", "encode_for_run", "prepare_data", "run_split"]


@dataclass
class EvalSpec:
    """Which data to evaluate on: ``task`` and ``split``, a seeded subset of ``limit`` questions."""

    task: str
    split: str = "test"
    limit: int | None = None
    data_dir: object = None  # a folder, TASK=DIR pairs or a DataDirs: as load_task's data_dir
    source: str = "auto"
    subset_seed: int = 0
    ood: bool | None = None  # None: out of distribution when the task is not the training task

    @classmethod
    def parse(cls, text: str, **defaults) -> EvalSpec:
        """``"arc-easy"``, ``"arc-easy:validation"`` or ``"mmlu-stem:test:250"``."""
        parts = text.split(":")
        if len(parts) > 3 or not parts[0]:
            raise InvalidSettingError(f"cannot read task spec {text!r}: use TASK[:SPLIT[:LIMIT]]")
        spec = cls(task=parts[0], **defaults)
        if len(parts) > 1 and parts[1]:
            spec.split = parts[1]
        if len(parts) > 2 and parts[2]:
            try:
                spec.limit = int(parts[2])
            except ValueError:
                raise InvalidSettingError(f"cannot read task spec {text!r}: the limit {parts[2]!r} is not a number "
                                          "(use TASK[:SPLIT[:LIMIT]])") from None
        return spec

    def load(self, run_config=None):
        """The rows; with a run's :class:`~swag_lora.runs.config.RunConfig`, the run's own custom
        task is re-created from its record."""
        task = self.task
        if run_config is not None:
            task = run_task(self.task, run_config.task_definition, run_config.data.task)
        return load_task(task, self.split, data_dir=self.data_dir, source=self.source, limit=self.limit,
                         subset_seed=self.subset_seed)


@dataclass
class EvalData:
    """One dataset encoded for a run's scorer: rows, features (each with its question ``id``)
    and the collator (which knows the number of choice slots)."""

    task: str
    split: str
    rows: object
    features: list[dict]
    collator: MultipleChoiceCollator
    ood: bool = False

    @property
    def n_slots(self) -> int:
        return self.collator.n_slots

    @property
    def labels(self) -> np.ndarray:
        return np.array([f["label"] for f in self.features], dtype=np.int64)

    @property
    def ids(self) -> list:
        return [f["id"] for f in self.features]


def choice_slots(config, n_choices: int, what: str) -> int:
    """The number of choice slots a run (its :class:`~swag_lora.runs.config.RunConfig`) scores
    data whose questions have at most ``n_choices`` choices with: its answer letters in letter
    mode (:class:`RunError` if the data has more choices), at least the data's in cloze mode."""
    configured = int(config.n_slots)
    if config.scoring == "letter":
        if n_choices > configured:
            raise RunError(f"{what} has questions with {n_choices} choices; this letter-mode run has "
                           f"{configured} answer letters")
        return configured
    return max(n_choices, configured)


def encode_for_run(run, rows, task: str, split: str, ood: bool = False) -> EvalData:
    """Encode ``rows`` for ``run``'s scoring mode, with :func:`choice_slots` slots."""
    cfg = run.config
    n_slots = choice_slots(cfg, max(len(r.choices) for r in rows), task)
    features = encode_rows(rows, run.tokenizer, cfg.scoring, cfg.model.max_length, cloze_prompt=cfg.model.cloze_prompt)
    for feature, row in zip(features, rows):
        feature["id"] = row.id
    collator = MultipleChoiceCollator(run.tokenizer.pad_token_id, n_slots)
    return EvalData(task, split, rows, features, collator, ood)


def prepare_data(run, spec: EvalSpec) -> EvalData:
    """Load and encode ``spec`` (a run's own custom task is re-created from its record); OOD
    when the spec says so or its task is not the training task. A generation run is refused
    (:class:`~swag_lora.runs.config.RunError`): it writes answers, it does not score choices."""
    run.config.require_objective("multiple-choice", run.path, "swag-lora evaluate")
    rows = spec.load(run.config)
    task = getattr(rows, "task", spec.task)
    ood = spec.ood if spec.ood is not None else task != run.config.training_task
    return encode_for_run(run, rows, task, spec.split, ood)


def run_split(run, split: str, limit: int | None = None) -> EvalData:
    """The run's own ``train`` or ``validation`` split (its task, limit and subset seed)."""
    data_args = run.config.data
    if split == "validation":
        if data_args.validation_limit == 0:
            raise RunError(f"{run.path} was trained without a validation split (validation_limit 0); "
                           "methods fitted on validation data cannot be built for it")
        limit = data_args.validation_limit if limit is None else limit
    else:
        limit = data_args.train_limit if limit is None else limit
    rows = load_split(data_args, split, limit)
    return encode_for_run(run, rows, getattr(rows, "task", data_args.task), split)
