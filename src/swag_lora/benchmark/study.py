"""The SWAG-exploration study: SWAG phases trained differently from the same MAP adapter (the
optimizer, its rate, how often iterates are collected, K, the phase's length), each compared
on the validation split of one seed.

Criterion: the lowest validation NLL of ``swag+ts`` (SWAG's model average with a temperature
fitted on that split, i.e. its calibrated log-likelihood, which a temperature cannot fake)
among the variants whose SWAG accuracy is within one point of MAP's. Each variant is a unit of
its own (a branch run plus one validation evaluation), skipped when its marker exists.
"""

from __future__ import annotations

from ..bayes.sampling import SamplingOptions
from ..evaluation.data import EvalSpec
from ..evaluation.harness import evaluate_run
from ..files import read_json, write_json
from ..runs.load import load_run
from ..training.callbacks import TrainingDivergedError
from .config import TaskGrid
from .layout import finished_run
from .units import UnitRunner, check_branch

__all__ = ["STUDY_METHODS", "Study"]

STUDY_METHODS = ("map", "swa", "swag")
class Study:
    """Runs the study's variants of one task and summarises them."""

    def __init__(self, units: UnitRunner):
        self.units = units
        self.config = units.config
        self.layout = units.layout

    @property
    def seed(self) -> int:
        return int(self.config.study.get("seed", self.config.tune_seed))

    def run_variant(self, task: TaskGrid, variant: str) -> dict:
        """Train the variant's branch (if not done) and evaluate it on the validation split."""
        marker = self.layout.study_marker(task.name, variant)
        spec = self.config.study_variants()[variant]
        path = self.layout.study_run(task.name, self.seed, variant)
        if marker.is_file():
            summary = read_json(marker)
            if not summary.get("diverged") and finished_run(path):
                check_branch(path, spec)  # a branch trained otherwise (e.g. its rate decayed) is refused
            return summary
        try:
            self.units.train_branch(task, self.seed, spec, path, f"{task.name}/study/{variant}/train")
        except TrainingDivergedError as err:  # a rate too high for this optimizer: a result, not a crash
            summary = {"task": task.name, "seed": self.seed, "variant": variant, "settings": spec.describe(),
                       "diverged": str(err), "n_collected": 0, "methods": {}}
            write_json(marker, summary)
            self.units.say(f"{task.name}/study/{variant}: diverged ({err})")
            return summary

        def work():
            c = self.config
            run = load_run(path)
            data = EvalSpec(task.dataset, "validation", task.validation, data_dir=self.units.data_dir(),
                            subset_seed=c.subset_seed, ood=False)
            sampling = SamplingOptions(n_samples=int(c.study.get("n_samples", c.n_samples)), seed=c.sample_seed)
            records = evaluate_run(run, [data], list(STUDY_METHODS), sampling, ece_bins=c.ece_bins,
                                   batch_size=c.eval_batch_size, output_root=path / "eval", progress=False,
                                   temperature=True, log=self.units.say)
            keys = ("acc", "nll", "ece", "brier", "aurc", "auroc_err_confidence", "auroc_err_mi", "temperature")
            summary = {"task": task.name, "seed": self.seed, "variant": variant, "settings": spec.describe(),
                       "n_collected": run.posterior.n_collected, "n_validation": records[0]["n_examples"],
                       "methods": {r["method"]: {k: r.get(k) for k in keys} for r in records}}
            write_json(marker, summary)
            return summary

        return self.units.timed(f"{task.name}/study/{variant}", work)

    def results(self, task: str) -> dict[str, dict]:
        """The finished variants of ``task``: ``{variant: {method: metrics}}``."""
        out = {}
        for variant in self.config.study_variants():
            marker = self.layout.study_marker(task, variant)
            if marker.is_file():
                out[variant] = read_json(marker)["methods"]
        return out
