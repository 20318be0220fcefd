"""When and how SWAG collects: :class:`SwagSettings` (no transformers needed to build one); the
training settings of BLoB (:class:`BlobSettings`) and IVON (:class:`IvonSettings`).

Collection points. With ``collect_every_steps = N > 0``: after optimizer steps
``start + N, start + 2N, ...``. With ``N = 0``: after the last optimizer step of every epoch
that ends after the SWAG start (the paper's once-per-epoch collection), and after the final
step of a run that stops mid-epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..bayes import blob
from ..bayes.ivon import IVON_DEFAULTS
from ..bayes.posterior import DEFAULT_MAX_RANK
from ..errors import InvalidSettingError

__all__ = ["SWAG_OPTIMIZERS", "BlobSettings", "IvonSettings", "SwagSettings"]

SWAG_OPTIMIZERS = ("sgd",)  # what the SWAG phase can switch to (None: keep the first phase's optimizer)


@dataclass
class SwagSettings:
    """When and how SWAG collects.

    Give the start as ``swag_start_epoch`` (fractional epochs allowed) or
    ``swag_start_step``; ``swag_learning_rate=None`` keeps the base schedule unchanged.
    ``branch_from_best`` starts the SWAG phase from the best-validation weights seen so far
    (with fresh optimizer moments) instead of the last iterate, as the calibration benchmark
    does; it needs evaluations during the first phase (``SwagTrainer``). ``optimizer="sgd"``
    runs the SWAG phase on SGD with ``momentum`` instead of the first phase's optimizer
    (:mod:`swag_lora.training.sgd_phase`); it needs ``swag_learning_rate``, since SGD's rates
    are not Adam's.
    """

    swag_start_epoch: float | None = None
    swag_start_step: int | None = None
    collect_every_steps: int = 0
    swag_learning_rate: float | None = None
    swag_anneal_steps: int = 0
    max_rank: int = DEFAULT_MAX_RANK
    branch_from_best: bool = False
    optimizer: str | None = None
    momentum: float = 0.9

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
        if self.optimizer is not None and self.optimizer not in SWAG_OPTIMIZERS:
            raise InvalidSettingError(f"unknown SWAG-phase optimizer {self.optimizer!r}; choose "
                                      f"{', '.join(SWAG_OPTIMIZERS)} (or none: keep the first phase's)")
        if self.optimizer is not None and self.swag_learning_rate is None:
            raise InvalidSettingError(f"a SWAG phase on {self.optimizer} needs its own swag_learning_rate: the first "
                                      "phase's rate is an Adam-style rate (e.g. 1e-3), SGD's are larger (0.01 here)")
        if not 0 <= self.momentum < 1:
            raise InvalidSettingError(f"SWAG-phase momentum must be in [0, 1), got {self.momentum}")

    def start_step(self, max_steps: int, num_train_epochs: float) -> int:
        """The optimizer step at which the SWAG phase begins, for a run of ``max_steps`` steps."""
        if self.swag_start_step is not None:
            return int(self.swag_start_step)
        steps_per_epoch = max_steps / max(num_train_epochs, 1e-12)
        return int(round(self.swag_start_epoch * steps_per_epoch))


@dataclass
class BlobSettings:
    """BLoB's training settings (defaults: the paper's scripts, see :mod:`swag_lora.bayes.blob`):
    the initial-σ parameter ε, the prior standard deviation β, the SGD rate of the KL step,
    the dataset-rescaling γ of the KL cycle (``None``: one epoch per cycle) and whether the KL
    weight is re-weighted within a cycle."""

    init_std: float = blob.DEFAULT_INIT_STD
    prior_std: float = blob.DEFAULT_PRIOR_STD
    kl_learning_rate: float = blob.DEFAULT_KL_LEARNING_RATE
    kl_gamma: float | None = blob.DEFAULT_KL_GAMMA
    kl_reweighting: bool = True

    def __post_init__(self):
        if self.init_std == 0 or self.prior_std <= 0 or self.kl_learning_rate < 0:
            raise InvalidSettingError("BLoB needs init_std != 0, prior_std > 0 and kl_learning_rate >= 0, got "
                                      f"{self.init_std}, {self.prior_std}, {self.kl_learning_rate}")
        if self.kl_gamma is not None and self.kl_gamma <= 0:
            raise InvalidSettingError(f"BLoB kl_gamma must be > 0 (or unset), got {self.kl_gamma}")


@dataclass
class IvonSettings:
    """IVON's optimizer settings besides the learning rate (defaults: see
    :mod:`swag_lora.bayes.ivon`); ``ess=None`` means the training-set size, ``hess_init=None``
    10³ / ess."""

    ess: float | None = None
    hess_init: float | None = None
    beta1: float = IVON_DEFAULTS["beta1"]
    beta2: float = IVON_DEFAULTS["beta2"]
    weight_decay: float = IVON_DEFAULTS["weight_decay"]
    clip_radius: float = IVON_DEFAULTS["clip_radius"]
    rescale_lr: bool = IVON_DEFAULTS["rescale_lr"]

    def __post_init__(self):
        if self.ess is not None and not self.ess > 0:
            raise InvalidSettingError(f"IVON ess must be > 0, got {self.ess}")
        if (self.hess_init is not None and not self.hess_init > 0) or self.weight_decay < 0 \
                or not self.clip_radius > 0:
            raise InvalidSettingError("IVON needs hess_init > 0, weight_decay >= 0 and clip_radius > 0, got "
                                      f"{self.hess_init}, {self.weight_decay}, {self.clip_radius}")
        if not (0 <= self.beta1 <= 1 and 0 <= self.beta2 <= 1):
            raise InvalidSettingError(f"IVON betas must be in [0, 1], got {self.beta1}, {self.beta2}")
