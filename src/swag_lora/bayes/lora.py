"""The LoRA factor pairs of a model, found by duck typing (no peft import).

A LoRA layer holds, per adapter, a down-projection ``lora_A[adapter]`` (an ``nn.Linear`` with
weight A of shape [r, in]) and an up-projection ``lora_B[adapter]`` (weight B of shape
[out, r]); its update is ``scaling · B A``. BLoB and TFB put their variance on A, so they need
each layer's A and B and where they lie in the flat vector of tracked parameters
(:class:`~swag_lora.bayes.parameters.FlatParameterView`).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..errors import InvalidSettingError
from .parameters import FlatParameterView

__all__ = ["LoraFactors", "lora_factors"]


@dataclass
class LoraFactors:
    """One adapter of one LoRA layer: its A module (whose output BLoB perturbs), the A and B
    weights, and their slices of the flat tracked vector (``None`` when a view is not given or
    the weight is not tracked)."""

    name: str
    module_a: nn.Module
    a: nn.Parameter
    b: nn.Parameter
    a_slice: slice | None = None
    b_slice: slice | None = None


def lora_factors(model: nn.Module, view: FlatParameterView | None = None) -> list[LoraFactors]:
    """Every (layer, adapter) LoRA pair of ``model``, in ``named_modules()`` order; with
    ``view``, each pair's slices of the flat vector. Raises
    :class:`~swag_lora.errors.InvalidSettingError` when the model has no LoRA layer."""
    found = []
    for name, module in model.named_modules():
        lora_a, lora_b = getattr(module, "lora_A", None), getattr(module, "lora_B", None)
        if not isinstance(lora_a, nn.ModuleDict) or not isinstance(lora_b, nn.ModuleDict):
            continue
        for key in lora_a.keys():
            if key not in lora_b or not hasattr(lora_a[key], "weight"):
                continue
            pair = LoraFactors(f"{name}.{key}", lora_a[key], lora_a[key].weight, lora_b[key].weight)
            if view is not None:
                pair.a_slice = _slice(view, pair.a)
                pair.b_slice = _slice(view, pair.b)
            found.append(pair)
    if not found:
        raise InvalidSettingError("the model has no LoRA layers (lora_A / lora_B): this method needs a LoRA model")
    return found


def _slice(view: FlatParameterView, param) -> slice | None:
    try:
        return view.slice_of(param)
    except KeyError:
        return None
