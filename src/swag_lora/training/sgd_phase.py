"""A SWAG phase on SGD with momentum, after a first phase on the Trainer's own optimizer.

The original SWAG collects the iterates of SGD at a high constant rate; this project's
exploration study (docs/results.md) found SGD with momentum 0.9 at 0.01 level with or better
than AdamW for the SWAG phase of a LoRA adapter. :class:`SwitchToSgd` swaps the Trainer's
optimizer (AdamW, or whatever ``--optim`` chose) for SGD over the same parameter groups when
the first step of the SWAG phase begins, so one ``swag-lora train`` runs both phases. The
learning-rate schedule keeps running on the new optimizer (the SWAG phase's constant
``swag_learning_rate``); momentum buffers start empty.

Checkpoints taken after the switch hold SGD's state; :class:`~swag_lora.training.trainer.SwagTrainer`
rebuilds SGD (not the first optimizer) when it resumes from one, so a resumed run follows the
same updates as an uninterrupted one.
"""

from __future__ import annotations

import sys

import torch
from transformers import TrainerCallback

__all__ = ["SwitchToSgd", "sgd_like"]


def sgd_like(optimizer: torch.optim.Optimizer, momentum: float) -> torch.optim.SGD:
    """SGD with ``momentum`` (no dampening, not Nesterov) over the parameter groups of
    ``optimizer``: the same parameters in the same groups, each group's current ``lr``,
    ``initial_lr`` (if a scheduler set one) and ``weight_decay`` (an L2 term in SGD), and no
    state (empty momentum buffers)."""
    groups = []
    for group in optimizer.param_groups:
        new = {"params": list(group["params"]), "lr": group["lr"], "weight_decay": group.get("weight_decay", 0.0)}
        if "initial_lr" in group:
            new["initial_lr"] = group["initial_lr"]
        groups.append(new)
    return torch.optim.SGD(groups, lr=groups[0]["lr"], momentum=momentum)


class SwitchToSgd(TrainerCallback):
    """Replaces the trainer's optimizer by :func:`sgd_like` of it when the step at the SWAG start
    (``swag.start_step`` of the :class:`~swag_lora.training.callbacks.SwagCallback`) begins.

    Accelerate wraps the torch optimizer; the wrapper (which the scheduler and the training
    loop hold) keeps its place and gets the new optimizer inside, so the schedule sets SGD's
    rate from then on. ``switched_at`` is the step of the switch (``None`` before it); a run
    resumed from a checkpoint taken after it starts on SGD (see the trainer's ``create_optimizer``)."""

    def __init__(self, swag_callback, trainer, momentum: float):
        self.swag = swag_callback
        self.trainer = trainer
        self.momentum = float(momentum)
        self.switched_at: int | None = None

    def on_step_begin(self, args, state, control, **kwargs):
        start = self.swag.start_step
        if self.switched_at is not None or start is None or state.global_step < start:
            return
        self.switch(state.global_step)

    def switch(self, step: int) -> None:
        """Put SGD in the optimizer's place now (``step``: the optimizer step it starts at)."""
        trainer = self.trainer
        wrapper = trainer.optimizer
        inner = getattr(wrapper, "optimizer", wrapper)  # accelerate's AcceleratedOptimizer wraps it
        sgd = sgd_like(inner, self.momentum)
        if inner is wrapper:  # unwrapped: everything that holds the optimizer must see the new one
            trainer.optimizer = sgd
            trainer.callback_handler.optimizer = sgd
            if trainer.lr_scheduler is not None:
                trainer.lr_scheduler.optimizer = sgd
        else:
            wrapper.optimizer = sgd
            if getattr(wrapper, "scaler", None) is not None:
                wrapper.__setstate__({})  # re-points accelerate's mixed-precision step patch at SGD
        self.switched_at = int(step)
        if trainer.args.should_log:
            print(f"swag-lora: the SWAG phase runs on SGD (momentum {self.momentum:g}) from step {step}",
                  file=sys.stderr, flush=True)
