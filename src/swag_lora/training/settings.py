"""When and how SWAG collects: :class:`SwagSettings` (no transformers needed to build one).

Collection points. With ``collect_every_steps = N > 0``: after optimizer steps
``start + N, start + 2N, ...``. With ``N = 0``: after the last optimizer step of every epoch
that ends after the SWAG start (the paper's once-per-epoch collection), and after the final
step of a run that stops mid-epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..bayes.posterior import DEFAULT_MAX_RANK
from ..errors import InvalidSettingError

__all__ = ["SwagSettings"]


@dataclass
class SwagSettings:
    """When and how SWAG collects.

    Give the start as ``swag_start_epoch`` (fractional epochs allowed) or
    ``swag_start_step``; ``swag_learning_rate=None`` keeps the base schedule unchanged.
    ``branch_from_best`` starts the SWAG phase from the best-validation weights seen so far
    (with fresh optimizer moments) instead of the last iterate, as the calibration benchmark
    does; it needs evaluations during the first phase (``SwagTrainer``).
    """

    swag_start_epoch: float | None = None
    swag_start_step: int | None = None
    collect_every_steps: int = 0
    swag_learning_rate: float | None = None
    swag_anneal_steps: int = 0
    max_rank: int = DEFAULT_MAX_RANK
    branch_from_best: bool = False

    def __post_init__(self):
        if self.swag_start_epoch is not None and self.swag_start_step is not None:
            raise InvalidSettingError("give the SWAG start as swag_start_epoch or swag_start_step, not both")
        if self.swag_start_epoch is None and self.swag_start_step is None:
            raise InvalidSettingError("the SWAG start is missing: set swag_start_epoch or swag_start_step")
        if self.collect_every_steps < 0:
            raise InvalidSettingError(f"collect_every_steps must be >= 0, got {self.collect_every_steps}")
        if self.max_rank < 0:
            raise InvalidSettingError(f"max_rank must be >= 0, got {self.max_rank}")
        if self.swag_learning_rate is not None and self.swag_learning_rate < 0:
            raise InvalidSettingError(f"swag_learning_rate must be >= 0, got {self.swag_learning_rate}")

    def start_step(self, max_steps: int, num_train_epochs: float) -> int:
        """The optimizer step at which the SWAG phase begins, for a run of ``max_steps`` steps."""
        if self.swag_start_step is not None:
            return int(self.swag_start_step)
        steps_per_epoch = max_steps / max(num_train_epochs, 1e-12)
        return int(round(self.swag_start_epoch * steps_per_epoch))
