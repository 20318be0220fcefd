"""BLoB in the Trainer: the flipout noise on the LoRA A outputs and the KL step after every
optimizer step, as the authors' code trains it (``modelwrappers/blob.py``, ``BLoB.fit``).

Each optimizer step of the Trainer's optimizer (AdamW) minimises the batch NLL under one
flipout sample; the means (the A weights), B and any head are its parameters, the
standard-deviation parameters G are not. After the step a second optimizer, plain SGD at the
KL rate (0.01, with the Trainer's warm-up steps and a linear decay to 0), takes one step on the NLL
gradient the G received plus π_i · KL(q ‖ p) for the A means and G, π_i the step's KL weight
(:func:`~swag_lora.bayes.blob.kl_weight`). This is the code's split: its AdamW was built
before G existed, and its SGD ``opt2`` holds every parameter.
"""

from __future__ import annotations

import math

import torch
from transformers import TrainerCallback

from .. import distributed as D
from ..bayes.blob import BlobVariational, kl_cycle_length, kl_weight
from .checkpoints import CheckpointError
from .schedule import swag_lr_multiplier
from .settings import BlobSettings

__all__ = ["BlobCallback"]


class BlobCallback(TrainerCallback):
    """The KL step of BLoB after every optimizer step, over ``variational`` (attached to the
    model the Trainer trains) with ``settings``; ``n_train`` is the training-set size N."""

    def __init__(self, variational: BlobVariational, settings: BlobSettings, n_train: int):
        self.variational = variational
        self.settings = settings
        self.n_train = int(n_train)
        self.cycle: int | None = None
        self.last_kl: float | None = None
        self.optimizer: torch.optim.SGD | None = None
        self._schedule: dict = {}

    def on_train_begin(self, args, state, control, **kwargs):
        batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * max(1, args.world_size)
        steps_per_epoch = math.ceil(state.max_steps / max(args.num_train_epochs, 1e-12))
        self.cycle = kl_cycle_length(self.n_train, batch, steps_per_epoch, self.settings.kl_gamma)
        self.variational.to(self.variational.factors[0].a.device)  # where the Trainer put the model
        params = [f.a for f in self.variational.factors] + list(self.variational.g)
        self.optimizer = torch.optim.SGD(params, lr=self.settings.kl_learning_rate)
        self._schedule = {"warmup_steps": args.get_warmup_steps(state.max_steps), "total_steps": state.max_steps,
                          "swag_start_step": state.max_steps, "anneal_steps": 0, "swag_lr_ratio": None}
        self.variational.attach()

    def on_step_end(self, args, state, control, **kwargs):
        step = state.global_step - 1  # the optimizer step just taken, from 0: its rate in the linear schedule
        for group in self.optimizer.param_groups:
            group["lr"] = self.settings.kl_learning_rate * swag_lr_multiplier(step, **self._schedule)
        weight = kl_weight(state.global_step, self.cycle, self.settings.kl_reweighting)
        D.average_gradients(list(self.variational.g))  # their NLL gradients, from every process's batch
        kl = self.variational.kl(self.settings.prior_std)
        (kl * weight).backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.last_kl = float(kl.detach())

    def summary(self) -> dict:
        """What the run records about its BLoB training."""
        sigmas = torch.cat([s.detach().reshape(-1) for s in self.variational.sigmas()])
        return {"kl_cycle_steps": self.cycle, "final_kl": self.last_kl, "sigma_mean": float(sigmas.mean()),
                "sigma_max": float(sigmas.max()), "n_train": self.n_train}

    def state_dict(self) -> tuple[dict, dict[str, torch.Tensor]]:
        """The G values (the rest follows from the step count) for a checkpoint."""
        return {"n_g": len(self.variational.g)}, {f"g{i}": g.detach() for i, g in enumerate(self.variational.g)}

    def load_state_dict(self, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        if meta.get("n_g") != len(self.variational.g):
            raise CheckpointError(f"the checkpoint holds {meta.get('n_g')} BLoB variance matrices, this model "
                                  f"{len(self.variational.g)}")
        with torch.no_grad():
            for i, g in enumerate(self.variational.g):
                g.copy_(tensors[f"g{i}"].to(g.device))
