"""The calibration benchmark: a grid of (task, seed) runs described by one config file,
trained and evaluated unit by unit, skipping every unit that is already done.

Per task, the units are, in order:

1. ``map`` (per seed): LoRA fine-tuning with a validation pass per epoch; the MAP adapter is
   the checkpoint with the best validation NLL.
2. ``swag`` (per seed and SWAG learning rate): a SWAG phase branched from that MAP adapter at
   a constant learning rate, collecting ``collections_per_epoch`` times per epoch. Its run
   directory's ``map/`` is the MAP adapter it started from, so every method built on MAP
   (temperature, MC dropout, Laplace) uses the same early-stopped adapter.
3. ``tuning`` (the tuning seed only): validation NLL of SWAG for every SWAG learning rate and
   sample scale; the lowest chooses the rate used for every seed and the ``swag-tuned`` scale.
4. ``eval`` (per seed): every single-run method on the test subset (and, for MAP,
   temperature, SWAG, swag-tuned and, with ``field_ood``, TFB, the OOD sets), written as soon
   as each group finishes. TFB Bayesianizes the SWAG branch's ``map/`` adapter (the
   early-stopped MAP).
5. ``blob`` and ``ivon`` (per seed): a BLoB run and an IVON run from fresh LoRA weights with the
   MAP phase's budget, then its methods (``blob`` and ``blob-mean``, ``ivon`` and
   ``ivon-mean``) on the test subset and, with ``field_ood``, the OOD sets; training and
   evaluation are one unit.
6. ``zero-shot`` once per task and ``combined`` (ensemble, MultiSWAG over the seeds, reusing
   the saved per-member log-probabilities) once every seed's ``eval`` is done.

A unit is done when its output exists (a finished run directory, a JSON marker); a run
directory left half-written by a stop is deleted and retrained. An evaluation unit a stop
interrupted starts again with ``resume``: every (method, dataset) it had written for the same
run and settings is read back, so only what was left is computed. After every unit the
results file is rebuilt from all evaluations on disk (see :mod:`swag_lora.benchmark.results`).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..bayes.laplace import LaplaceOptions
from ..bayes.sampling import SamplingOptions
from ..bayes.tfb import TfbOptions
from ..evaluation.data import EvalSpec, prepare_data
from ..evaluation.harness import evaluate_methods, evaluate_run, make_context
from ..files import write_json
from ..runs.load import attach_run, load_run
from .config import BenchConfig, BenchConfigError, TaskGrid
from .layout import Layout
from .study import Study
from .tuning import Tuning
from .units import UnitRunner

__all__ = ["Driver", "EvalGroup"]

# (group name, methods, sampling, further evaluate_run options, with the OOD sets)
EvalGroup = tuple[str, list[str], SamplingOptions, dict, bool]


class Driver:
    """Runs the grid of a :class:`BenchConfig` in ``work``; ``log`` receives progress lines."""

    def __init__(self, config: BenchConfig, work, results=None, log=print, training_overrides: dict | None = None):
        self.config = config
        self.layout = Layout(Path(work), config.swag_optimizer)
        self.units = UnitRunner(config, self.layout, Path(results) if results is not None else None, log,
                                training_overrides)
        self.tuning = Tuning(self.units)
        self.study = Study(self.units)

    @property
    def ran(self) -> list[str]:
        """The names of the units run so far, in order."""
        return self.units.ran

    def choice(self, task: TaskGrid) -> dict:
        """The SWAG learning rate and swag-tuned scale of ``task`` (tuned now if needed)."""
        return self.tuning.choice(task)

    # ------------------------------------------------------------------ evaluation
    def _specs(self, task: TaskGrid, with_ood: bool, with_validation: bool = False) -> list[EvalSpec]:
        """The test subset, then (``with_validation``) the validation subset the runs were
        tuned on, then (``with_ood``) the OOD sets."""
        data_dir = self.units.data_dir()
        c = self.config
        specs = [EvalSpec(task.dataset, "test", task.test, data_dir=data_dir, subset_seed=c.subset_seed)]
        if with_validation:
            specs.append(EvalSpec(task.dataset, "validation", task.validation, data_dir=data_dir,
                                  subset_seed=c.subset_seed, ood=False))
        if with_ood:
            for text in task.ood:
                specs.append(EvalSpec.parse(text, data_dir=data_dir, subset_seed=self.config.subset_seed, ood=True))
        return specs

    def _groups(self, task: TaskGrid, choice: dict) -> list[EvalGroup]:
        """The groups of one seed's evaluation, each a unit of its own."""
        c = self.config
        wanted = set(c.methods)
        sampled = SamplingOptions(n_samples=c.n_samples, seed=c.sample_seed)
        groups: list[EvalGroup] = []
        first = [m for m in ("map", "temperature", "swag") if m in wanted]
        if first:
            groups.append(("map-temperature-swag", first, sampled.with_(scale=c.scale), {}, True))
        if "swag-tuned" in wanted and choice["scale"] != c.scale:
            groups.append((f"swag-tuned@{choice['scale']:g}", ["swag"], sampled.with_(scale=choice["scale"]), {},
                           True))
        if "swa" in wanted:
            groups.append(("swa", ["swa"], SamplingOptions(), {}, False))
        if "mc-dropout" in wanted:
            groups.append(("mc-dropout", ["mc-dropout"], sampled.with_(n_samples=c.mc_dropout_samples), {}, False))
        if "laplace" in wanted:
            groups.append(("laplace", ["laplace"], SamplingOptions(seed=c.sample_seed),
                           {"fit_limit": c.laplace_fit_limit, "laplace": LaplaceOptions(n_samples=c.laplace_samples)},
                           False))
        if "tfb" in wanted:  # last: its σ search makes it the longest group
            groups.append(("tfb", ["tfb"], sampled, {"tfb": TfbOptions(**c.tfb)}, c.field_ood))
        return groups

    def evaluate_seed(self, task: TaskGrid, seed: int) -> None:
        choice = self.choice(task)
        lr = choice["swag_learning_rate"]
        groups = [g for g in self._groups(task, choice)
                  if not self.layout.eval_marker(task.name, seed, lr, g[0]).is_file()]
        if not groups:
            return
        run_path = self.units.train_swag(task, seed, lr)
        run = None
        for name, methods, sampling, options, with_ood in groups:
            def work(methods=methods, sampling=sampling, options=options, with_ood=with_ood, name=name):
                nonlocal run
                if run is None:
                    run = load_run(run_path)
                records = evaluate_run(run, self._specs(task, with_ood, with_validation=True), methods, sampling,
                                       ece_bins=self.config.ece_bins, batch_size=self.config.eval_batch_size,
                                       output_root=self.layout.eval_root(task.name, seed, lr), progress=False,
                                       temperature=self.config.temperature, log=self.units.say, resume=True,
                                       **options)
                write_json(self.layout.eval_marker(task.name, seed, lr, name),
                           {"labels": [r["method"] for r in records]})

            self.units.timed(f"{task.name}/seed{seed}/eval/{name}", work)

    def evaluate_variational(self, task: TaskGrid, seed: int, method: str) -> None:
        """Train the BLoB or IVON run of (task, seed) and evaluate its sampled and mean-only
        methods (those the config lists) on the test subset, the OOD sets (unless the config's
        ``field_ood`` is false), and on validation for their temperatures (as every seed's
        evaluation group)."""
        names = [m for m in (method, f"{method}-mean") if m in self.config.methods]
        marker = self.layout.variational_marker(task.name, seed, method)
        if not names or marker.is_file():
            return
        path = self.units.train_variational(task, seed, method)
        c = self.config

        def work():
            records = evaluate_run(load_run(path), self._specs(task, c.field_ood, with_validation=True), names,
                                   SamplingOptions(n_samples=c.n_samples, seed=c.sample_seed), ece_bins=c.ece_bins,
                                   batch_size=c.eval_batch_size, output_root=path / "eval", progress=False,
                                   temperature=c.temperature, log=self.units.say, resume=True)
            write_json(marker, {"labels": [r["method"] for r in records]})

        self.units.timed(f"{task.name}/seed{seed}/eval/{method}", work)

    def evaluate_zero_shot(self, task: TaskGrid) -> None:
        marker = self.layout.zero_shot_marker(task.name)
        if "zero-shot" not in self.config.methods or marker.is_file():
            return
        host = self.units.train_map(task, self.config.seeds[0])

        def work():
            evaluate_run(load_run(host), self._specs(task, False), ["zero-shot"], ece_bins=self.config.ece_bins,
                         batch_size=self.config.eval_batch_size, output_root=self.layout.zero_shot_root(task.name),
                         progress=False)
            write_json(marker, {"labels": ["zero-shot"]})

        self.units.timed(f"{task.name}/zero-shot", work)

    def evaluate_combined(self, task: TaskGrid) -> None:
        """Ensemble and MultiSWAG over every seed (at the fixed and the tuned scale), from the
        saved per-member log-probabilities of each seed's evaluation."""
        c = self.config
        wanted = [m for m in ("ensemble", "multiswag") if m in c.methods]
        if not wanted or len(c.seeds) < 2:
            return
        choice = self.choice(task)
        lr = choice["swag_learning_rate"]
        marker = self.layout.combined_marker(task.name, lr)
        if marker.is_file():
            return
        for seed in c.seeds:
            self.evaluate_seed(task, seed)
        paths = [self.layout.swag_run(task.name, s, lr) for s in c.seeds]

        def work():
            host = load_run(paths[0])
            runs = [host] + [attach_run(p, host) for p in paths[1:]]
            roots = {str(r.path): self.layout.eval_root(task.name, s, lr) for r, s in zip(runs, c.seeds)}
            datas = [prepare_data(host, spec) for spec in self._specs(task, False)]
            scales = [c.scale] + ([choice["scale"]] if choice["scale"] != c.scale else [])
            for i, scale in enumerate(scales):
                names = wanted if i == 0 else [m for m in wanted if m == "multiswag"]
                sampling = SamplingOptions(n_samples=c.n_samples, scale=scale, seed=c.sample_seed)
                ctx = make_context(runs, saved_roots=roots, sampling=sampling, batch_size=c.eval_batch_size)
                evaluate_methods(ctx, datas, names, self.layout.combined_root(task.name, lr), c.ece_bins,
                                 temperature=c.temperature, log=self.units.say, resume=True)
            write_json(marker, {"runs": [str(p) for p in paths], "scales": scales})

        self.units.timed(f"{task.name}/combined", work)

    # ------------------------------------------------------------------ the grid
    def plan(self, parts: tuple[str, ...] = ("study", "grid")) -> list[tuple[str, object]]:
        """The units in order: the SWAG-exploration study's variants (``study``); then (``grid``)
        the tuning seed of every task (tuning, its evaluation, zero-shot), the other seeds task
        by task, and the combined methods."""
        c = self.config
        units = []
        if "study" in parts:
            by_name = {t.name: t for t in c.tasks}
            for name in c.study.get("tasks", []):
                for variant in c.study_variants():
                    units.append((f"{name}/study/{variant}",
                                  lambda t=by_name[name], v=variant: self.study.run_variant(t, v)))
        if "grid" not in parts:
            return units
        for task in c.tasks:
            units.append((f"{task.name}/seed{c.tune_seed}", lambda t=task: self.evaluate_seed(t, c.tune_seed)))
            units.append((f"{task.name}/zero-shot", lambda t=task: self.evaluate_zero_shot(t)))
        for seed in c.seeds:
            if seed == c.tune_seed:
                continue
            for task in c.tasks:
                units.append((f"{task.name}/seed{seed}", lambda t=task, s=seed: self.evaluate_seed(t, s)))
        for task in c.tasks:
            units.append((f"{task.name}/combined", lambda t=task: self.evaluate_combined(t)))
        for seed in c.seeds:  # the field's methods: their own runs, after the SWAG grid
            for task in c.tasks:
                for method in ("blob", "ivon"):
                    units.append((f"{task.name}/seed{seed}/{method}",
                                  lambda t=task, s=seed, m=method: self.evaluate_variational(t, s, m)))
        return units

    def run(self, only_tasks: list[str] | None = None, deadline: float | None = None,
            parts: tuple[str, ...] = ("study", "grid")) -> list[str]:
        """Run every unit not yet done (of ``only_tasks`` and ``parts``, if given); stop before
        starting a unit after ``deadline`` (a ``time.time()`` value). Returns the names of units run."""
        self.layout.work.mkdir(parents=True, exist_ok=True)
        write_json(self.layout.work / "config.json", self.config.to_dict())
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        names = {t.name for t in self.config.tasks}
        for task in only_tasks or []:
            if task not in names:
                raise BenchConfigError(f"task {task} is not in the config's tasks ({', '.join(sorted(names))})")
        for name, unit in self.plan(parts):
            if only_tasks and name.split("/")[0] not in only_tasks:
                continue
            if deadline is not None and time.time() > deadline:
                self.units.say(f"time budget spent: stopping before {name}; run again to go on")
                break
            unit()
        self.units.collect()
        return self.ran
