"""The SWAG learning-rate schedule.

Before SWAG starts: the Trainer's schedule, a warm-up then a linear decay over the whole run
(``linear``, transformers' default) or a constant rate (``constant``, ``constant_with_warmup``);
other ``lr_scheduler_type`` values are refused by the trainer rather than silently replaced.
From the SWAG start step: an SWALR-style linear anneal from the rate the schedule had reached to
``swag_learning_rate`` over ``swag_anneal_steps``, then constant. :func:`swag_lr_scheduler`
builds it for any optimizer, so a plain ``Trainer`` (``optimizers=(optimizer, scheduler)``)
or your own loop can use it; :class:`~swag_lora.training.trainer.SwagTrainer` does so itself.
"""

from __future__ import annotations

import torch

from ..errors import InvalidSettingError
from .settings import SwagSettings

__all__ = ["BASE_SCHEDULES", "SwagLrLambda", "swag_lr_multiplier", "swag_lr_scheduler"]

BASE_SCHEDULES = ("linear", "constant", "constant_with_warmup")  # the Trainer's lr_scheduler_type values followed


def swag_lr_multiplier(
    step: int,
    *,
    warmup_steps: int,
    total_steps: int,
    swag_start_step: int,
    anneal_steps: int,
    swag_lr_ratio: float | None,
    schedule: str = "linear",
) -> float:
    """Learning rate at ``step`` as a fraction of the base rate.

    ``schedule`` ``linear``: linear warm-up to 1 over ``warmup_steps``, linear decay toward 0
    at ``total_steps``; ``constant``: 1 throughout; ``constant_with_warmup``: the warm-up, then
    1. From ``swag_start_step`` a linear anneal to ``swag_lr_ratio`` over ``anneal_steps``,
    then constant. ``swag_lr_ratio=None`` leaves the base schedule as it is.
    """
    if schedule not in BASE_SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(BASE_SCHEDULES)}, got {schedule!r}")

    def base(t: int) -> float:
        if schedule == "constant":
            return 1.0
        if t < warmup_steps:
            return t / max(1, warmup_steps)
        if schedule == "constant_with_warmup":
            return 1.0
        return max(0.0, (total_steps - t) / max(1, total_steps - warmup_steps))

    if swag_lr_ratio is None or step < swag_start_step:
        return base(step)
    start_value = base(swag_start_step)
    if anneal_steps > 0 and step < swag_start_step + anneal_steps:
        frac = (step - swag_start_step) / anneal_steps
        return start_value + frac * (swag_lr_ratio - start_value)
    return swag_lr_ratio


class SwagLrLambda:
    """Picklable multiplier for ``LambdaLR`` (checkpoints pickle the scheduler state)."""

    def __init__(self, warmup, total, start, anneal, ratio, schedule: str = "linear"):
        self.kw = dict(
            warmup_steps=warmup, total_steps=total, swag_start_step=start, anneal_steps=anneal, swag_lr_ratio=ratio
        )
        if schedule != "linear":  # absent from checkpoints written before the base schedule was a choice
            self.kw["schedule"] = schedule

    def __call__(self, step: int) -> float:
        return swag_lr_multiplier(step, **self.kw)


def swag_lr_scheduler(
    optimizer: torch.optim.Optimizer,
    settings: SwagSettings,
    num_training_steps: int,
    num_train_epochs: float,
    learning_rate: float,
    warmup_steps: int = 0,
    schedule: str = "linear",
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` following :func:`swag_lr_multiplier` for a run of ``num_training_steps``
    optimizer steps over ``num_train_epochs`` epochs at base rate ``learning_rate``, with a
    warm-up of ``warmup_steps`` steps and the base ``schedule`` (see :data:`BASE_SCHEDULES`;
    another raises ``ValueError`` as the scheduler evaluates its first step). A SWAG rate above 0
    from a base rate of 0 is refused (:class:`InvalidSettingError`): the multiplier scales the base."""
    start = settings.start_step(num_training_steps, num_train_epochs)
    ratio = None
    if settings.swag_learning_rate is not None:
        if learning_rate == 0 and settings.swag_learning_rate != 0:
            raise InvalidSettingError(f"swag_learning_rate {settings.swag_learning_rate:g} cannot be reached from "
                                      "learning_rate 0: the schedule scales the base rate; give a learning_rate > 0")
        ratio = settings.swag_learning_rate / learning_rate if learning_rate else 0.0
    lr_lambda = SwagLrLambda(warmup_steps, num_training_steps, start, settings.swag_anneal_steps, ratio, schedule)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
