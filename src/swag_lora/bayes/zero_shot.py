"""The zero-shot baseline: the base model as it was before fine-tuning, scored the same way.

:func:`base_model` switches a :class:`~swag_lora.lm.multiple_choice.MultipleChoiceLM` back to its
pretrained weights for a ``with`` block: the LoRA adapters are disabled (``peft``'s
``disable_adapter()``) and, in letter mode, the trained answer head gets back the pretrained
LM-head rows of the answer letters it started from. Everything is restored on exit, also on
errors. :func:`zero_shot` wraps it as a one-member :class:`~swag_lora.bayes.predictive.Method`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch

from .predictive import Method

__all__ = ["base_model", "zero_shot"]


@contextmanager
def base_model(model) -> Iterator[None]:
    """Inside the block, ``model`` scores as the base LM without fine-tuning."""
    head = getattr(model, "answer_head", None)
    saved = None
    if head is not None:
        ids = model.letter_ids
        saved = head.weight.detach().clone()
        with torch.no_grad():
            head.weight.copy_(model.lm_head.weight.detach()[ids].to(head.weight.dtype))
    disable = getattr(model.lm, "disable_adapter", None)
    try:
        with disable() if disable is not None else nullcontext():
            yield
    finally:
        if saved is not None:
            with torch.no_grad():
                head.weight.copy_(saved)


def zero_shot(model) -> Method:
    """The ``zero-shot`` method: one member, the base model (:func:`base_model`)."""
    return Method("zero-shot", [lambda: base_model(model)], {"n_samples": 1})
