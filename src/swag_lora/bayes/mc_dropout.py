"""MC dropout over the LoRA adapters (Gal & Ghahramani, 2016): the adapters' dropout stays
active at test time and S seeded passes are averaged.

Only the LoRA dropout layers (``lora_dropout`` of every PEFT LoRA layer) are switched on; the
rest of the model stays in eval mode. Works on any model holding PEFT LoRA layers; imports
nothing from transformers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ..errors import InvalidSettingError
from .posterior import SwagPosterior
from .predictive import Method

__all__ = ["active_lora_dropout", "lora_dropout_rate", "lora_dropout_slots", "mc_dropout"]


def lora_dropout_slots(model: nn.Module) -> list[tuple[nn.ModuleDict, str]]:
    """Every (``lora_dropout`` dict, adapter name) pair of the model's LoRA layers."""
    slots = []
    for module in model.modules():
        dropouts = getattr(module, "lora_dropout", None)
        if isinstance(dropouts, nn.ModuleDict):
            slots += [(dropouts, key) for key in dropouts.keys()]
    return slots


def lora_dropout_rate(model: nn.Module) -> float:
    """The dropout probability the model's LoRA layers were built with (0 for identity layers)."""
    rates = {getattr(d[k], "p", 0.0) for d, k in lora_dropout_slots(model)}
    return max(rates) if rates else 0.0


@contextmanager
def active_lora_dropout(model: nn.Module, p: float, seed: int) -> Iterator[None]:
    """For the ``with`` block: every LoRA dropout layer is ``nn.Dropout(p)`` in train mode, the
    random state is seeded by ``seed`` (and restored afterwards), everything else is unchanged."""
    if not 0.0 <= p < 1.0:
        raise InvalidSettingError(f"dropout probability must be in [0, 1), got {p}")
    slots = lora_dropout_slots(model)
    if not slots:
        raise InvalidSettingError("the model has no LoRA dropout layers: MC dropout needs a PEFT LoRA model")
    originals = [d[k] for d, k in slots]
    device = next(model.parameters()).device
    devices = [device] if device.type == "cuda" else []
    try:
        for d, k in slots:
            d[k] = nn.Dropout(p).train()
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield
    finally:
        for (d, k), original in zip(slots, originals):
            d[k] = original


def mc_dropout(
    model: nn.Module,
    posterior: SwagPosterior,
    vector: torch.Tensor,
    n_samples: int,
    p: float | None = None,
    seed: int = 0,
) -> Method:
    """S dropout passes at the weights ``vector`` (the MAP), pass s seeded by ``seed * 1000 + s``.

    ``p`` overrides the rate; by default the LoRA layers' own (training) rate is used.
    """
    if n_samples < 1:
        raise InvalidSettingError(f"n_samples must be >= 1, got {n_samples}")
    rate = lora_dropout_rate(model) if p is None else float(p)

    @contextmanager
    def member(s: int):
        with posterior.written(vector), active_lora_dropout(model, rate, seed * 1000 + s):
            yield

    members = [(lambda s=s: member(s)) for s in range(n_samples)]
    return Method("mc-dropout", members, {"n_samples": n_samples, "dropout": rate, "seed": seed})
