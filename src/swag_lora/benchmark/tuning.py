"""The benchmark's tuning unit: validation NLL of SWAG over (learning rate × scale) on the
tuning seed, whose lowest value chooses the rate every seed uses and the ``swag-tuned`` scale.

Cached in ``tuning.json`` for the grid it was computed on; per-rate parts keep every scale, so
a config with more rates or scales computes only what is new. The scale grid is evaluated by
:func:`~swag_lora.bayes.fitting.scale_grid_log_probs` (one set of draws for every scale), the
same loop ``swag-tuned`` uses.
"""

from __future__ import annotations

import time

from .. import metrics as M
from ..bayes.fitting import scale_grid_log_probs
from ..bayes.predictive import fixed_weights
from ..bayes.registry import MethodContext
from ..bayes.sampling import SamplingOptions
from ..evaluation.data import run_split
from ..files import read_json, write_json
from ..runs.load import load_run
from .config import TaskGrid
from .layout import fixed_choice
from .units import UnitRunner

__all__ = ["Tuning"]

SUMMARY_KEYS = ("acc", "nll", "ece", "brier")


class Tuning:
    """The SWAG learning rate and scale of each task, fixed in the config or tuned on validation."""

    def __init__(self, units: UnitRunner):
        self.units = units
        self.config = units.config
        self.layout = units.layout

    def choice(self, task: TaskGrid) -> dict:
        """The SWAG learning rate and swag-tuned scale for ``task``: fixed in the config, or
        the lowest validation NLL of the tuning unit (run now if needed)."""
        return fixed_choice(self.config, task.name) or self.tune(task)["choice"]

    def _grid(self) -> tuple[list[float], list[float]]:
        c = self.config
        return sorted(set(float(x) for x in c.swag_learning_rates)), sorted(set(float(x) for x in c.scale_grid))

    def tune(self, task: TaskGrid) -> dict:
        """Validation NLL of SWAG over (learning rate x scale) on the tuning seed; the lowest
        is the choice (see the module docstring for the caching)."""
        path = self.layout.tuning(task.name)
        rates, scales = self._grid()
        if path.is_file():
            cached = read_json(path)
            if cached.get("swag_learning_rates") == rates and cached.get("scale_grid") == scales:
                return cached
        for lr in rates:  # timed as units of their own
            self.units.train_swag(task, self.config.tune_seed, lr)

        def run():
            parts = {}
            for lr in rates:
                part = self.tune_rate(task, lr, scales)
                parts[f"{lr:g}"] = {**part, "swag": {f"{x:g}": part["swag"][f"{x:g}"] for x in scales}}
            candidates = [(v["nll"], float(lr), float(x)) for lr, p in parts.items() for x, v in p["swag"].items()]
            nll, lr, scale = min(candidates)
            first = next(iter(parts.values()))
            result = {
                "task": task.name, "seed": self.config.tune_seed, "n_validation": first["n_validation"],
                "n_samples": self.config.tune_samples, "map": first["map"], "swag_learning_rates": rates,
                "scale_grid": scales, "by_learning_rate": parts,
                "choice": {"swag_learning_rate": lr, "scale": scale, "validation_nll": nll,
                           "rule": "lowest validation NLL of SWAG over learning rate x scale"},
            }
            if scale == scales[-1]:
                result["choice"]["warning"] = "the chosen scale is the largest of the grid: try larger ones"
            write_json(path, result)
            return result

        return self.units.timed(f"{task.name}/tuning", run)

    def tune_rate(self, task: TaskGrid, lr: float, scales: list[float]) -> dict:
        """Validation metrics of MAP, SWA and SWAG at every scale of ``scales`` (the same S
        seeded draws for every scale) for the tuning seed's branch at ``lr``; cached per rate,
        scales already computed are read back."""
        c = self.config
        part = self.layout.tuning_part(task.name, lr)
        out = read_json(part) if part.is_file() else None
        if out is not None and (out.get("n_samples", c.tune_samples) != c.tune_samples
                                or out.get("sample_seed", c.sample_seed) != c.sample_seed):
            out = None  # other draws: start again
        missing = [x for x in scales if out is None or f"{x:g}" not in out["swag"]]
        if not missing:
            return out
        run_path = self.units.train_swag(task, c.tune_seed, lr)
        self.units.say(f"{task.name}: tuning SWAG lr {lr:g} on validation "
                       f"(scales {', '.join(f'{x:g}' for x in missing)})")
        started = time.time()
        run = load_run(run_path)
        val = run_split(run, "validation")
        ctx = MethodContext([run], batch_size=c.eval_batch_size)

        def summary(log_probs) -> dict:
            s = M.summarise(log_probs, val.labels, c.ece_bins)
            return {k: s[k] for k in SUMMARY_KEYS}

        if out is None:
            out = {"map": summary(ctx.predict(fixed_weights("map", run.posterior, run.map_vector), val)),
                   "swa": summary(ctx.predict(fixed_weights("swa", run.posterior, run.posterior.mean()), val)),
                   "n_validation": len(val.labels), "n_collected": run.posterior.n_collected,
                   "n_samples": c.tune_samples, "sample_seed": c.sample_seed, "swag": {}, "seconds": 0.0}
        options = SamplingOptions(n_samples=c.tune_samples, seed=c.sample_seed)
        grid = scale_grid_log_probs(run.posterior, options, missing, lambda m: ctx.predict(m, val))
        for scale, (_, log_probs) in grid.items():
            out["swag"][f"{scale:g}"] = summary(log_probs)
        out["seconds"] = out.get("seconds", 0.0) + time.time() - started
        write_json(part, out)
        return out
