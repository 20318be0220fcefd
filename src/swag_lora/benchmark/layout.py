"""Where each unit of the calibration benchmark writes under its work folder, when a unit is
done, and the SWAG learning rate and scale a task uses (fixed in the config, or tuned)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from ..files import read_json
from ..runs.layout import RUN_CONFIG
from .config import BenchConfig

__all__ = ["ACCURACY_TOLERANCE", "Layout", "choose_variant", "clear_unfinished", "finished_run", "fixed_choice",
           "lr_name", "settled_choice"]


def lr_name(lr: float, optimizer: str = "adamw") -> str:
    """The folder name of a grid SWAG branch at learning rate ``lr`` (the optimizer named when
    it is not AdamW)."""
    return f"swag-lr{lr:g}" if optimizer == "adamw" else f"swag-{optimizer}-lr{lr:g}"


@dataclass
class Layout:
    """Where each unit's output lives under the work folder."""

    work: Path
    optimizer: str = "adamw"  # of the grid's SWAG branches

    def task(self, task: str) -> Path:
        return self.work / task

    def seed(self, task: str, seed: int) -> Path:
        return self.work / task / f"seed{seed}"

    def map_run(self, task: str, seed: int) -> Path:
        return self.seed(task, seed) / "map"

    def swag_run(self, task: str, seed: int, lr: float) -> Path:
        return self.seed(task, seed) / lr_name(lr, self.optimizer)

    def study_run(self, task: str, seed: int, variant: str) -> Path:
        return self.seed(task, seed) / "study" / variant

    def study_marker(self, task: str, variant: str) -> Path:
        return self.task(task) / "study" / f"{variant}.json"

    def tuning(self, task: str) -> Path:
        return self.task(task) / "tuning.json"

    def tuning_part(self, task: str, lr: float) -> Path:
        return self.task(task) / "tuning" / f"{lr_name(lr, self.optimizer)}.json"

    def eval_root(self, task: str, seed: int, lr: float) -> Path:
        """Evaluations of one seed live in its SWAG branch, so a change of the chosen rate
        never mixes with (or skips because of) another rate's evaluations."""
        return self.swag_run(task, seed, lr) / "eval"

    def eval_marker(self, task: str, seed: int, lr: float, group: str) -> Path:
        return self.swag_run(task, seed, lr) / "done" / f"{group}.json"

    def variational_run(self, task: str, seed: int, method: str) -> Path:
        """A BLoB or IVON run of (task, seed); its evaluations live inside it."""
        return self.seed(task, seed) / method

    def variational_marker(self, task: str, seed: int, method: str) -> Path:
        return self.variational_run(task, seed, method) / "done" / f"{method}.json"

    def zero_shot_root(self, task: str) -> Path:
        return self.task(task) / "zero-shot"

    def zero_shot_marker(self, task: str) -> Path:
        return self.zero_shot_root(task) / "done.json"

    def combined_root(self, task: str, lr: float) -> Path:
        return self.task(task) / "combined" / lr_name(lr, self.optimizer)

    def combined_marker(self, task: str, lr: float) -> Path:
        return self.combined_root(task, lr) / "done.json"

    def timing(self) -> Path:
        return self.work / "timing.json"


def finished_run(path: Path) -> bool:
    """Whether ``path`` is a finished run directory (its config is written last)."""
    return (path / RUN_CONFIG).is_file()


def clear_unfinished(path: Path) -> None:
    """Delete a run directory a stop left unfinished (it is trained again)."""
    if path.exists() and not finished_run(path):
        shutil.rmtree(path)


def fixed_choice(config: BenchConfig, task: str) -> dict | None:
    """The SWAG learning rate and scale the config fixes for ``task``, or ``None`` (tune them)."""
    fixed = config.choices.get(task)
    if fixed and {"swag_learning_rate", "scale"} <= set(fixed):
        return {"swag_learning_rate": float(fixed["swag_learning_rate"]), "scale": float(fixed["scale"]),
                "rule": "fixed in the config"}
    return None


def settled_choice(config: BenchConfig, layout: Layout, task: str) -> dict | None:
    """The choice for ``task`` if it is settled: fixed in the config, or tuned already (its
    ``tuning.json`` exists); ``None`` while the tuning has not run."""
    fixed = fixed_choice(config, task)
    if fixed is not None:
        return fixed
    path = layout.tuning(task)
    return read_json(path)["choice"] if path.is_file() else None


ACCURACY_TOLERANCE = 0.01  # a variant may lose at most one point of validation accuracy against MAP


def choose_variant(results: dict[str, dict]) -> dict | None:
    """The study's choice from its variants' validation results (``{variant: {method: metrics}}``):
    the lowest ``swag+ts`` NLL among those with ``swag`` accuracy ≥ MAP's − one point."""
    eligible = {name: r for name, r in results.items()
                if r and r["swag"]["acc"] >= r["map"]["acc"] - ACCURACY_TOLERANCE - 1e-12}  # {}: diverged
    if not eligible:
        return None
    name = min(eligible, key=lambda n: (eligible[n]["swag+ts"]["nll"], n))
    return {"variant": name, "swag+ts_nll": eligible[name]["swag+ts"]["nll"],
            "rule": "lowest validation NLL of swag+ts with SWAG accuracy within one point of MAP's"}
