"""The calibration benchmark's grid, from one YAML file: :class:`BenchConfig`, validated.

BLoB, IVON and TFB take their settings from the ``blob``, ``ivon`` and ``tfb`` mappings (the
papers' defaults where a key is absent, see :data:`VARIATIONAL_KEYS`); BLoB and IVON train for
the MAP phase's epochs unless ``epochs`` says otherwise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from ..bayes.posterior import DEFAULT_MAX_RANK
from ..bayes.registry import METHODS
from ..bayes.tfb import TfbOptions
from ..errors import SwagLoraError
from ..lm.loading import DEFAULT_LORA
from ..lm.smollm2 import SMOLLM2_ALIAS
from ..training.settings import BlobSettings, IvonSettings

__all__ = ["OPTIMIZERS", "VARIATIONAL_KEYS", "BenchConfig", "BenchConfigError", "BranchSpec", "TaskGrid"]

OPTIMIZERS = ("adamw", "sgd")  # of the SWAG phase (sgd: with momentum, as the original SWAG)

# The keys of the blob / ivon / tfb mappings: the training budget, then the method's own settings.
_BUDGET = ("epochs", "learning_rate", "warmup_ratio")
VARIATIONAL_KEYS = {
    "blob": (*_BUDGET, *(f.name for f in fields(BlobSettings))),
    "ivon": (*_BUDGET, *(f.name for f in fields(IvonSettings))),
    "tfb": tuple(f.name for f in fields(TfbOptions)),
}
_CHECKERS = {"blob": BlobSettings, "ivon": IvonSettings, "tfb": TfbOptions}

CONFIG_KEYS_HELP = "see bench/calibration.yaml for every key"


class BenchConfigError(SwagLoraError, ValueError):
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
    task: str | None = None  # the dataset, when the grid's name for it differs (e.g. obqa-shift)

    @property
    def dataset(self) -> str:
        """The task to load: ``task`` when given, else the grid name."""
        return self.task or self.name


@dataclass(frozen=True)
class BranchSpec:
    """How a SWAG branch is trained from its MAP adapter: the optimizer and its constant rate,
    collections per epoch, K and the number of epochs."""

    learning_rate: float
    optimizer: str = "adamw"
    momentum: float = 0.9
    collections_per_epoch: int = 4
    max_rank: int = DEFAULT_MAX_RANK
    epochs: float = 2

    def describe(self) -> dict:
        return asdict(self)


@dataclass
class BenchConfig:
    """Everything the grid depends on; every size is a value here so a larger machine can run
    the paper's scale from the same driver."""

    tasks: list[TaskGrid]
    model: str = SMOLLM2_ALIAS
    scoring: str = "cloze"
    max_length: int = 512
    lora_r: int = DEFAULT_LORA.r
    lora_alpha: int = DEFAULT_LORA.lora_alpha
    lora_dropout: float = DEFAULT_LORA.lora_dropout
    lora_target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_LORA.target_modules))
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
    max_rank: int = DEFAULT_MAX_RANK
    swag_optimizer: str = "adamw"
    swag_momentum: float = 0.9
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
    temperature: bool = True  # also every method with a temperature fitted on its validation predictive
    methods: list[str] = field(default_factory=lambda: [
        "zero-shot", "map", "swa", "swag", "swag-tuned", "mc-dropout", "temperature", "laplace", "tfb", "blob",
        "blob-mean", "ivon", "ivon-mean", "ensemble", "multiswag"])
    # BLoB and IVON runs (per seed) and TFB from each seed's MAP; see VARIATIONAL_KEYS
    blob: dict = field(default_factory=dict)
    ivon: dict = field(default_factory=dict)
    tfb: dict = field(default_factory=dict)
    # evaluate TFB, BLoB and IVON on the OOD sets too (else on the test and validation subsets only)
    field_ood: bool = True
    # the SWAG-exploration study on validation: {"tasks": [...], "seed": 0, "n_samples": 10,
    # "variants": {name: {learning_rate, optimizer, momentum, collections_per_epoch, max_rank, epochs}}}
    study: dict = field(default_factory=dict)

    def branch(self, learning_rate: float) -> BranchSpec:
        """The grid's SWAG branch at ``learning_rate``."""
        return BranchSpec(float(learning_rate), self.swag_optimizer, self.swag_momentum, self.collections_per_epoch,
                          self.max_rank, self.swag_epochs)

    def study_variants(self) -> dict[str, BranchSpec]:
        """The study's branches by name (the grid's settings where a variant leaves one out)."""
        base = {"optimizer": self.swag_optimizer, "momentum": self.swag_momentum,
                "collections_per_epoch": self.collections_per_epoch, "max_rank": self.max_rank,
                "epochs": self.swag_epochs}
        return {name: BranchSpec(**{**base, **spec}) for name, spec in (self.study.get("variants") or {}).items()}

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
            extra = sorted(set(spec) - {"train", "validation", "test", "ood", "length_normalize", "task"})
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
                                  spec.get("length_normalize", False), spec.get("task")))
        config = cls(**{**raw, "tasks": tasks})
        config.check()
        return config

    @classmethod
    def load(cls, path) -> BenchConfig:
        path = Path(path)
        if not path.is_file():
            raise BenchConfigError(f"config file not found: {path}")
        with open(path, encoding="utf-8") as handle:
            return cls.from_dict(yaml.safe_load(handle))

    def check(self) -> None:
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
        for method, keys in VARIATIONAL_KEYS.items():
            given = getattr(self, method)
            if not isinstance(given, dict) or set(given) - set(keys):
                raise BenchConfigError(f"{method} must be a mapping with keys among {', '.join(keys)}; got {given!r}")
            own = {k: v for k, v in given.items() if k not in _BUDGET}
            try:
                _CHECKERS[method](**own)
            except (SwagLoraError, TypeError) as err:
                raise BenchConfigError(f"{method}: {err}") from None
            for key in _BUDGET:
                if given.get(key) is not None and not (isinstance(given[key], (int, float)) and given[key] >= 0):
                    raise BenchConfigError(f"{method}: {key} must be a number >= 0, got {given[key]!r}")
        if not isinstance(self.field_ood, bool):
            raise BenchConfigError(f"field_ood must be true or false, got {self.field_ood!r}")
        if self.swag_optimizer not in OPTIMIZERS:
            raise BenchConfigError(f"swag_optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.swag_optimizer!r}")
        self._check_study()

    def _check_study(self) -> None:
        if not self.study:
            return
        extra = sorted(set(self.study) - {"tasks", "seed", "n_samples", "variants"})
        if extra:
            raise BenchConfigError(f"study: unknown key(s) {', '.join(extra)}")
        names = {t.name for t in self.tasks}
        missing = [t for t in self.study.get("tasks", []) if t not in names]
        if missing:
            raise BenchConfigError(f"study: task(s) {', '.join(missing)} not in the config's tasks")
        allowed = {f for f in BranchSpec.__dataclass_fields__}
        for name, spec in (self.study.get("variants") or {}).items():
            if not isinstance(spec, dict) or "learning_rate" not in spec or set(spec) - allowed:
                raise BenchConfigError(f"study variant {name}: give learning_rate and any of "
                                       f"{', '.join(sorted(allowed - {'learning_rate'}))}")
            if spec.get("optimizer", self.swag_optimizer) not in OPTIMIZERS:
                raise BenchConfigError(f"study variant {name}: optimizer must be one of {', '.join(OPTIMIZERS)}")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["tasks"] = {t.name: {k: v for k, v in asdict(t).items() if k != "name"} for t in self.tasks}
        return out
