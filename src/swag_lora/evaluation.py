"""The evaluation loop: every method, every dataset, one protocol, the same files.

Methods are built once (fitted ones on the first run's validation split) and then evaluated
on every dataset with the same members. In-distribution datasets come first; an OOD
dataset's record also holds the OOD-detection metrics against the first in-distribution
dataset evaluated by the same method (same runs, same samples), so a results table can be
built from ``metrics.json`` files alone.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import distributed as D
from . import metrics as M
from .encoding import MultipleChoiceCollator, encode_rows
from .experiment import EvalSpec, LoadedRun, RunError, _load_split
from .methods import METHODS, MethodContext, build_method, predictive_label, temperature_scaled
from .predictive import evaluate
from .provenance import provenance
from .results import write_evaluation


@dataclass
class EvalData:
    """One dataset encoded for a run's scorer: rows, features (each with its question ``id``),
    the collator, and the number of choice slots the model must produce for it."""

    task: str
    split: str
    rows: object
    features: list[dict]
    collator: MultipleChoiceCollator
    n_slots: int
    ood: bool = False

    @property
    def labels(self) -> np.ndarray:
        return np.array([f["label"] for f in self.features], dtype=np.int64)

    @property
    def ids(self) -> list:
        return [f["id"] for f in self.features]

    def activate(self, model) -> None:
        """Make ``model`` produce this dataset's number of choice slots."""
        model.n_slots = self.n_slots


def encode_for_run(run: LoadedRun, rows, task: str, split: str, ood: bool = False) -> EvalData:
    """Encode ``rows`` for ``run``'s scoring mode; cloze runs widen to the data's choice count."""
    cfg = run.config
    scoring = cfg["model"]["scoring"]
    n_choices = max(len(r.choices) for r in rows)
    configured = int(cfg["n_slots"])
    if scoring == "letter" and n_choices > configured:
        raise RunError(f"{task} has questions with {n_choices} choices; this letter-mode run has "
                       f"{configured} answer letters")
    n_slots = max(n_choices, configured) if scoring == "cloze" else configured
    features = encode_rows(rows, run.tokenizer, scoring, cfg["model"]["max_length"])
    for feature, row in zip(features, rows):
        feature["id"] = row.id
    collator = MultipleChoiceCollator(run.tokenizer.pad_token_id, n_slots)
    return EvalData(task, split, rows, features, collator, n_slots, ood)


def training_task(config: dict) -> str:
    """The canonical name of a run's training task (a custom task file's own name, not its path)."""
    return config.get("splits", {}).get("train", {}).get("task", config["data"]["task"])


def prepare_data(run: LoadedRun, spec: EvalSpec) -> EvalData:
    """Load and encode ``spec`` (a run's own custom task is re-created from its record); OOD
    when the spec says so or its task is not the training task."""
    rows = spec.load(run.config)
    task = getattr(rows, "task", spec.task)
    ood = spec.ood if spec.ood is not None else task != training_task(run.config)
    return encode_for_run(run, rows, task, spec.split, ood)


def run_split(run: LoadedRun, split: str, limit: int | None = None) -> EvalData:
    """The run's own ``train`` or ``validation`` split (its task, limit and subset seed)."""
    from .config import DataArguments

    data_args = DataArguments(**run.config["data"])
    if split == "validation":
        if data_args.validation_limit == 0:
            raise RunError(f"{run.path} was trained without a validation split (validation_limit 0); "
                           "methods fitted on validation data cannot be built for it")
        limit = data_args.validation_limit if limit is None else limit
    else:
        limit = data_args.train_limit if limit is None else limit
    rows = _load_split(data_args, split, limit)
    return encode_for_run(run, rows, getattr(rows, "task", data_args.task), split)


def make_context(runs: list[LoadedRun], fit_limit: int | None = None, **settings) -> MethodContext:
    """A method context over ``runs`` whose validation and training splits are the first run's,
    loaded once on first use (the training split limited to ``fit_limit`` questions)."""
    cache = {}

    def split(name, limit=None):
        if name not in cache:
            cache[name] = run_split(runs[0], name, limit)
        return cache[name]

    return MethodContext(runs, validation=lambda: split("validation"), training=lambda: split("train", fit_limit),
                         **settings)


def build_methods(ctx: MethodContext, names: list[str], temperature: bool = False) -> list[tuple[str, object, float]]:
    """(name, predictive, seconds to build it) for every requested method, each built once;
    with ``temperature``, also each method (but ``temperature`` itself) with a fitted
    temperature on top. Building includes any fitting (validation passes, curvature)."""
    built = []
    for name in names:
        started = time.time()
        method = build_method(name, ctx)
        built.append((name, method, time.time() - started))
        if temperature and name != "temperature":
            started = time.time()
            built.append((name, temperature_scaled(method, ctx), time.time() - started))
    return built


def evaluate_methods(
    ctx: MethodContext,
    datas: list[EvalData],
    names: list[str],
    output_root: str | os.PathLike,
    ece_bins: int = M.DEFAULT_ECE_BINS,
    temperature: bool = False,
) -> list[dict]:
    """Evaluate the methods ``names`` over ``ctx`` on every dataset; write each evaluation to
    ``output_root/TASK/SPLIT/LABEL/`` and return the records."""
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    output_root = Path(output_root)
    datas = sorted(datas, key=lambda d: d.ood)  # in-distribution first (stable)
    built = build_methods(ctx, names, temperature)
    multi = len(ctx.runs) > 1 or any(METHODS[n].multi_run for n in names)
    reference: dict[str, tuple[EvalData, np.ndarray, float]] = {}
    records = []
    for data in datas:
        data.activate(ctx.run.model)
        for name, method, build_seconds in built:
            started = time.time()
            log_probs, summary = evaluate(ctx.run.model, data.features, data.collator, method, ctx.batch_size,
                                          ece_bins, ctx.progress)
            label = predictive_label(name, method)
            record = _record(ctx, data, name, label, summary, time.time() - started, multi and METHODS[name].multi_run)
            record["build_seconds"] = build_seconds
            T = summary["temperature"]
            if not data.ood:
                reference.setdefault(label, (data, log_probs, T))
            elif label in reference:
                ref, lp_in, T_in = reference[label]
                record.update(ood_reference={"task": ref.task, "split": ref.split, "n_examples": len(ref.features)},
                              **M.ood_detection(lp_in, log_probs, T_in, T))
            if D.is_main_process():
                write_evaluation(output_root / data.task / data.split / label, record, log_probs, data.labels, data.ids)
            records.append(record)
    D.barrier()
    return records


def _record(ctx, data: EvalData, name: str, label: str, summary: dict, seconds: float, multi_run: bool) -> dict:
    cfg = ctx.run.config
    record = {
        "run": " + ".join(str(r.path) for r in ctx.runs) if multi_run else str(ctx.run.path),
        "train_task": training_task(cfg),
        "train_seed": cfg["training"].get("seed"),
        "task": data.task,
        "split": data.split,
        "ood": data.ood,
        "data": data.rows.to_dict() if hasattr(data.rows, "to_dict") else None,
        "base_method": name,
        "eval_seconds": seconds,
        "provenance": provenance(),
        **summary,
        "method": label,
    }
    if multi_run:
        record["train_seeds"] = [r.config["training"].get("seed") for r in ctx.runs]
    return record
