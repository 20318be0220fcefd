"""Trainer callbacks: SWAG collection, best-validation MAP tracking, and the non-finite-loss guard.

:class:`SwagCallback` works with any ``transformers.Trainer`` (TRL's ``SFTTrainer`` included):
give it a :class:`~swag_lora.bayes.posterior.SwagPosterior` over the model's trainable
parameters and :class:`~swag_lora.training.settings.SwagSettings`. Every process collects the
same posterior (reading parameters that FSDP or ZeRO-3 shard through
:mod:`swag_lora.distributed`).
"""

from __future__ import annotations

import math

import torch
from transformers import TrainerCallback
from transformers.trainer_utils import IntervalStrategy

from .. import distributed as D
from ..bayes.posterior import SwagPosterior
from ..errors import SwagLoraError
from .checkpoints import CheckpointError
from .settings import SwagSettings

__all__ = ["BestValidationCallback", "BranchFromBest", "CheckpointAfterEpochEvaluation", "LossGuard", "SwagCallback",
           "TrainingDivergedError", "at_epoch_end"]


class TrainingDivergedError(SwagLoraError, FloatingPointError):
    """Training produced a non-finite loss or non-finite parameters and was stopped."""


def at_epoch_end(state) -> bool:
    """Whether the Trainer's current step is the last step of an epoch."""
    return state.epoch is not None and abs(state.epoch - round(state.epoch)) < 1e-9


class CheckpointAfterEpochEvaluation(TrainerCallback):
    """Moves a step-interval checkpoint that falls on the last step of an epoch to after that
    epoch's evaluation.

    The Trainer writes such a checkpoint before the epoch-end evaluation, which then runs and
    draws from the random state (every data-loader iterator takes a seed from it) and may pick
    a new MAP candidate. A run resumed from the checkpoint would skip that evaluation and go
    on with another random state. Written after the evaluation, the checkpoint holds what an
    uninterrupted run has at that point, so resuming from it is exact.
    """

    def __init__(self):
        self.deferred = False

    def on_step_end(self, args, state, control, **kwargs):
        if control.should_save and args.eval_strategy == IntervalStrategy.EPOCH and at_epoch_end(state):
            control.should_save = False
            self.deferred = True

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.deferred:
            control.should_save = True
            self.deferred = False


class SwagCallback(TrainerCallback):
    """Collects SWAG moments at the configured points, on every process.

    ``SwagCallback(posterior, settings)`` collects into ``posterior`` (a
    :class:`~swag_lora.bayes.posterior.SwagPosterior` over the model's trainable parameters);
    ``SwagCallback(None, settings)`` makes one when training begins, over the trainable
    parameters of the model the Trainer trains (e.g. the PEFT model TRL's ``SFTTrainer`` builds
    from a ``peft_config``), with ``settings.max_rank`` deviations. Under FSDP or ZeRO-3, make
    the posterior before the Trainer shards the model, so it records the full shapes.

    ``collected_at`` records the global step of every collection; ``map_phase_end_vector``
    holds the trainable parameters as they were when the SWAG phase began. Both are part of
    :meth:`state_dict`, which checkpoints store so that a resumed run continues exactly.
    """

    def __init__(self, posterior: SwagPosterior | None, settings: SwagSettings):
        self.posterior = posterior
        self.settings = settings
        self.start_step: int | None = None
        self.collected_at: list[int] = []
        self.map_phase_end_vector: torch.Tensor | None = None
        self._restored_start_step: int | None = None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.start_step = self.settings.start_step(state.max_steps, args.num_train_epochs)
        if self._restored_start_step is not None and self._restored_start_step != self.start_step:
            raise CheckpointError(
                f"the checkpoint's SWAG phase starts at step {self._restored_start_step}, but the settings now "
                f"give step {self.start_step}: resume with the SWAG and epoch settings of the original run"
            )
        if self.posterior is None:
            if model is None:
                raise ValueError("SwagCallback(None, ...) needs the Trainer to pass the model at on_train_begin")
            self.posterior = SwagPosterior(D.unwrap(model), max_rank=self.settings.max_rank)
        if model is not None:  # the model as the Trainer prepared it (FSDP/ZeRO-3 may shard it)
            self.posterior.set_gather(D.parameter_gather(model, self.posterior.names, self.posterior.shapes))
        if state.global_step == self.start_step and self.map_phase_end_vector is None:
            self.map_phase_end_vector = self.posterior.read()

    def _collect(self, state) -> None:
        try:
            self.posterior.collect(check_finite=True)
        except FloatingPointError as err:
            raise TrainingDivergedError(
                f"non-finite values in the trainable parameters at step {state.global_step}; training stopped "
                "before collecting them (the last checkpoint and its posterior are unchanged)"
            ) from err
        self.collected_at.append(state.global_step)

    def _collection_due(self, state) -> bool:
        if state.global_step <= self.start_step:
            return False
        every = self.settings.collect_every_steps
        if every > 0:
            return (state.global_step - self.start_step) % every == 0
        return at_epoch_end(state) or state.global_step >= state.max_steps

    def on_step_end(self, args, state, control, **kwargs):
        # Per-epoch collection happens here too (at the epoch's last step, before that step's
        # checkpoint), so that every checkpoint holds the collections made up to its step.
        if state.global_step == self.start_step:
            self.map_phase_end_vector = self.posterior.read()
        if self._collection_due(state):
            self._collect(state)

    def state_dict(self) -> tuple[dict, dict[str, torch.Tensor]]:
        """What a checkpoint must hold to continue: (JSON-able values, tensors)."""
        meta = {"start_step": self.start_step, "collected_at": list(self.collected_at)}
        tensors = {} if self.map_phase_end_vector is None else {"map_phase_end": self.map_phase_end_vector}
        return meta, tensors

    def load_state_dict(self, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        self._restored_start_step = meta["start_step"]
        self.collected_at = list(meta["collected_at"])
        vector = tensors.get("map_phase_end")
        self.map_phase_end_vector = None if vector is None else vector.to(self.posterior.device)


class BestValidationCallback(TrainerCallback):
    """Keeps (in memory, on every process) the trainable-parameter vector with the lowest
    validation ``metric`` seen (the choices' ``eval_nll``, or a generation run's answer-token
    ``eval_loss``); part of the checkpointed SWAG trainer state."""

    def __init__(self, posterior: SwagPosterior, metric: str = "eval_nll"):
        self.posterior = posterior
        self.metric = metric
        self.best_value = math.inf
        self.best_step: int | None = None
        self.best_vector: torch.Tensor | None = None

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        value = (metrics or {}).get(self.metric)
        if value is not None and math.isfinite(value) and value < self.best_value:
            self.best_value = float(value)
            self.best_step = state.global_step
            self.best_vector = self.posterior.read()

    def state_dict(self) -> tuple[dict, dict[str, torch.Tensor]]:
        meta = {"metric": self.metric, "best_value": self.best_value if self.best_vector is not None else None,
                "best_step": self.best_step}
        return meta, ({} if self.best_vector is None else {"best": self.best_vector})

    def load_state_dict(self, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        if meta["metric"] != self.metric:
            raise CheckpointError(f"the checkpoint tracked {meta['metric']}, this run tracks {self.metric}")
        vector = tensors.get("best")
        self.best_vector = None if vector is None else vector.to(self.posterior.device)
        self.best_value = math.inf if meta["best_value"] is None else float(meta["best_value"])
        self.best_step = meta["best_step"]


class LossGuard(TrainerCallback):
    """Stops training before the optimizer step when any process saw a non-finite loss."""

    def __init__(self, trainer):
        self.trainer = trainer

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        flag, self.trainer._nonfinite_loss = self.trainer._nonfinite_loss, None
        if D.any_across_processes(flag if flag is not None else False):
            raise TrainingDivergedError(
                f"non-finite training loss (NaN or inf) at step {state.global_step + 1} (epoch {state.epoch or 0:.2f}); "
                "training stopped before the optimizer step, nothing more was collected or saved (the last "
                "checkpoint and its posterior are unchanged); lower the learning rate or check the data"
            )


class BranchFromBest(TrainerCallback):
    """Starts the SWAG phase from the best-validation weights: when the first step after the
    SWAG start begins (so the evaluation at the start step's epoch end has run), the tracked
    parameters are set to the best candidate and the optimizer's moments are cleared, so the
    phase explores around the MAP rather than continuing the trajectory that left it.

    ``branched_at`` records the step and the candidate's step; a run resumed from a checkpoint
    taken before the branch point branches the same way."""

    def __init__(self, swag: SwagCallback, best: BestValidationCallback, trainer):
        self.swag = swag
        self.best = best
        self.trainer = trainer
        self.branched_at: dict | None = None

    def on_step_begin(self, args, state, control, **kwargs):
        if self.swag.start_step is None or state.global_step != self.swag.start_step or self.branched_at is not None:
            return
        if self.best.best_vector is None:
            self.branched_at = {"step": state.global_step, "from": "last iterate (no evaluation ran before the SWAG "
                                                                       "phase)"}
            return
        self.swag.posterior.write(self.best.best_vector)
        optimizer = self.trainer.optimizer
        inner = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps the torch optimizer
        inner.state.clear()
        self.branched_at = {"step": state.global_step, "from": f"best validation NLL at step {self.best.best_step}"}

