"""What identifies the frozen base model a run, checkpoint or adapter was made with.

Adapters and posteriors are only meaningful on the base model they were trained on; these
functions record its architecture (from its config) and refuse another one.
"""

from __future__ import annotations

from ..errors import SwagLoraError
from .quantization import loaded_quantization

__all__ = ["FINGERPRINT_KEYS", "BaseModelMismatchError", "base_model_fingerprint", "check_same_base"]

FINGERPRINT_KEYS = ("model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                    "num_attention_heads", "num_key_value_heads")


class BaseModelMismatchError(SwagLoraError, ValueError):
    """Saved weights or state were made with another base model than the one loaded now."""


def _base_of(model):
    model = getattr(model, "module", model)
    lm = getattr(model, "lm", model)
    return lm.get_base_model() if hasattr(lm, "get_base_model") else lm


def base_model_fingerprint(model) -> dict:
    """What identifies the frozen base model's architecture (from its config), its name and
    how its weights were quantised when loaded (for the record; :func:`check_same_base` compares
    the architecture only). ``model`` may be a
    :class:`~swag_lora.lm.multiple_choice.MultipleChoiceLM`, a PEFT model or a plain
    ``PreTrainedModel`` (wrapped by DDP or not)."""
    config = _base_of(model).config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    fingerprint = {key: getattr(text, key, None) for key in FINGERPRINT_KEYS}
    fingerprint["name_or_path"] = getattr(config, "_name_or_path", None)
    fingerprint["quantization"] = loaded_quantization(config).describe()
    return fingerprint


def check_same_base(recorded: dict | None, current: dict, what: str) -> None:
    """Raise :class:`BaseModelMismatchError` if ``what`` (a run, a checkpoint) was made with a
    base model of another architecture than ``current``; the name alone may differ (moved
    folders)."""
    if not recorded:
        return
    for key in FINGERPRINT_KEYS:
        if recorded.get(key) != current.get(key):
            raise BaseModelMismatchError(
                f"{what} was made with base model {recorded.get('name_or_path')!r} ({key}={recorded.get(key)}), "
                f"but the loaded base model {current.get('name_or_path')!r} has {key}={current.get(key)}"
            )
