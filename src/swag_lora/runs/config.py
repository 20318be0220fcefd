"""The resolved configuration of a run (``RUN/run_config.json``) as one typed object.

:class:`RunConfig` holds the arguments the run was trained with (as the argument dataclasses,
every setting filled in, so a run saved before a setting existed reads it at its default),
the data splits it used, what SWAG collected and how MAP was chosen, the base model's
fingerprint and the provenance. Code reads ``config.model.scoring``, never
``config["model"]["scoring"]``; :meth:`RunConfig.to_dict` writes the same JSON as before.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..errors import SwagLoraError
from ..files import read_json, write_json
from .arguments import BayesArguments, DataArguments, LoraArguments, ModelArguments, SwagArguments
from .layout import RUN_CONFIG

__all__ = ["RunConfig", "RunError"]


class RunError(SwagLoraError, ValueError):
    """A run directory is missing, unfinished or incompatible, or a run cannot be made as asked."""


def _known(cls, values: dict | None) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in (values or {}).items() if k in names}


@dataclass
class RunConfig:
    """What a run directory says about how it was made (see the module docstring)."""

    model: ModelArguments
    data: DataArguments
    lora: LoraArguments
    swag: SwagArguments
    bayes: BayesArguments = field(default_factory=BayesArguments)
    variational: dict | None = None  # what BLoB or IVON training recorded (ess, KL cycle, σ summary)
    swag_resolved: dict | None = None
    training: dict = field(default_factory=dict)  # TrainingArguments.to_dict()
    n_slots: int = 0
    splits: dict = field(default_factory=dict)  # {"train": TaskSplit.to_dict(), "validation": ... or None}
    map_selection: dict | None = None
    swag_collected_at_steps: list[int] = field(default_factory=list)
    swag_start_step: int | None = None
    global_steps: int | None = None
    resumed_from: str | None = None
    base_model: dict | None = None
    world_size: int = 1
    train_seconds: float | None = None
    provenance: dict | None = None
    warnings: list[str] = field(default_factory=list)  # what training noticed that the user should know
    swag_branch: dict | None = None  # where the SWAG phase started from, with swag_from_best

    # ------------------------------------------------------------------ reading and writing
    @classmethod
    def from_dict(cls, raw: dict) -> RunConfig:
        """A config from ``run_config.json``'s content; settings it lacks take their defaults."""
        own = {f.name for f in fields(cls)} - {"model", "data", "lora", "swag", "bayes"}
        return cls(
            model=ModelArguments(**_known(ModelArguments, raw.get("model"))),
            data=DataArguments(**_known(DataArguments, raw.get("data"))),
            lora=LoraArguments(**_known(LoraArguments, raw.get("lora"))),
            swag=SwagArguments(**_known(SwagArguments, raw.get("swag"))),
            bayes=BayesArguments(**_known(BayesArguments, raw.get("bayes"))),
            **{k: v for k, v in raw.items() if k in own},
        )

    @classmethod
    def read(cls, run_dir: str | Path) -> RunConfig:
        return cls.from_dict(read_json(Path(run_dir) / RUN_CONFIG))

    def to_dict(self) -> dict:
        """The JSON of ``run_config.json``."""
        return {f.name: asdict(v) if f.name in ("model", "data", "lora", "swag", "bayes") else v
                for f in fields(self) for v in [getattr(self, f.name)]}

    def write(self, run_dir: str | Path) -> None:
        write_json(Path(run_dir) / RUN_CONFIG, self.to_dict())

    # ------------------------------------------------------------------ derived values
    @property
    def scoring(self) -> str:
        return self.model.scoring

    @property
    def objective(self) -> str:
        """``multiple-choice`` or ``generation`` (runs saved before the setting existed: the former)."""
        return self.model.objective

    def require_objective(self, objective: str, run_dir, command: str) -> None:
        """:class:`RunError` unless the run was trained for ``objective``."""
        if self.objective != objective:
            other = "swag-lora generate" if self.objective == "generation" else "swag-lora evaluate or predict"
            raise RunError(f"run {run_dir} was trained with --objective {self.objective}; {command} needs a "
                           f"{objective} run (use {other} with this one)")

    @property
    def training_task(self) -> str:
        """The canonical name of the training task (a custom task file's own name, not its path)."""
        return (self.splits.get("train") or {}).get("task", self.data.task)

    @property
    def task_definition(self) -> dict | None:
        """The custom task's recorded definition (``None`` for a built-in task)."""
        return (self.splits.get("train") or {}).get("definition")

    @property
    def trained_with(self) -> str:
        """The posterior the run was trained for: ``swag``, ``blob`` or ``ivon``."""
        return self.bayes.bayes_method

    @property
    def training_seed(self) -> int | None:
        return self.training.get("seed")

    @property
    def has_validation(self) -> bool:
        return self.data.validation_limit != 0

    def architecture(self) -> dict:
        """What must agree for two runs to share one loaded model: model and LoRA settings (but
        the adapter they started from) and, in letter mode, the answer letters."""
        lora = {k: v for k, v in asdict(self.lora).items() if k != "init_adapter"}
        out = {"model": asdict(self.model), "lora": lora}
        if self.scoring == "letter":
            out["n_slots"] = self.n_slots
        return out
