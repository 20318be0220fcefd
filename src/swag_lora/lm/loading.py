"""Load a causal LM and its tokenizer, and give it fresh LoRA adapters.

The packaged demo model's alias (:data:`~swag_lora.lm.smollm2.SMOLLM2_ALIAS`) and any model given
as a GGUF file resolve to a converted safetensors cache; any other name goes to
``from_pretrained`` (hub name or folder).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from peft import LoraConfig, TaskType, get_peft_model
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer

from .. import distributed as D
from ..errors import InvalidSettingError, SwagLoraError
from .gguf import converted_gguf
from .quantization import Quantization, keep_4bit_layers_differentiable
from .smollm2 import SMOLLM2_ALIAS, smollm2_path

__all__ = ["DEFAULT_LORA", "LoraSettings", "ModelNotFoundError", "apply_lora", "base_causal_lm", "load_causal_lm",
           "resolve_model_path"]


class ModelNotFoundError(SwagLoraError, OSError):
    """The base model (or its tokenizer) cannot be loaded from the name or folder given."""


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


def resolve_model_path(name_or_path: str, gguf_file: str | None = None) -> str:
    """The folder or hub name to load: the packaged demo model's alias becomes its converted cache
    folder; a model given as a GGUF file (``gguf_file`` in the folder or hub repository
    ``name_or_path``) becomes its converted safetensors cache (:func:`~swag_lora.lm.gguf.converted_gguf`,
    converted on first use); anything else is kept."""
    if name_or_path == SMOLLM2_ALIAS and not gguf_file:
        return str(smollm2_path())
    if gguf_file:
        return str(converted_gguf(name_or_path, gguf_file))
    return name_or_path


def load_causal_lm(name_or_path: str, dtype: torch.dtype | str | None = None,
                   quantization: Quantization | None = None, **kwargs):
    """``AutoModelForCausalLM`` and its tokenizer, by hub name or local folder; with an enabled
    ``quantization`` its linear layers are loaded quantised (QLoRA's frozen base), on this
    process's GPU when there is one.

    The tokenizer gets a pad token (its EOS) if it has none; padding positions are found
    from the attention mask, never from the pad id.
    """
    if isinstance(dtype, str):
        if dtype != "auto" and not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise InvalidSettingError(f"unknown model dtype {dtype!r}; use auto, float32, bfloat16 or float16")
        dtype = None if dtype == "auto" else getattr(torch, dtype)
    model_kwargs = dict(kwargs)
    if dtype is not None:
        model_kwargs["dtype"] = dtype
    if quantization is not None and quantization.enabled:
        model_kwargs["quantization_config"] = quantization.to_config()
        if torch.cuda.is_available():  # quantised weights are placed at load time, not moved later
            model_kwargs.setdefault("device_map", {"": D.local_rank()})
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, **{k: v for k, v in kwargs.items() if k == "gguf_file"})
        model = AutoModelForCausalLM.from_pretrained(name_or_path, **model_kwargs)
    except OSError as err:  # transformers' "not a local folder and not a valid model identifier" and the like
        reason = " ".join(str(err).split())
        raise ModelNotFoundError(f"cannot load model {name_or_path!r}: {reason}") from err
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if quantization is not None and quantization.bits == 4:
        keep_4bit_layers_differentiable(model)
    return model, tokenizer


def apply_lora(model: nn.Module, settings: LoraSettings | None = None):
    """Wrap ``model`` with fresh LoRA adapters (``peft.get_peft_model``); only they are trainable."""
    settings = settings or LoraSettings()
    try:
        return get_peft_model(model, settings.to_peft())
    except ValueError as err:  # e.g. target modules the model does not have
        raise InvalidSettingError(f"LoRA settings do not fit the model: {' '.join(str(err).split())}") from err


def base_causal_lm(lm: nn.Module) -> nn.Module:
    """The causal LM inside a PEFT model (the model itself when it is not one)."""
    return lm.get_base_model() if hasattr(lm, "get_base_model") else lm
