"""How ``swag-lora train`` runs its SWAG phase (issue 16, items 3 and 4), compared on the
validation split: from the last iterate of the MAP phase with the same AdamW (``last``, the
default), from the best-validation MAP checkpoint (``best``: ``--swag_from_best``, which also
clears the optimizer's moments), and from the last iterate on SGD with momentum 0.9 at 0.01
(``sgd``: ``--swag_optimizer sgd``, the SWAG-exploration study's choice for the benchmark).

One run is the whole ``swag-lora train`` recipe (one schedule: linear decay from the MAP rate,
then the SWAG phase at a constant rate, one validation pass per epoch), trained once per
(recipe, seed, variant). Criterion, as in the SWAG-exploration study: the validation NLL of
``swag+ts`` among variants whose accuracy is within a point of MAP's; each variant is compared
with ``last`` on the same seeds. Recipes:

* ``demo``: the demo's recipe (2 MAP + 2 SWAG epochs, AdamW, SWAG rate 3e-4) on the
  benchmark's ARC-Easy subsets (train 320, validation 200).
* ``overfit``: a MAP phase long enough to pass its best epoch (160 training questions, 5 MAP
  epochs + 2 SWAG epochs), where the two starting points differ by more than the moments.

Resumable: a finished run or evaluation is reused. Writes ``bench/results/swag_start.json``:
every run's validation metrics and curve, and per recipe and variant the paired bootstrap
interval of ``variant − last`` over the seeds that ran both.

    .venv/bin/python bench/swag_start.py [--seeds 0] [--recipes demo overfit] [--variants last best sgd]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from transformers import TrainingArguments

from swag_lora.bayes.sampling import SamplingOptions
from swag_lora.benchmark.layout import clear_unfinished, finished_run
from swag_lora.evaluation.data import EvalSpec
from swag_lora.evaluation.harness import evaluate_run
from swag_lora.evaluation.store import load_evaluation
from swag_lora.files import read_json, write_json
from swag_lora.lm.smollm2 import SMOLLM2_ALIAS
from swag_lora.metrics.averaging import predictive_log_probs
from swag_lora.metrics.bootstrap import paired_bootstrap
from swag_lora.runs.arguments import (
    TRAINING_DEFAULTS,
    DataArguments,
    LoraArguments,
    ModelArguments,
    SwagArguments,
)
from swag_lora.runs.load import load_run
from swag_lora.runs.train import train_run
from swag_lora.tasks.loading import find_local_data

ROOT = Path(__file__).resolve().parents[1]

RECIPES = {
    "demo": {"train": 320, "validation": 200, "map_epochs": 2, "swag_epochs": 2},
    "overfit": {"train": 160, "validation": 200, "map_epochs": 5, "swag_epochs": 2},
}
COMMON = {"task": "arc-easy", "learning_rate": 1e-3, "swag_learning_rate": 3e-4, "collections_per_epoch": 4,
          "max_rank": 5, "batch_size": 8, "n_samples": 10, "subset_seed": 0}
# variant name -> the SwagArguments it changes (the rest: COMMON's, the last iterate, the same AdamW)
VARIANTS = {"last": {}, "best": {"swag_from_best": True},
            "sgd": {"swag_optimizer": "sgd", "swag_momentum": 0.9, "swag_learning_rate": 0.01}}
KEYS = ("acc", "nll", "ece", "brier", "aurc", "auroc_err_confidence", "temperature")


def train(recipe: dict, seed: int, variant: dict, path: Path, data_dir: str | None) -> Path:
    """One ``swag-lora train`` run of ``recipe`` with the SWAG settings of ``variant`` (one of
    :data:`VARIANTS`) into ``path`` (reused when finished)."""
    if finished_run(path):
        return path
    clear_unfinished(path)
    c = {**COMMON, **recipe}
    steps_per_epoch = math.ceil(c["train"] / c["batch_size"])
    training = TrainingArguments(**{
        **TRAINING_DEFAULTS, "output_dir": str(path), "learning_rate": c["learning_rate"],
        "num_train_epochs": c["map_epochs"] + c["swag_epochs"], "per_device_train_batch_size": c["batch_size"],
        "per_device_eval_batch_size": 16, "save_strategy": "no", "eval_strategy": "epoch", "seed": seed,
        "disable_tqdm": True, "logging_steps": 10})
    return train_run(
        ModelArguments(model_name_or_path=SMOLLM2_ALIAS, scoring="cloze"),
        DataArguments(task=c["task"], data_dir=data_dir, train_limit=c["train"], validation_limit=c["validation"],
                      subset_seed=c["subset_seed"]),
        LoraArguments(),
        SwagArguments(**{"swag_start_epoch": c["map_epochs"],
                         "swag_collect_every_steps": max(1, steps_per_epoch // c["collections_per_epoch"]),
                         "swag_learning_rate": c["swag_learning_rate"], "swag_max_rank": c["max_rank"], **variant}),
        training)


def validation_curve(path: Path) -> list[dict]:
    """(epoch, validation NLL, accuracy) of every evaluation the run's training logged."""
    log = read_json(path / "train_log.json")
    return [{"epoch": e["epoch"], "nll": e["eval_nll"], "acc": e["eval_acc"]} for e in log if "eval_nll" in e]


def evaluate(recipe: dict, seed: int, path: Path, data_dir: str | None) -> dict:
    """MAP, SWA and SWAG (S = n_samples), each raw and with a temperature, on validation."""
    c = {**COMMON, **recipe}
    run = load_run(path)
    spec = EvalSpec(c["task"], "validation", c["validation"], data_dir=data_dir, subset_seed=c["subset_seed"])
    records = evaluate_run(run, [spec], ["map", "swa", "swag"], SamplingOptions(n_samples=c["n_samples"], seed=0),
                           output_root=path / "eval", progress=False, temperature=True)
    return {"branch": run.config.swag_branch, "n_collected": run.posterior.n_collected,
            "validation_curve": validation_curve(path),
            "methods": {r["method"]: {k: r.get(k) for k in KEYS} for r in records}}


def validation_predictive(path: Path, label: str = "swag+ts") -> tuple[np.ndarray, np.ndarray]:
    """The averaged predictive p̄ [N, C] (with the record's temperature) of a saved validation
    evaluation of run ``path``, and its labels."""
    folder = path / "eval" / COMMON["task"] / "validation" / label
    log_probs, labels = load_evaluation(folder)
    T = read_json(folder / "metrics.json").get("temperature") or 1.0
    return np.exp(predictive_log_probs(log_probs, T)), labels


def compare_variants(runs: dict, work: Path) -> dict:
    """Per recipe and variant other than ``last``, over the seeds that ran both: ``variant −
    last`` in swag+ts NLL and in SWAG's accuracy, with 95% paired bootstrap intervals (questions
    resampled jointly for every seed)."""
    out = {}
    for name in RECIPES:
        for variant in (v for v in VARIANTS if v != "last"):
            seeds = sorted({int(key.split("/")[1].removeprefix("seed")) for key in runs if key.startswith(f"{name}/")})
            seeds = [s for s in seeds if all(f"{name}/seed{s}/{v}" in runs for v in (variant, "last"))]
            if not seeds:
                continue
            pairs = {}
            for label, metric in (("swag+ts", "nll"), ("swag", "acc")):
                other, last = [], []
                for seed in seeds:
                    b, y = validation_predictive(work / name / f"seed{seed}" / variant, label)
                    a, y_last = validation_predictive(work / name / f"seed{seed}" / "last", label)
                    if not np.array_equal(y, y_last):
                        raise ValueError(f"{name} seed {seed}: {variant} and last were evaluated on different questions")
                    other.append(b)
                    last.append(a)
                pairs[f"{label} {metric}"] = paired_bootstrap(np.stack(other), np.stack(last), y, metric)
            out.setdefault(name, {})[variant] = {"seeds": seeds, **pairs}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--recipes", nargs="+", choices=sorted(RECIPES), default=["demo", "overfit"])
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument("--work", default=str(ROOT / "runs" / "swag-start"))
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "swag_start.json"))
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data_dir = find_local_data()
    out = Path(args.out)
    results = read_json(out) if out.is_file() else {}
    results["settings"] = {"common": COMMON, "recipes": RECIPES, "variants": VARIANTS}
    for name in args.recipes:
        for seed in args.seeds:
            for variant in args.variants:
                key = f"{name}/seed{seed}/{variant}"
                if key in results.get("runs", {}):
                    continue
                path = Path(args.work) / name / f"seed{seed}" / variant
                started = time.time()
                print(f"[swag-start {time.strftime('%H:%M:%S')}] {key}: train", flush=True)
                train(RECIPES[name], seed, VARIANTS[variant], path, data_dir)
                entry = evaluate(RECIPES[name], seed, path, data_dir)
                entry["seconds"] = time.time() - started
                results.setdefault("runs", {})[key] = entry
                write_json(out, results)
                m = entry["methods"]
                print(f"[swag-start] {key}: swag+ts NLL {m['swag+ts']['nll']:.3f}, map+ts {m['map+ts']['nll']:.3f}, "
                      f"swag acc {m['swag']['acc']:.3f}, map acc {m['map']['acc']:.3f}; {entry['branch']}", flush=True)
    results["comparisons"] = compare_variants(results.get("runs", {}), Path(args.work))
    write_json(out, results)
    for name, by_variant in results["comparisons"].items():
        for variant, c in by_variant.items():
            nll, acc = c["swag+ts nll"], c["swag acc"]
            print(f"[swag-start] {name}, seeds {c['seeds']}: {variant} − last swag+ts NLL {nll['diff']:+.3f} "
                  f"[{nll['lo']:+.3f}, {nll['hi']:+.3f}], SWAG acc {acc['diff']:+.3f} [{acc['lo']:+.3f}, "
                  f"{acc['hi']:+.3f}]", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
