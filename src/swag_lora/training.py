"""Training with the Hugging Face ``Trainer``: SWAG collection, the SWAG learning-rate
schedule, best-validation MAP tracking, and adapter-only checkpoints.

Schedule (DESIGN.md). Before SWAG starts: the usual linear warm-up and linear decay over
the whole run. From the SWAG start step: an SWALR-style linear anneal from the rate the
schedule had reached to ``swag_learning_rate`` over ``swag_anneal_steps``, then constant.

Collection points. With ``collect_every_steps = N > 0``: after optimizer steps
``start + N, start + 2N, ...``. With ``N = 0``: at the end of every epoch whose end lies
after the SWAG start (the paper's once-per-epoch collection).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
from transformers import Trainer, TrainerCallback

from . import metrics as M
from .posterior import SwagPosterior

POSTERIOR_FILE = "swag_posterior.safetensors"
ANSWER_HEAD_FILE = "answer_head.safetensors"


@dataclass
class SwagSettings:
    """When and how SWAG collects.

    Give the start as ``swag_start_epoch`` (fractional epochs allowed) or
    ``swag_start_step``; ``swag_learning_rate=None`` keeps the base schedule unchanged.
    """

    swag_start_epoch: float | None = None
    swag_start_step: int | None = None
    collect_every_steps: int = 0
    swag_learning_rate: float | None = None
    swag_anneal_steps: int = 0
    max_rank: int = 5

    def __post_init__(self):
        if self.swag_start_epoch is not None and self.swag_start_step is not None:
            raise ValueError("give the SWAG start as swag_start_epoch or swag_start_step, not both")
        if self.swag_start_epoch is None and self.swag_start_step is None:
            raise ValueError("the SWAG start is missing: set swag_start_epoch or swag_start_step")
        if self.collect_every_steps < 0:
            raise ValueError(f"collect_every_steps must be >= 0, got {self.collect_every_steps}")
        if self.max_rank < 0:
            raise ValueError(f"max_rank must be >= 0, got {self.max_rank}")
        if self.swag_learning_rate is not None and self.swag_learning_rate < 0:
            raise ValueError(f"swag_learning_rate must be >= 0, got {self.swag_learning_rate}")

    def start_step(self, max_steps: int, num_train_epochs: float) -> int:
        """The optimizer step at which the SWAG phase begins, for a run of ``max_steps`` steps."""
        if self.swag_start_step is not None:
            return int(self.swag_start_step)
        steps_per_epoch = max_steps / max(num_train_epochs, 1e-12)
        return int(round(self.swag_start_epoch * steps_per_epoch))


def swag_lr_multiplier(
    step: int,
    *,
    warmup_steps: int,
    total_steps: int,
    swag_start_step: int,
    anneal_steps: int,
    swag_lr_ratio: float | None,
) -> float:
    """Learning rate at ``step`` as a fraction of the base rate.

    Linear warm-up to 1 over ``warmup_steps``, linear decay toward 0 at ``total_steps``;
    from ``swag_start_step`` a linear anneal to ``swag_lr_ratio`` over ``anneal_steps``,
    then constant. ``swag_lr_ratio=None`` leaves the warm-up/decay schedule as it is.
    """

    def base(t: int) -> float:
        if t < warmup_steps:
            return t / max(1, warmup_steps)
        return max(0.0, (total_steps - t) / max(1, total_steps - warmup_steps))

    if swag_lr_ratio is None or step < swag_start_step:
        return base(step)
    start_value = base(swag_start_step)
    if anneal_steps > 0 and step < swag_start_step + anneal_steps:
        frac = (step - swag_start_step) / anneal_steps
        return start_value + frac * (swag_lr_ratio - start_value)
    return swag_lr_ratio


def logits_metrics(logits, labels, n_bins: int = M.DEFAULT_ECE_BINS) -> dict[str, float]:
    """Accuracy, NLL and ECE of single-model choice logits (−inf for absent choices)."""
    logits = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    log_probs = torch.log_softmax(logits, dim=-1).numpy()[:, None, :]
    summary = M.summarise(log_probs, np.asarray(labels), n_bins)
    return {k: summary[k] for k in ("acc", "nll", "ece", "brier")}


def compute_eval_metrics(eval_prediction) -> dict[str, float]:
    """``compute_metrics`` for the Trainer: validation accuracy, NLL, ECE and Brier."""
    logits = eval_prediction.predictions
    if isinstance(logits, tuple):
        logits = logits[0]
    return logits_metrics(logits, eval_prediction.label_ids)


class SwagCallback(TrainerCallback):
    """Collects SWAG moments at the configured points and saves the posterior with every
    checkpoint (``checkpoint-N/swag_posterior.safetensors``) and at the end of training.

    ``collected_at`` records the global step of every collection; ``map_phase_end_vector``
    holds the trainable parameters as they were when the SWAG phase began.
    """

    def __init__(self, posterior: SwagPosterior, settings: SwagSettings):
        self.posterior = posterior
        self.settings = settings
        self.start_step: int | None = None
        self.collected_at: list[int] = []
        self.map_phase_end_vector: torch.Tensor | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start_step = self.settings.start_step(state.max_steps, args.num_train_epochs)
        if state.global_step == self.start_step:
            self.map_phase_end_vector = self.posterior.read()

    def _collect(self, state) -> None:
        self._check_finite(state)
        self.posterior.collect()
        self.collected_at.append(state.global_step)

    def _check_finite(self, state) -> None:
        values = self.posterior._view.read()
        if not torch.isfinite(values).all():
            raise FloatingPointError(
                f"non-finite values in the trainable parameters at step {state.global_step}; "
                "SWAG collection stopped (the last saved posterior is unchanged)"
            )

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.start_step:
            self.map_phase_end_vector = self.posterior.read()
        every = self.settings.collect_every_steps
        if every > 0 and state.global_step > self.start_step and (state.global_step - self.start_step) % every == 0:
            self._collect(state)

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.settings.collect_every_steps == 0 and state.global_step > self.start_step:
            self._collect(state)

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.posterior.n_collected > 0:
            folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
            if os.path.isdir(folder):
                self.posterior.save(os.path.join(folder, POSTERIOR_FILE))


class BestValidationCallback(TrainerCallback):
    """Keeps (in memory) the trainable-parameter vector with the lowest validation NLL seen."""

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


class SwagTrainer(Trainer):
    """``Trainer`` for a :class:`~swag_lora.model.MultipleChoiceLM` with SWAG.

    Adds the SWAG schedule and callbacks, saves only the adapter (PEFT format) and answer
    head in checkpoints, never the frozen base weights, and tracks the best-validation
    parameters as the MAP estimate.
    """

    def __init__(self, *args, swag: SwagSettings, posterior: SwagPosterior | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.swag = swag
        self.posterior = posterior or SwagPosterior(self.model, max_rank=swag.max_rank)
        self.swag_callback = SwagCallback(self.posterior, swag)
        self.best_callback = BestValidationCallback(self.posterior)
        self.add_callback(self.swag_callback)
        self.add_callback(self.best_callback)

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.lr_scheduler is None:
            optimizer = optimizer or self.optimizer
            start = self.swag.start_step(num_training_steps, self.args.num_train_epochs)
            warmup = self.args.get_warmup_steps(min(start, num_training_steps))
            ratio = None
            if self.swag.swag_learning_rate is not None:
                ratio = self.swag.swag_learning_rate / self.args.learning_rate
            lr_lambda = _LrLambda(warmup, num_training_steps, start, self.swag.swag_anneal_steps, ratio)
            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
            self._created_lr_scheduler = True
        return self.lr_scheduler

    def _save(self, output_dir: str | None = None, state_dict=None):
        output_dir = output_dir or self.args.output_dir
        save_adapter(self.model, output_dir)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        torch.save(self.args, os.path.join(output_dir, "training_args.bin"))

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        load_adapter(self.model, resume_from_checkpoint)
        posterior_file = os.path.join(resume_from_checkpoint, POSTERIOR_FILE)
        if os.path.isfile(posterior_file):
            loaded = SwagPosterior.load(posterior_file, self.model)
            _copy_state(loaded, self.posterior)


class _LrLambda:
    """Picklable multiplier for ``LambdaLR`` (checkpoints pickle the scheduler state)."""

    def __init__(self, warmup, total, start, anneal, ratio):
        self.kw = dict(
            warmup_steps=warmup, total_steps=total, swag_start_step=start, anneal_steps=anneal, swag_lr_ratio=ratio
        )

    def __call__(self, step: int) -> float:
        return swag_lr_multiplier(step, **self.kw)


def _copy_state(src: SwagPosterior, dst: SwagPosterior) -> None:
    dst._mean.copy_(src._mean)
    dst._m2.copy_(src._m2)
    dst._dev.copy_(src._dev)
    dst.n_collected = src.n_collected
    dst._next_slot = src._next_slot


def save_adapter(model, output_dir: str) -> None:
    """Write the LoRA adapter (PEFT format) and, in letter mode, the answer head."""
    os.makedirs(output_dir, exist_ok=True)
    model.lm.save_pretrained(output_dir, safe_serialization=True)
    if getattr(model, "answer_head", None) is not None:
        from safetensors.torch import save_file

        save_file({"weight": model.answer_head.weight.detach().cpu().contiguous()}, os.path.join(output_dir, ANSWER_HEAD_FILE))


def load_adapter(model, folder: str) -> None:
    """Load adapter weights (and the answer head, if saved) from ``folder`` into ``model``."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(os.path.join(folder, "adapter_model.safetensors"))
    set_peft_model_state_dict(model.lm, weights)
    head = os.path.join(folder, ANSWER_HEAD_FILE)
    if getattr(model, "answer_head", None) is not None and os.path.isfile(head):
        with torch.no_grad():
            model.answer_head.weight.copy_(load_file(head)["weight"])
