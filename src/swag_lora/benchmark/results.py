"""The benchmark's results file, rebuilt from the evaluations on disk.

:func:`collect` reads every ``metrics.json`` under a benchmark work folder and writes

- ``RESULTS/calibration.json``: one record per (task, OOD set, seed, method) with the fields
  of :data:`RECORD_FIELDS` (``None`` where a figure does not apply), and
- ``RESULTS/calibration/TASK__DATASET.npz``: each evaluation's averaged (and, for
  temperature scaling, tempered) predictive log p̄ [N, C] under the key ``METHOD|SEED`` (and,
  for methods with several members, the per-question mutual information under
  ``METHOD|SEED|mi``), with the labels and question ids, so the report (reliability diagrams,
  paired bootstrap intervals) regenerates without the work folder, and
- ``RESULTS/calibration_runs.json``: the config, each task's validation tuning and the wall
  time of every unit.

Method names in the results: a SWAG evaluation at the validation-tuned scale (its record's
``scale``) is ``swag-tuned`` (and MultiSWAG's ``multiswag-tuned``); when the tuned scale equals
the fixed one, the fixed-scale evaluation is reported under both names. ``METHOD+ts`` is a
method with a temperature fitted on its own validation predictive; ``temperature`` (MAP with a
fitted temperature) is also reported as ``map+ts``. Validation-split evaluations (which the
fitted temperatures use) stay in the work folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import metrics as M
from ..bayes.names import METHOD_NAMES, TEMPERED_SUFFIX, TUNED_SUFFIX, method_order
from ..files import read_json, write_json, write_npz
from .config import BenchConfig
from .layout import Layout, choose_variant, lr_name, settled_choice

__all__ = ["PREDICTIONS_DIR", "RECORD_FIELDS", "RESULTS_FILE", "RUNS_FILE", "collect", "load_predictions"]

RESULTS_FILE = "calibration.json"
RUNS_FILE = "calibration_runs.json"
PREDICTIONS_DIR = "calibration"
RECORD_FIELDS = ("task", "ood_task", "seed", "method", "n_samples", "scale", "ece_bins", "acc", "nll", "ece", "mce",
                 "brier", "auroc_entropy", "auroc_mi", "aupr_entropy", "aupr_mi", "aurc", "auroc_err_confidence",
                 "auroc_err_entropy", "auroc_err_mi")
SWAG_FAMILY = ("swag", "swag-tuned", "multiswag", "multiswag-tuned")
VARIATIONAL_RUNS = ("blob", "ivon")  # methods with runs of their own in each seed's folder


def _names(raw: dict, fixed_scale: float, choice: dict | None) -> list[str]:
    """Result names of one evaluation (its ``metrics.json``; none for evaluations the benchmark
    does not report). A SWAG family's scale is the one its record holds."""
    label = raw["method"]
    if label.endswith(TEMPERED_SUFFIX):  # a method with a fitted temperature: the method's names, tempered
        inner = _names({**raw, "method": label[: -len(TEMPERED_SUFFIX)]}, fixed_scale, choice)
        return [name + TEMPERED_SUFFIX for name in inner]
    if label == "temperature":  # MAP with a fitted temperature: also the MAP row of the tempered table
        return ["temperature", "map" + TEMPERED_SUFFIX]
    tuned = choice["scale"] if choice else None
    for family in ("multiswag", "swag"):
        if label == family or label.startswith(family + "@"):
            scale = float(raw["scale"])
            names = []
            if scale == fixed_scale:
                names.append(family)
            if tuned is not None and scale == tuned:
                names.append(family + TUNED_SUFFIX)
            return names
    return [label] if label in METHOD_NAMES else []


def _evaluation_folders(layout: Layout, task: str, choice: dict | None):
    """(folder, seed or None) of every evaluation of ``task``'s grid: zero-shot, every seed's
    BLoB and IVON runs, and once a SWAG learning rate is chosen, the evaluations of that
    rate's branches and combinations."""
    work = layout.work
    roots = [(layout.zero_shot_root(task), None)]
    seed_dirs = sorted((work / task).glob("seed*"))
    if choice is not None:
        branch = lr_name(choice["swag_learning_rate"], layout.optimizer)
        roots += [(seed_dir / branch / "eval", int(seed_dir.name[4:])) for seed_dir in seed_dirs]
        roots.append((layout.combined_root(task, choice["swag_learning_rate"]), None))
    for method in VARIATIONAL_RUNS:  # BLoB and IVON runs, independent of the SWAG choice
        roots += [(layout.variational_run(task, int(seed_dir.name[4:]), method) / "eval", int(seed_dir.name[4:]))
                  for seed_dir in seed_dirs]
    for root, seed in roots:
        for metrics in sorted(root.glob("*/*/*/metrics.json")):
            yield metrics.parent, seed


def _record(raw: dict, task: str, seed, name: str, choice: dict | None) -> dict:
    out = {
        "task": task,
        "ood_task": raw["task"] if raw.get("ood") else None,
        "seed": seed,
        "method": name,
        "n_samples": raw.get("n_members"),
        "scale": raw.get("scale") if name.removesuffix(TEMPERED_SUFFIX) in SWAG_FAMILY else None,
        "ece_bins": raw.get("ece_bins"),
    }
    for key in RECORD_FIELDS[7:]:
        out[key] = raw.get(key)
    out["n_examples"] = raw.get("n_examples")
    out["temperature"] = raw.get("temperature")
    out["swag_learning_rate"] = (choice["swag_learning_rate"] if choice and name.removesuffix(TEMPERED_SUFFIX) in SWAG_FAMILY
                                 else None)
    out["eval_seconds"] = raw.get("eval_seconds")
    return out


def _sort_key(config_tasks: list[str]):
    def key(r):
        task_i = config_tasks.index(r["task"]) if r["task"] in config_tasks else len(config_tasks)
        return (task_i, r["ood_task"] or "", method_order(r["method"]), -1 if r["seed"] is None else r["seed"])

    return key


def collect(config: BenchConfig, work, results) -> list[dict]:
    """Rebuild ``results/calibration.json`` and the prediction files from ``work``; returns
    the records. ``config`` gives the tasks, the fixed scale and any fixed choices."""
    work, results = Path(work), Path(results)
    layout = Layout(work, config.swag_optimizer)
    records, predictions = [], {}
    for task in [t.name for t in config.tasks]:
        choice = settled_choice(config, layout, task)
        for folder, seed in _evaluation_folders(layout, task, choice):
            raw = read_json(folder / "metrics.json")
            if raw.get("split") == "validation" and not raw.get("ood"):
                continue  # validation evaluations serve the fitted temperatures; the results are on test data
            for name in _names(raw, float(config.scale), choice):
                record = _record(raw, task, seed, name, choice)
                records.append(record)
                dataset = record["ood_task"] or task
                log_probs = np.load(folder / "log_probs.npy")
                log_p_bar = M.predictive_log_probs(log_probs, raw.get("temperature", 1.0)).astype(np.float32)
                bucket = predictions.setdefault(f"{task}__{dataset}", {})
                ids = [str(i) for i in read_json(folder / "ids.json")]
                if "ids" in bucket and list(bucket["ids"]) != ids:
                    raise ValueError(f"{folder}: its questions differ from the other evaluations of {dataset}")
                bucket["ids"] = np.array(ids)
                bucket["labels"] = np.load(folder / "labels.npy")
                key = f"{name}|{'all' if seed is None else seed}"
                bucket[key] = log_p_bar
                if log_probs.shape[1] > 1:  # the members' disagreement, for the MI-based intervals
                    mi = M.mutual_information(log_probs, M.num_choices(log_probs))
                    bucket[f"{key}|mi"] = mi.astype(np.float32)
    records.sort(key=_sort_key([t.name for t in config.tasks]))
    studies = _study_results(config, layout)
    records += [_study_record(task, study["seed"], variant, method, metrics, study["settings"][variant],
                              config.ece_bins)
                for task, study in studies.items() for variant, methods in study["variants"].items()
                for method, metrics in methods.items()]
    write_json(results / RESULTS_FILE, records)
    for stem, arrays in predictions.items():
        write_npz(results / PREDICTIONS_DIR / f"{stem}.npz", arrays)
    tuning = {t.name: read_json(work / t.name / "tuning.json") for t in config.tasks
              if (work / t.name / "tuning.json").is_file()}
    timing = read_json(work / "timing.json") if (work / "timing.json").is_file() else {}
    write_json(results / RUNS_FILE, {"config": config.to_dict(), "tuning": tuning, "study": studies,
                                     "unit_seconds": timing})
    return records


def _study_results(config: BenchConfig, layout: Layout) -> dict[str, dict]:
    """Per study task: every finished variant's validation metrics, its settings, the choice
    among them, and every variant the config plans (``planned``)."""
    out = {}
    for task in config.study.get("tasks", []):
        variants, settings, seed = {}, {}, None
        for name in config.study_variants():
            marker = layout.study_marker(task, name)
            if marker.is_file():
                summary = read_json(marker)
                variants[name] = summary["methods"]
                settings[name] = {**summary["settings"], "n_collected": summary["n_collected"],
                                  "diverged": summary.get("diverged")}
                seed = summary["seed"]
        if variants:
            out[task] = {"seed": seed, "variants": variants, "settings": settings, "choice": choose_variant(variants),
                         "planned": list(config.study_variants())}
    return out


def _study_record(task: str, seed, variant: str, method: str, metrics: dict, settings: dict, ece_bins: int) -> dict:
    """A record of the SWAG-exploration study (validation split), told apart by ``study``."""
    out = {"task": task, "ood_task": None, "seed": seed, "method": method, "study": variant, "split": "validation",
           "n_samples": None, "scale": None, "ece_bins": ece_bins}
    for key in RECORD_FIELDS[7:]:
        out[key] = metrics.get(key)
    out["temperature"] = metrics.get("temperature")
    out["settings"] = settings
    return out


def load_predictions(results, task: str, dataset: str) -> dict[str, np.ndarray]:
    """The arrays written by :func:`collect` for ``task``'s runs on ``dataset`` (empty if none)."""
    path = Path(results) / PREDICTIONS_DIR / f"{task}__{dataset}.npz"
    if not path.is_file():
        return {}
    with np.load(path) as data:
        return {k: data[k] for k in data.files}
