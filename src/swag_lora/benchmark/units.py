"""The benchmark's unit runner: timing and logging of units, and the training units (the MAP
phase, a SWAG branch from it, and a BLoB or IVON run), each skipped when its run directory is
finished."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

from transformers import TrainingArguments

from ..bayes.ivon import IVON_DEFAULTS
from ..files import read_json, write_json
from ..runs.arguments import (
    TRAINING_DEFAULTS,
    BayesArguments,
    DataArguments,
    LoraArguments,
    ModelArguments,
    SwagArguments,
)
from ..runs.layout import MAP_DIR, RUN_CONFIG
from ..runs.train import train_run
from ..tasks.loading import find_local_data
from .config import BenchConfig, BenchConfigError, BranchSpec, TaskGrid
from .layout import Layout, clear_unfinished, finished_run, lr_name
from .results import collect

__all__ = ["UnitRunner", "check_branch"]


def check_branch(path: Path, spec: BranchSpec) -> None:
    """Refuse a finished SWAG branch whose recorded training settings are not ``spec``'s, or
    whose rate was not held constant (branches trained before the benchmark set the SWAG
    phase's rate: their rate decayed linearly to 0 although ``constant`` was asked for)."""
    config = read_json(path / RUN_CONFIG)
    training, swag = config.get("training", {}), config.get("swag", {})
    if swag.get("swag_learning_rate") is None:
        raise BenchConfigError(f"{path} was trained with a rate that decayed to 0 over its SWAG phase (before the "
                               "benchmark held it constant); delete it or use another work folder")
    recorded = {"learning_rate": training.get("learning_rate"), "epochs": training.get("num_train_epochs"),
                "max_rank": swag.get("swag_max_rank"),
                "optimizer": "sgd" if str(training.get("optim", "")).lower().endswith("sgd") else "adamw"}
    wanted = {"learning_rate": spec.learning_rate, "epochs": spec.epochs, "max_rank": spec.max_rank,
              "optimizer": spec.optimizer}
    differing = [k for k in wanted if recorded[k] is not None and recorded[k] != wanted[k]
                 and not (k != "optimizer" and float(recorded[k]) == float(wanted[k]))]
    if differing:
        found = ", ".join(f"{k} {recorded[k]} instead of {wanted[k]}" for k in differing)
        raise BenchConfigError(f"{path} was trained with other SWAG settings ({found}); delete it or use another "
                               "work folder")


class UnitRunner:
    """Runs units of a :class:`BenchConfig` in a work folder: each unit's wall time is added to
    ``timing.json``, its name to :attr:`ran`, and the results file is rebuilt after it."""

    def __init__(self, config: BenchConfig, layout: Layout, results: Path | None, log: Callable[[str], None],
                 training_overrides: dict | None = None):
        self.config = config
        self.layout = layout
        self.results = results
        self.log = log
        self.training_overrides = training_overrides or {}
        self.ran: list[str] = []

    # ------------------------------------------------------------------ helpers
    def say(self, text: str) -> None:
        self.log(f"[bench {time.strftime('%H:%M:%S')}] {text}")

    def timed(self, name: str, fn):
        """Run the unit ``fn`` under ``name``; returns what it returns."""
        started = time.time()
        self.say(f"{name}: start")
        out = fn()
        seconds = time.time() - started
        timing_file = self.layout.timing()
        timing = read_json(timing_file) if timing_file.is_file() else {}
        timing[name] = timing.get(name, 0.0) + seconds  # a unit continued later (wider tuning grid) adds up
        write_json(timing_file, timing)
        self.ran.append(name)
        self.say(f"{name}: done in {seconds:.0f} s")
        self.collect()
        return out

    def collect(self) -> None:
        """Rebuild the results file from every evaluation on disk (when there is one to write)."""
        if self.results is not None:
            collect(self.config, self.layout.work, self.results)

    def data_dir(self) -> str | None:
        return self.config.data_dir or find_local_data()

    def training_args(self, output_dir: Path, seed: int, **kw) -> TrainingArguments:
        c = self.config
        args = {
            **TRAINING_DEFAULTS,
            "output_dir": str(output_dir),
            "per_device_train_batch_size": c.batch_size,
            "per_device_eval_batch_size": c.eval_batch_size,
            "save_strategy": "no",
            "seed": seed,
            "disable_tqdm": True,
            "logging_steps": 10,
            **kw,
            **self.training_overrides,
        }
        return TrainingArguments(**args)

    def arguments(self, task: TaskGrid, init_adapter: str | None = None):
        """Model, data and LoRA arguments of ``task``'s runs."""
        c = self.config
        return (
            ModelArguments(model_name_or_path=c.model, scoring=c.scoring, max_length=c.max_length,
                           cloze_length_normalize=task.length_normalize),
            DataArguments(task=task.dataset, data_dir=self.data_dir(), train_limit=task.train,
                          validation_limit=task.validation, subset_seed=c.subset_seed),
            LoraArguments(lora_r=c.lora_r, lora_alpha=c.lora_alpha, lora_dropout=c.lora_dropout,
                          lora_target_modules=list(c.lora_target_modules), init_adapter=init_adapter),
        )

    def steps_per_epoch(self, task: TaskGrid) -> int:
        return math.ceil(task.train / self.config.batch_size)

    # ------------------------------------------------------------------ training units
    def train_map(self, task: TaskGrid, seed: int) -> Path:
        """The MAP phase: best validation NLL over one evaluation per epoch. (A run directory
        needs one SWAG collection; it is taken at the last step and not used.)"""
        path = self.layout.map_run(task.name, seed)
        if finished_run(path):
            return path
        clear_unfinished(path)
        c = self.config
        total = math.ceil(self.steps_per_epoch(task) * c.map_epochs)
        training = self.training_args(path, seed, learning_rate=c.learning_rate, num_train_epochs=c.map_epochs,
                                      warmup_steps=c.warmup_ratio, eval_strategy="epoch")
        swag = SwagArguments(swag_start_step=max(total - 1, 0), swag_collect_every_steps=1, swag_max_rank=0)
        return self.timed(f"{task.name}/seed{seed}/map", lambda: train_run(*self.arguments(task), swag, training))

    def train_swag(self, task: TaskGrid, seed: int, lr: float) -> Path:
        """The grid's SWAG branch at constant rate ``lr`` from the MAP adapter of (task, seed)."""
        path = self.layout.swag_run(task.name, seed, lr)
        return self.train_branch(task, seed, self.config.branch(lr), path,
                                 f"{task.name}/seed{seed}/{lr_name(lr, self.layout.optimizer)}")

    def train_branch(self, task: TaskGrid, seed: int, spec: BranchSpec, path: Path, unit: str) -> Path:
        """A SWAG phase trained as ``spec`` says, from the MAP adapter of (task, seed), into
        ``path``; a finished branch with other settings is refused, never reused."""
        if finished_run(path):
            check_branch(path, spec)
            return path
        map_run = self.train_map(task, seed)
        clear_unfinished(path)
        every = max(1, self.steps_per_epoch(task) // max(1, spec.collections_per_epoch))
        optimizer = {"optim": "sgd", "optim_args": f"momentum={spec.momentum}"} if spec.optimizer == "sgd" else {}
        training = self.training_args(path, seed, learning_rate=spec.learning_rate, num_train_epochs=spec.epochs,
                                      lr_scheduler_type="constant", warmup_steps=0, eval_strategy="no", **optimizer)
        # constant at the branch's rate from its first step (the swag_learning_rate makes the run
        # record it; runs trained before the schedule honoured "constant" decayed it to 0)
        swag = SwagArguments(swag_start_step=0, swag_collect_every_steps=every, swag_max_rank=spec.max_rank,
                             swag_learning_rate=spec.learning_rate)
        arguments = self.arguments(task, init_adapter=str(map_run / MAP_DIR))
        return self.timed(unit, lambda: train_run(*arguments, swag, training))

    def train_variational(self, task: TaskGrid, seed: int, method: str) -> Path:
        """A BLoB or IVON run of (task, seed) from fresh LoRA weights, one validation pass per
        epoch; its budget is the MAP phase's (epochs, and for BLoB the rate and warm-up) unless
        the config's ``blob`` / ``ivon`` mapping sets it (IVON: IVON-LoRA's rate 0.03 and no
        warm-up by default)."""
        path = self.layout.variational_run(task.name, seed, method)
        if finished_run(path):
            return path
        clear_unfinished(path)
        c = self.config
        given = dict(getattr(c, method))
        budget = {"epochs": c.map_epochs, "learning_rate": c.learning_rate, "warmup_ratio": c.warmup_ratio}
        if method == "ivon":
            budget.update(learning_rate=IVON_DEFAULTS["learning_rate"], warmup_ratio=0.0)
        budget.update({k: given.pop(k) for k in list(budget) if given.get(k) is not None})
        given = {k: v for k, v in given.items() if k not in budget}
        training = self.training_args(path, seed, learning_rate=budget["learning_rate"],
                                      num_train_epochs=budget["epochs"], warmup_steps=budget["warmup_ratio"],
                                      eval_strategy="epoch")
        bayes = BayesArguments(bayes_method=method, **{f"{method}_{k}": v for k, v in given.items()})
        return self.timed(f"{task.name}/seed{seed}/{method}",
                          lambda: train_run(*self.arguments(task), SwagArguments(), training, bayes))
