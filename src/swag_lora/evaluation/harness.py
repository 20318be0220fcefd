"""The evaluation loop: every method, every dataset, one protocol, the same files.

Methods are built once (fitted ones on the first run's validation split) and then evaluated
on every dataset with the same members. In-distribution datasets come first; an OOD
dataset's record also holds the OOD-detection metrics against the first in-distribution
dataset evaluated by the same method (same runs, same samples), so a results table can be
built from ``metrics.json`` files alone.

With ``resume`` an interrupted evaluation goes on where it stopped: every (method, dataset)
already written for the same run, questions, method settings and sampling is read back instead
of computed (:func:`~swag_lora.evaluation.store.find_finished_evaluation`), and so is the
validation pass a temperature is fitted on. Methods are still built (fitted) again; the fits
are deterministic, and a fit that came out otherwise changes the settings, so nothing is reused.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from .. import distributed as D
from .. import metrics as M
from ..bayes.fitting import temperature_scaled
from ..bayes.predictive import evaluate_predictive, summarise_predictive
from ..bayes.registry import METHODS, MethodContext, build_method, check_available, predictive_label
from ..bayes.sampling import SamplingOptions
from ..bayes.temperature import Tempered
from ..errors import InvalidSettingError
from ..runs.layout import EVAL_DIR, RUN_CONFIG
from ..runs.load import LoadedRun
from ..runs.lock import lock_folder_for, run_lock
from ..runs.provenance import provenance
from .data import EvalData, EvalSpec, prepare_data, run_split
from .store import SavedOrComputed, file_digest, find_finished_evaluation, write_evaluation

__all__ = ["build_methods", "evaluate_methods", "evaluate_run", "make_context"]


def make_context(
    runs: list[LoadedRun],
    fit_limit: int | None = None,
    saved_roots: dict | None = None,
    **settings,
) -> MethodContext:
    """A method context over ``runs`` whose validation and training splits are the first run's,
    loaded once on first use (the training split limited to ``fit_limit`` questions).
    ``saved_roots`` maps a run's path to the folder of its single-run evaluations, from which
    multi-run methods take saved log-probabilities; ``settings`` are further
    :class:`~swag_lora.bayes.registry.MethodContext` fields (``sampling``, ``dropout``, ...)."""
    cache = {}
    roots = dict(saved_roots or {})

    def split(name, limit=None):
        if name not in cache:
            cache[name] = run_split(runs[0], name, limit)
        return cache[name]

    def reuse(run, method, label):
        return SavedOrComputed(method, run.path, label, [roots.get(str(run.path))])

    return MethodContext(runs, validation=lambda: split("validation"), training=lambda: split("train", fit_limit),
                         reuse=reuse, **settings)


def build_methods(ctx: MethodContext, names: list[str], temperature: bool = False,
                  saved_validation: Callable[[str, object], np.ndarray | None] | None = None,
                  ) -> list[tuple[str, object, float]]:
    """(name, predictive, seconds to build it) for every requested method, each built once;
    with ``temperature``, also each method with a fitted temperature on top (``METHOD+ts``),
    right after it. Building includes any fitting (validation passes, curvature);
    ``saved_validation(name, method)`` may give a method's validation log-probabilities
    already on disk, which its temperature is then fitted on without a pass.

    ``temperature`` (MAP with a fitted temperature) tempers the ``map`` method built here when
    that is requested too, so both share one set of forward passes; with ``temperature`` also
    asked for on top of every method, ``map+ts`` is left out: it is ``temperature``."""
    order = sorted(names, key=lambda n: n != "map")  # map first: temperature reuses it
    built, by_name = [], {}
    for name in order:
        started = time.time()
        if name == "temperature" and "map" in by_name:
            _preload_validation(by_name["map"], "map", saved_validation)
            method = temperature_scaled(by_name["map"], ctx, name="temperature")
        else:
            method = build_method(name, ctx)
        by_name[name] = method
        built.append((name, method, time.time() - started))
        if temperature and name != "temperature" and not (name == "map" and "temperature" in names):
            started = time.time()
            _preload_validation(method, name, saved_validation)
            built.append((name, temperature_scaled(method, ctx), time.time() - started))
    return built


def _preload_validation(method, name: str, saved_validation) -> None:
    if saved_validation is None or getattr(method, "validation_log_probs", None) is not None:
        return
    log_probs = saved_validation(name, method)
    if log_probs is not None:
        method.validation_log_probs = log_probs  # what temperature_scaled fits on (bayes.fitting)


def evaluate_methods(
    ctx: MethodContext,
    datas: list[EvalData],
    names: list[str],
    output_root: str | os.PathLike,
    ece_bins: int = M.DEFAULT_ECE_BINS,
    temperature: bool = False,
    log: Callable[[str], None] | None = None,
    resume: bool = False,
) -> list[dict]:
    """Evaluate the methods ``names`` over ``ctx`` on every dataset; write each evaluation to
    ``output_root/TASK/SPLIT/LABEL/`` and return the records; ``log`` (if given) gets one line
    per method and dataset as each finishes. With ``resume``, evaluations already written there
    for the same runs, questions, settings and sampling are read back, not computed (module
    docstring).

    The folder's lock (:mod:`swag_lora.runs.lock`) is taken first, so an unwritable folder or
    another writer stops the call before any work. A method with a temperature on top reuses
    the log-probabilities of the method under it: the members' passes run once."""
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise InvalidSettingError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    check_available(names, ctx.runs)  # before any method is built or written
    output_root = Path(output_root)
    with run_lock(lock_folder_for(output_root), "swag-lora evaluate") if D.is_main_process() else nullcontext():
        return _evaluate_methods(ctx, datas, names, output_root, ece_bins, temperature, log, resume)


def _evaluate_methods(ctx, datas, names, output_root: Path, ece_bins, temperature, log, resume=False) -> list[dict]:
    datas = sorted(datas, key=lambda d: d.ood)  # in-distribution first (stable)
    multi = len(ctx.runs) > 1 or any(METHODS[n].multi_run for n in names)
    identity = {False: _run_identity(ctx, False), True: _run_identity(ctx, True)}  # by: a multi-run record?

    def finished(data, name: str, method):
        label = predictive_label(name, method)
        expected = {**identity[multi and METHODS[name].multi_run], "task": data.task, "split": data.split, "ood": data.ood,
                    "base_method": name, "method": label, "sampling": ctx.sampling.to_dict(),
                    "n_examples": len(data.labels), **method.settings}
        return find_finished_evaluation(output_root / data.task / data.split / label, data.ids, expected)

    def saved_validation(name: str, method):
        val = ctx.validation_data() if ctx.validation is not None else None
        found = finished(val, name, method) if val is not None else None
        return None if found is None else found[1]

    built = build_methods(ctx, names, temperature, saved_validation if resume else None)
    reference: dict[str, tuple[EvalData, np.ndarray, float]] = {}
    records = []
    for data in datas:
        computed: dict[int, np.ndarray] = {}  # id(predictive) -> its log-probabilities on this dataset
        for name, method, build_seconds in built:
            started = time.time()
            inner = method.inner if isinstance(method, Tempered) else None
            fitted_on = getattr(method, "validation_log_probs", None)
            saved = finished(data, name, method) if resume else None
            if saved is not None:
                record, log_probs = saved
                computed[id(method)] = log_probs
                label = record["method"]
                if not data.ood:
                    reference.setdefault(label, (data, log_probs, record["temperature"]))
                if log is not None and D.is_main_process():
                    log(f"{label} on {data.task}/{data.split}: acc {record['acc']:.3f}, NLL {record['nll']:.3f}, "
                        f"ECE {record['ece']:.3f} (read back: written before)")
                records.append(record)
                continue
            if inner is not None and id(inner) in computed:
                log_probs = computed[id(inner)]
                summary = summarise_predictive(method, log_probs, data.labels, ece_bins)
            elif fitted_on is not None and _is_validation_split(ctx, data):
                log_probs = fitted_on  # computed when the method was fitted on this very split
                summary = summarise_predictive(method, log_probs, data.labels, ece_bins)
            else:
                log_probs, summary = evaluate_predictive(ctx.run.model, data.features, data.collator, method,
                                                         ctx.batch_size, ece_bins, ctx.progress)
            computed[id(method)] = log_probs
            label = predictive_label(name, method)
            record = _record(ctx, data, name, label, summary, time.time() - started, multi and METHODS[name].multi_run,
                             identity[multi and METHODS[name].multi_run])
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
                if log is not None:
                    log(f"{label} on {data.task}/{data.split}: acc {record['acc']:.3f}, NLL {record['nll']:.3f}, "
                        f"ECE {record['ece']:.3f} ({record['eval_seconds']:.1f} s)")
            records.append(record)
    D.barrier()
    return records


def _is_validation_split(ctx, data: EvalData) -> bool:
    """Whether ``data`` holds the same questions, in order, as the split fitted methods use."""
    if data.split != "validation" or data.ood or ctx.validation is None:
        return False
    return data.ids == ctx.validation_data().ids


def _run_identity(ctx, multi_run: bool) -> dict:
    """``run`` (the run directory, or the runs joined by " + ") and ``run_config_digest`` (of each
    one's ``run_config.json``, joined the same way) of a record."""
    runs = ctx.runs if multi_run else ctx.runs[:1]
    digests = []
    for r in runs:
        path = Path(r.path) / RUN_CONFIG
        digests.append(file_digest(path) if path.is_file() else "none")
    return {"run": " + ".join(str(r.path) for r in runs), "run_config_digest": " + ".join(digests)}


def _record(ctx, data: EvalData, name: str, label: str, summary: dict, seconds: float, multi_run: bool,
            identity: dict | None = None) -> dict:
    cfg = ctx.run.config
    record = {
        **(identity or _run_identity(ctx, multi_run)),
        "train_task": cfg.training_task,
        "train_seed": cfg.training_seed,
        "task": data.task,
        "split": data.split,
        "ood": data.ood,
        "data": data.rows.to_dict() if hasattr(data.rows, "to_dict") else None,
        "base_method": name,
        "sampling": ctx.sampling.to_dict(),  # the options the command gave; the method's own are its settings
        "eval_seconds": seconds,
        "provenance": provenance(),
        **summary,
        "method": label,
    }
    if multi_run:
        record["train_seeds"] = [r.config.training_seed for r in ctx.runs]
    return record


def evaluate_run(
    run: LoadedRun,
    spec: EvalSpec | list[EvalSpec],
    methods: list[str],
    sampling: SamplingOptions | None = None,
    ece_bins: int = M.DEFAULT_ECE_BINS,
    batch_size: int = 16,
    output_root: str | os.PathLike | None = None,
    progress: bool = True,
    temperature: bool = False,
    log=None,
    resume: bool = False,
    **options,
) -> list[dict]:
    """Evaluate ``methods`` of one run on one dataset or several; write and return one
    metrics record per method and dataset.

    Each method is built once (fitted ones on the run's validation split) and evaluated on
    every dataset with the same members, drawn as ``sampling`` says. Results go to
    ``output_root/TASK/SPLIT/METHOD/`` (default ``RUN/eval``). ``options`` are further
    :class:`~swag_lora.bayes.registry.MethodContext` fields (``dropout``, ``scale_grid``,
    ``laplace``) and ``fit_limit``; ``temperature`` also writes every method with a fitted
    temperature on top; ``log`` gets a line per method and dataset; ``resume`` reads back the
    evaluations already written for the same run, questions and settings (:func:`evaluate_methods`).
    """
    specs = spec if isinstance(spec, list) else [spec]
    ctx = make_context([run], sampling=sampling or SamplingOptions(), batch_size=batch_size, progress=progress,
                       **options)
    datas = [prepare_data(run, s) for s in specs]
    output_root = Path(output_root) if output_root is not None else run.path / EVAL_DIR
    return evaluate_methods(ctx, datas, methods, output_root, ece_bins=ece_bins, temperature=temperature, log=log,
                            resume=resume)
