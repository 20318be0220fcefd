"""What identifies the frozen base model a run, checkpoint or adapter was made with.

Adapters and posteriors are only meaningful on the base model they were trained on. The
fingerprint records the architecture (from the model's config) and a digest of the weights: a
SHA-256 over a fixed sample of up to :data:`SAMPLE` evenly spaced values of every base
parameter, rounded to bfloat16 (so a float32 and a bfloat16 load of the same weights agree),
with the parameter's name and shape. Another architecture is always refused; other weights of
the same architecture are refused unless the caller allows it (then a warning says so).
"""

from __future__ import annotations

import hashlib
import warnings

import torch

from ..errors import SwagLoraError
from .quantization import loaded_quantization

__all__ = ["FINGERPRINT_KEYS", "SAMPLE", "BaseModelMismatchError", "base_model_fingerprint", "check_same_base",
           "sample_indices", "weights_digest"]

FINGERPRINT_KEYS = ("model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                    "num_attention_heads", "num_key_value_heads")
SAMPLE = 1024  # values per parameter that enter the weights digest
_ADAPTER_MARKERS = ("lora_", "modules_to_save", "original_module")


class BaseModelMismatchError(SwagLoraError, ValueError):
    """Saved weights or state were made with another base model than the one loaded now."""


def _base_of(model):
    model = getattr(model, "module", model)
    lm = getattr(model, "lm", model)
    return lm.get_base_model() if hasattr(lm, "get_base_model") else lm


def sample_indices(n: int, k: int) -> torch.Tensor:
    """``min(n, k)`` evenly spaced indices into ``n`` values, first and last included (integer
    arithmetic: float positions would round past the end of large tensors)."""
    k = min(n, k)
    if k == 1:
        return torch.zeros(1, dtype=torch.long)
    return torch.arange(k, dtype=torch.long) * (n - 1) // (k - 1)


@torch.no_grad()
def weights_digest(base: torch.nn.Module) -> str | None:
    """The digest of ``base``'s own parameters (LoRA and other adapter parameters left out, and
    PEFT's ``base_layer`` wrapping undone in the names); ``None`` when a parameter is
    partitioned away from this process (DeepSpeed ZeRO-3), where it cannot be sampled."""
    digest = hashlib.sha256()
    for name, param in base.named_parameters():
        if any(marker in name for marker in _ADAPTER_MARKERS):
            continue
        if hasattr(param, "ds_id"):
            return None
        flat = param.detach().reshape(-1)
        n = flat.numel()
        if n == 0:
            continue
        index = sample_indices(n, SAMPLE).to(flat.device)
        sample = flat[index].float().to(torch.bfloat16).view(torch.int16).cpu().numpy().tobytes()
        digest.update(f"{name.replace('.base_layer', '')}|{tuple(param.shape)}|".encode())
        digest.update(sample)
    return digest.hexdigest()


def base_model_fingerprint(model) -> dict:
    """What identifies the frozen base model: its architecture (from its config), its name, the
    digest of its weights, and how its weights were quantised when loaded (for the record).
    ``model`` may be a :class:`~swag_lora.lm.multiple_choice.MultipleChoiceLM`, a PEFT model or
    a plain ``PreTrainedModel`` (wrapped by DDP or not)."""
    base = _base_of(model)
    config = base.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    fingerprint = {key: getattr(text, key, None) for key in FINGERPRINT_KEYS}
    fingerprint["name_or_path"] = getattr(config, "_name_or_path", None)
    fingerprint["weights_sha256"] = weights_digest(base)
    fingerprint["quantization"] = loaded_quantization(config).describe()
    return fingerprint


def check_same_base(recorded: dict | None, current: dict, what: str, allow_mismatch: bool = False) -> None:
    """Raise :class:`BaseModelMismatchError` if ``what`` (a run, a checkpoint, an adapter) was
    made with another base model than ``current``: another architecture always; other weights
    of the same architecture unless ``allow_mismatch`` (then a warning). The name alone may
    differ (moved folders); a record without a weights digest (older runs) is checked on its
    architecture only."""
    if not recorded:
        return
    was, now = recorded.get("name_or_path"), current.get("name_or_path")
    loaded = f"the base model loaded now from {now!r}" if now != was else f"the model now at {now!r}"
    for key in FINGERPRINT_KEYS:
        if recorded.get(key) != current.get(key):
            raise BaseModelMismatchError(
                f"{what} was made with base model {was!r} ({key}={recorded.get(key)}), but {loaded} has "
                f"{key}={current.get(key)}"
            )
    theirs, ours = recorded.get("weights_sha256"), current.get("weights_sha256")
    if theirs and ours and theirs != ours:
        message = (f"{what} was made with base model {was!r}, but {loaded} has other weights (same architecture, "
                   f"weights digest {ours[:12]} instead of {theirs[:12]})")
        if not allow_mismatch:
            raise BaseModelMismatchError(
                message + "; load the base model it was made with, or pass --allow_base_mismatch to go on anyway"
            )
        warnings.warn(message + "; going on because the mismatch is allowed", stacklevel=2)
