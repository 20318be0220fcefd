"""Load a causal LM and its tokenizer, and give it fresh LoRA adapters.

The packaged demo model's alias (:data:`~swag_lora.lm.smollm2.SMOLLM2_ALIAS`) resolves to its
converted safetensors cache; any other name goes to ``from_pretrained`` (hub name or folder).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from peft import LoraConfig, TaskType, get_peft_model
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer

from .smollm2 import SMOLLM2_ALIAS, smollm2_path

__all__ = ["DEFAULT_LORA", "LoraSettings", "apply_lora", "load_causal_lm", "resolve_model_path"]


@dataclass
class LoraSettings:
    """LoRA hyperparameters; the defaults are the paper's (r=8, alpha=16, dropout 0.1, q and v)."""

    r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])

    def to_peft(self) -> LoraConfig:
        return LoraConfig(
            r=self.r,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            target_modules=list(self.target_modules),
            task_type=TaskType.CAUSAL_LM,
            bias="none",
        )


DEFAULT_LORA = LoraSettings()


def resolve_model_path(name_or_path: str) -> str:
    """The packaged demo model's alias becomes its converted cache folder; anything else is kept."""
    if name_or_path == SMOLLM2_ALIAS:
        return str(smollm2_path())
    return name_or_path


def load_causal_lm(name_or_path: str, dtype: torch.dtype | str | None = None, **kwargs):
    """``AutoModelForCausalLM`` and its tokenizer, by hub name or local folder.

    The tokenizer gets a pad token (its EOS) if it has none; padding positions are found
    from the attention mask, never from the pad id.
    """
    if isinstance(dtype, str):
        dtype = None if dtype == "auto" else getattr(torch, dtype)
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, **{k: v for k, v in kwargs.items() if k == "gguf_file"})
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model_kwargs = dict(kwargs)
    if dtype is not None:
        model_kwargs["dtype"] = dtype
    model = AutoModelForCausalLM.from_pretrained(name_or_path, **model_kwargs)
    return model, tokenizer


def apply_lora(model: nn.Module, settings: LoraSettings | None = None):
    """Wrap ``model`` with fresh LoRA adapters (``peft.get_peft_model``); only they are trainable."""
    settings = settings or LoraSettings()
    return get_peft_model(model, settings.to_peft())
