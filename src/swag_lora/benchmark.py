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
   temperature, SWAG and swag-tuned, the OOD sets), written as soon as each group finishes.
5. ``zero-shot`` once per task and ``combined`` (ensemble, MultiSWAG over the seeds, reusing
   the saved per-member log-probabilities) once every seed's ``eval`` is done.

A unit is done when its output exists (a finished run directory, a JSON marker); a run
directory left half-written by a stop is deleted and retrained. After every unit the
results file is rebuilt from all evaluations on disk (see :mod:`swag_lora.benchmark_results`).
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .io import read_json, write_json

CONFIG_KEYS_HELP = "see bench/calibration.yaml for every key"


class BenchConfigError(ValueError):
    """The benchmark config file is missing a key, has an unknown one, or a bad value."""


@dataclass
class TaskGrid:
    """One task of the grid: subset sizes (seeded, the same questions for every seed), the
    OOD datasets (``TASK:SPLIT:LIMIT``) its runs are also evaluated on, and whether cloze
    scores are length-normalised for it."""

    name: str
    train: int
    validation: int
    test: int
    ood: list[str] = field(default_factory=list)
    length_normalize: bool = False


@dataclass
class BenchConfig:
    """Everything the grid depends on; every size is a value here so a larger machine can run
    the paper's scale from the same driver."""

    tasks: list[TaskGrid]
    model: str = "smollm2-135m-instruct"
    scoring: str = "cloze"
    max_length: int = 512
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    subset_seed: int = 0
    data_dir: str | None = None
    threads: int | None = None
    batch_size: int = 8
    eval_batch_size: int = 16
    # MAP phase
    learning_rate: float = 1e-3
    warmup_ratio: float = 0.06
    map_epochs: float = 3
    # SWAG phase, branched from the MAP adapter
    swag_epochs: float = 2
    swag_learning_rates: list[float] = field(default_factory=lambda: [1e-4, 3e-4, 1e-3])
    collections_per_epoch: int = 4
    max_rank: int = 5
    # tuning on validation (one seed)
    tune_seed: int = 0
    tune_samples: int = 5
    scale_grid: list[float] = field(default_factory=lambda: [1.0, 3.0, 10.0, 30.0])
    # fixed choices instead of tuning: {task: {"swag_learning_rate": x, "scale": y}}
    choices: dict = field(default_factory=dict)
    # evaluation
    n_samples: int = 10
    scale: float = 1.0
    mc_dropout_samples: int = 5
    laplace_fit_limit: int | None = None
    laplace_samples: int = 100
    ece_bins: int = 15
    sample_seed: int = 0
    methods: list[str] = field(default_factory=lambda: [
        "zero-shot", "map", "swa", "swag", "swag-tuned", "mc-dropout", "temperature", "laplace", "ensemble",
        "multiswag"])

    @classmethod
    def from_dict(cls, raw: dict) -> BenchConfig:
        """Validate ``raw`` (a parsed YAML/JSON file): unknown keys and bad values are errors."""
        if not isinstance(raw, dict):
            raise BenchConfigError(f"the config must be a mapping of keys to values; {CONFIG_KEYS_HELP}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise BenchConfigError(f"unknown config key(s) {', '.join(unknown)}; {CONFIG_KEYS_HELP}")
        if "tasks" not in raw or not raw["tasks"]:
            raise BenchConfigError("the config needs `tasks`: a mapping TASK -> {train, validation, test, ood}")
        tasks = []
        for name, spec in raw["tasks"].items():
            spec = dict(spec or {})
            missing = [k for k in ("train", "validation", "test") if k not in spec]
            extra = sorted(set(spec) - {"train", "validation", "test", "ood", "length_normalize"})
            if missing or extra:
                raise BenchConfigError(f"task {name}: " + (f"missing {', '.join(missing)}" if missing else "")
                                       + ("; " if missing and extra else "")
                                       + (f"unknown key(s) {', '.join(extra)}" if extra else ""))
            for key in ("train", "validation", "test"):
                if not isinstance(spec[key], int) or spec[key] < 1:
                    raise BenchConfigError(f"task {name}: {key} must be a positive number of questions, "
                                           f"got {spec[key]!r}")
            if not isinstance(spec.get("length_normalize", False), bool):
                raise BenchConfigError(f"task {name}: length_normalize must be true or false, "
                                       f"got {spec['length_normalize']!r}")
            tasks.append(TaskGrid(name, spec["train"], spec["validation"], spec["test"], list(spec.get("ood") or []),
                                  spec.get("length_normalize", False)))
        config = cls(**{**raw, "tasks": tasks})
        config.check()
        return config

    @classmethod
    def load(cls, path) -> BenchConfig:
        import yaml

        path = Path(path)
        if not path.is_file():
            raise BenchConfigError(f"config file not found: {path}")
        with open(path, encoding="utf-8") as handle:
            return cls.from_dict(yaml.safe_load(handle))

    def check(self) -> None:
        from .methods import METHODS

        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise BenchConfigError(f"seeds must be distinct and non-empty, got {self.seeds}")
        if self.tune_seed not in self.seeds:
            raise BenchConfigError(f"tune_seed {self.tune_seed} is not one of the seeds {self.seeds}")
        if not self.swag_learning_rates or any(lr <= 0 for lr in self.swag_learning_rates):
            raise BenchConfigError(f"swag_learning_rates must be positive, got {self.swag_learning_rates}")
        if not self.scale_grid or any(s <= 0 for s in self.scale_grid):
            raise BenchConfigError(f"scale_grid must be positive, got {self.scale_grid}")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise BenchConfigError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
        for name, choice in self.choices.items():
            if set(choice) - {"swag_learning_rate", "scale"}:
                raise BenchConfigError(f"choices for {name} may set swag_learning_rate and scale only")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["tasks"] = {t.name: {k: v for k, v in asdict(t).items() if k != "name"} for t in self.tasks}
        return out


# ----------------------------------------------------------------------------- layout
def lr_name(lr: float) -> str:
    return f"swag-lr{lr:g}"


@dataclass
class Layout:
    """Where each unit's output lives under the work folder."""

    work: Path

    def task(self, task: str) -> Path:
        return self.work / task

    def seed(self, task: str, seed: int) -> Path:
        return self.work / task / f"seed{seed}"

    def map_run(self, task: str, seed: int) -> Path:
        return self.seed(task, seed) / "map"

    def swag_run(self, task: str, seed: int, lr: float) -> Path:
        return self.seed(task, seed) / lr_name(lr)

    def tuning(self, task: str) -> Path:
        return self.task(task) / "tuning.json"

    def tuning_part(self, task: str, lr: float) -> Path:
        return self.task(task) / "tuning" / f"{lr_name(lr)}.json"

    def eval_root(self, task: str, seed: int, lr: float) -> Path:
        """Evaluations of one seed live in its SWAG branch, so a change of the chosen rate
        never mixes with (or skips because of) another rate's evaluations."""
        return self.swag_run(task, seed, lr) / "eval"

    def eval_marker(self, task: str, seed: int, lr: float, group: str) -> Path:
        return self.swag_run(task, seed, lr) / "done" / f"{group}.json"

    def zero_shot_root(self, task: str) -> Path:
        return self.task(task) / "zero-shot"

    def zero_shot_marker(self, task: str) -> Path:
        return self.zero_shot_root(task) / "done.json"

    def combined_root(self, task: str, lr: float) -> Path:
        return self.task(task) / "combined" / lr_name(lr)

    def combined_marker(self, task: str, lr: float) -> Path:
        return self.combined_root(task, lr) / "done.json"

    def timing(self) -> Path:
        return self.work / "timing.json"


def _finished_run(path: Path) -> bool:
    return (path / "run_config.json").is_file()


def _clear_unfinished(path: Path) -> None:
    if path.exists() and not _finished_run(path):
        shutil.rmtree(path)


class Driver:
    """Runs the grid of a :class:`BenchConfig` in ``work``; ``log`` receives progress lines."""

    def __init__(self, config: BenchConfig, work, results=None, log=print, training_overrides: dict | None = None):
        self.config = config
        self.layout = Layout(Path(work))
        self.results = Path(results) if results is not None else None
        self.log = log
        self.training_overrides = training_overrides or {}
        self.ran: list[str] = []

    # ------------------------------------------------------------------ helpers
    def _say(self, text: str) -> None:
        self.log(f"[bench {time.strftime('%H:%M:%S')}] {text}")

    def _timed(self, name: str, fn):
        started = time.time()
        self._say(f"{name}: start")
        out = fn()
        seconds = time.time() - started
        timing_file = self.layout.timing()
        timing = read_json(timing_file) if timing_file.is_file() else {}
        timing[name] = timing.get(name, 0.0) + seconds  # a unit continued later (wider tuning grid) adds up
        write_json(timing_file, timing)
        self.ran.append(name)
        self._say(f"{name}: done in {seconds:.0f} s")
        if self.results is not None:
            from .benchmark_results import collect

            collect(self.config, self.layout.work, self.results)
        return out

    def _data_dir(self) -> str | None:
        if self.config.data_dir:
            return self.config.data_dir
        from .demo import find_local_data

        return find_local_data()

    def _training_args(self, output_dir: Path, seed: int, **kw):
        from transformers import TrainingArguments

        from .config import TRAINING_DEFAULTS

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

    def _arguments(self, task: TaskGrid, init_adapter: str | None = None):
        from .config import DataArguments, LoraArguments, ModelArguments

        c = self.config
        return (
            ModelArguments(model_name_or_path=c.model, scoring=c.scoring, max_length=c.max_length,
                           cloze_length_normalize=task.length_normalize),
            DataArguments(task=task.name, data_dir=self._data_dir(), train_limit=task.train,
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
        from .config import SwagArguments
        from .experiment import train_run

        path = self.layout.map_run(task.name, seed)
        if _finished_run(path):
            return path
        _clear_unfinished(path)
        c = self.config
        total = math.ceil(self.steps_per_epoch(task) * c.map_epochs)
        training = self._training_args(path, seed, learning_rate=c.learning_rate, num_train_epochs=c.map_epochs,
                                       warmup_steps=c.warmup_ratio, eval_strategy="epoch")
        swag = SwagArguments(swag_start_step=max(total - 1, 0), swag_collect_every_steps=1, swag_max_rank=0)
        return self._timed(f"{task.name}/seed{seed}/map", lambda: train_run(*self._arguments(task), swag, training))

    def train_swag(self, task: TaskGrid, seed: int, lr: float) -> Path:
        """A SWAG phase at constant rate ``lr`` from the MAP adapter of (task, seed)."""
        from .config import SwagArguments
        from .experiment import train_run

        path = self.layout.swag_run(task.name, seed, lr)
        if _finished_run(path):
            return path
        map_run = self.train_map(task, seed)
        _clear_unfinished(path)
        c = self.config
        every = max(1, self.steps_per_epoch(task) // max(1, c.collections_per_epoch))
        training = self._training_args(path, seed, learning_rate=lr, num_train_epochs=c.swag_epochs,
                                       lr_scheduler_type="constant", warmup_steps=0, eval_strategy="no")
        swag = SwagArguments(swag_start_step=0, swag_collect_every_steps=every, swag_max_rank=c.max_rank)
        arguments = self._arguments(task, init_adapter=str(map_run / "map"))
        return self._timed(f"{task.name}/seed{seed}/{lr_name(lr)}", lambda: train_run(*arguments, swag, training))

    # ------------------------------------------------------------------ tuning
    def choice(self, task: TaskGrid) -> dict:
        """The SWAG learning rate and swag-tuned scale for ``task``: fixed in the config, or
        the lowest validation NLL of the tuning unit (run now if needed)."""
        fixed = self.config.choices.get(task.name)
        if fixed and {"swag_learning_rate", "scale"} <= set(fixed):
            return {"swag_learning_rate": float(fixed["swag_learning_rate"]), "scale": float(fixed["scale"]),
                    "rule": "fixed in the config"}
        return self.tune(task)["choice"]

    def _grid(self) -> tuple[list[float], list[float]]:
        c = self.config
        return sorted(set(float(x) for x in c.swag_learning_rates)), sorted(set(float(x) for x in c.scale_grid))

    def tune(self, task: TaskGrid) -> dict:
        """Validation NLL of SWAG over (learning rate x scale) on the tuning seed; the lowest
        is the choice. Cached in ``tuning.json`` for the grid it was computed on: a config with
        more rates or scales computes only what is new (per-rate parts keep every scale)."""
        path = self.layout.tuning(task.name)
        rates, scales = self._grid()
        if path.is_file():
            cached = read_json(path)
            if cached.get("swag_learning_rates") == rates and cached.get("scale_grid") == scales:
                return cached
        for lr in rates:  # timed as units of their own
            self.train_swag(task, self.config.tune_seed, lr)

        def run():
            parts = {}
            for lr in rates:
                part = self._tune_one(task, lr, scales)
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

        return self._timed(f"{task.name}/tuning", run)

    def _tune_one(self, task: TaskGrid, lr: float, scales: list[float]) -> dict:
        """Validation metrics of MAP, SWA and SWAG at every scale of ``scales`` (the same S
        seeded draws for every scale) for the tuning seed's branch at ``lr``; cached per rate,
        scales already computed are read back."""
        from . import metrics as M
        from .evaluation import run_split
        from .experiment import load_run
        from .methods import MethodContext
        from .predictive import fixed_weights, swag_deviations, swag_samples

        c = self.config
        part = self.layout.tuning_part(task.name, lr)
        out = read_json(part) if part.is_file() else None
        if out is not None and (out.get("n_samples", c.tune_samples) != c.tune_samples
                            or out.get("sample_seed", c.sample_seed) != c.sample_seed):
            out = None  # other draws: start again
        missing = [x for x in scales if out is None or f"{x:g}" not in out["swag"]]
        if not missing:
            return out
        run_path = self.train_swag(task, c.tune_seed, lr)
        self._say(f"{task.name}: tuning SWAG lr {lr:g} on validation (scales {', '.join(f'{x:g}' for x in missing)})")
        started = time.time()
        run = load_run(run_path)
        val = run_split(run, "validation")
        ctx = MethodContext([run], batch_size=c.eval_batch_size)
        keys = ("acc", "nll", "ece", "brier")

        def summary(method) -> dict:
            s = M.summarise(ctx.predict(method, val), val.labels, c.ece_bins)
            return {k: s[k] for k in keys}

        if out is None:
            out = {"map": summary(fixed_weights("map", run.posterior, run.map_vector)),
                   "swa": summary(fixed_weights("swa", run.posterior, run.posterior.mean())),
                   "n_validation": len(val.labels), "n_collected": run.posterior.n_collected,
                   "n_samples": c.tune_samples, "sample_seed": c.sample_seed, "swag": {}, "seconds": 0.0}
        deviations = swag_deviations(run.posterior, c.tune_samples, seed=c.sample_seed)
        for scale in missing:
            method = swag_samples(run.posterior, c.tune_samples, scale, seed=c.sample_seed, deviations=deviations)
            out["swag"][f"{scale:g}"] = summary(method)
        out["seconds"] = out.get("seconds", 0.0) + time.time() - started
        write_json(part, out)
        return out

    # ------------------------------------------------------------------ evaluation
    def _specs(self, task: TaskGrid, with_ood: bool):
        from .experiment import EvalSpec

        data_dir = self._data_dir()
        specs = [EvalSpec(task.name, "test", task.test, data_dir=data_dir, subset_seed=self.config.subset_seed)]
        if with_ood:
            for text in task.ood:
                specs.append(EvalSpec.parse(text, data_dir=data_dir, subset_seed=self.config.subset_seed, ood=True))
        return specs

    def _groups(self, task: TaskGrid, choice: dict) -> list[tuple[str, list[str], dict, bool]]:
        """(group name, methods, evaluate_run settings, with OOD) of one seed's evaluation."""
        c = self.config
        wanted = set(c.methods)
        sampled = {"n_samples": c.n_samples, "seed": c.sample_seed}
        groups = []
        first = [m for m in ("map", "temperature", "swag") if m in wanted]
        if first:
            groups.append(("map-temperature-swag", first, {**sampled, "scale": c.scale}, True))
        if "swag-tuned" in wanted and choice["scale"] != c.scale:
            groups.append((f"swag-tuned@{choice['scale']:g}", ["swag"], {**sampled, "scale": choice["scale"]}, True))
        if "swa" in wanted:
            groups.append(("swa", ["swa"], {}, False))
        if "mc-dropout" in wanted:
            groups.append(("mc-dropout", ["mc-dropout"], {"n_samples": c.mc_dropout_samples, "seed": c.sample_seed},
                           False))
        if "laplace" in wanted:
            from .laplace_lora import LaplaceOptions

            groups.append(("laplace", ["laplace"], {"seed": c.sample_seed, "fit_limit": c.laplace_fit_limit,
                                                    "laplace": LaplaceOptions(n_samples=c.laplace_samples)}, False))
        return groups

    def evaluate_seed(self, task: TaskGrid, seed: int) -> None:
        from .experiment import evaluate_run, load_run

        choice = self.choice(task)
        lr = choice["swag_learning_rate"]
        groups = [g for g in self._groups(task, choice) if not self.layout.eval_marker(task.name, seed, lr, g[0]).is_file()]
        if not groups:
            return
        run_path = self.train_swag(task, seed, lr)
        run = None
        for name, methods, settings, with_ood in groups:
            def work(methods=methods, settings=settings, with_ood=with_ood, name=name):
                nonlocal run
                if run is None:
                    run = load_run(run_path)
                records = evaluate_run(run, self._specs(task, with_ood), methods, ece_bins=self.config.ece_bins,
                                       batch_size=self.config.eval_batch_size,
                                       output_root=self.layout.eval_root(task.name, seed, lr), progress=False,
                                       **settings)
                write_json(self.layout.eval_marker(task.name, seed, lr, name), {"labels": [r["method"] for r in records]})

            self._timed(f"{task.name}/seed{seed}/eval/{name}", work)

    def evaluate_zero_shot(self, task: TaskGrid) -> None:
        from .experiment import evaluate_run, load_run

        marker = self.layout.zero_shot_marker(task.name)
        if "zero-shot" not in self.config.methods or marker.is_file():
            return
        host = self.train_map(task, self.config.seeds[0])

        def work():
            evaluate_run(load_run(host), self._specs(task, False), ["zero-shot"], ece_bins=self.config.ece_bins,
                         batch_size=self.config.eval_batch_size, output_root=self.layout.zero_shot_root(task.name),
                         progress=False)
            write_json(marker, {"labels": ["zero-shot"]})

        self._timed(f"{task.name}/zero-shot", work)

    def evaluate_combined(self, task: TaskGrid) -> None:
        """Ensemble and MultiSWAG over every seed (at the fixed and the tuned scale), from the
        saved per-member log-probabilities of each seed's evaluation."""
        from .evaluation import evaluate_methods, make_context, prepare_data
        from .experiment import attach_run, load_run

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
                ctx = make_context(runs, saved_roots=roots, n_samples=c.n_samples, scale=scale, seed=c.sample_seed,
                                   batch_size=c.eval_batch_size)
                evaluate_methods(ctx, datas, names, self.layout.combined_root(task.name, lr), c.ece_bins)
            write_json(marker, {"runs": [str(p) for p in paths], "scales": scales})

        self._timed(f"{task.name}/combined", work)

    # ------------------------------------------------------------------ the grid
    def plan(self) -> list[tuple[str, object]]:
        """The units in order: the tuning seed of every task first (tuning, its evaluation,
        zero-shot), then the other seeds task by task, then the combined methods."""
        c = self.config
        units = []
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
        return units

    def run(self, only_tasks: list[str] | None = None, deadline: float | None = None) -> list[str]:
        """Run every unit not yet done (of ``only_tasks``, if given); stop before starting a
        unit after ``deadline`` (a ``time.time()`` value). Returns the names of units run."""
        self.layout.work.mkdir(parents=True, exist_ok=True)
        write_json(self.layout.work / "config.json", self.config.to_dict())
        if self.config.threads:
            import torch

            torch.set_num_threads(self.config.threads)
        names = {t.name for t in self.config.tasks}
        for task in only_tasks or []:
            if task not in names:
                raise BenchConfigError(f"task {task} is not in the config's tasks ({', '.join(sorted(names))})")
        for name, unit in self.plan():
            if only_tasks and name.split("/")[0] not in only_tasks:
                continue
            if deadline is not None and time.time() > deadline:
                self._say(f"time budget spent: stopping before {name}; run again to go on")
                break
            unit()
        if self.results is not None:
            from .benchmark_results import collect

            collect(self.config, self.layout.work, self.results)
        return self.ran
