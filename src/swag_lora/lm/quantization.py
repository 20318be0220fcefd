"""A quantised frozen base model (QLoRA): its weights loaded in 4 bits (NF4 or FP4, optionally
double-quantised) or 8 bits by bitsandbytes, through transformers' ``BitsAndBytesConfig``.

Only the base model is quantised: the LoRA weights (the parameters SWAG tracks) stay in
float32 (or the model dtype), as peft creates them. A LoRA adapter fits the base it was
trained on, quantisation included, so :func:`check_same_quantization` refuses to evaluate a
run with another quantisation than it was trained with.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import torch
from transformers import BitsAndBytesConfig

from ..errors import InvalidSettingError, MissingDependencyError, SwagLoraError

__all__ = ["COMPUTE_DTYPES", "QUANT_TYPES", "Quantization", "QuantizationMismatchError", "check_same_quantization",
           "keep_4bit_layers_differentiable", "loaded_quantization"]

QUANT_TYPES = ("nf4", "fp4")
COMPUTE_DTYPES = ("float32", "bfloat16", "float16")


class QuantizationMismatchError(SwagLoraError, ValueError):
    """A run is to be evaluated on a base model quantised otherwise than the one it was trained on."""


@dataclass(frozen=True)
class Quantization:
    """How the base model's weights are stored: ``bits`` 0 (not quantised), 4 or 8. For 4 bits,
    ``quant_type`` (``"nf4"``: QLoRA's NormalFloat; ``"fp4"``), ``double_quant`` (quantise the
    quantisation constants too) and ``compute_dtype`` (the dtype the 4-bit layers compute in)."""

    bits: int = 0
    quant_type: str = "nf4"
    double_quant: bool = False
    compute_dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.bits not in (0, 4, 8):
            raise InvalidSettingError(f"quantisation bits must be 0, 4 or 8, got {self.bits!r}")
        if self.quant_type not in QUANT_TYPES:
            raise InvalidSettingError(f"unknown 4-bit quantisation type {self.quant_type!r}; choose one of "
                                      f"{', '.join(QUANT_TYPES)}")
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise InvalidSettingError(f"unknown 4-bit compute dtype {self.compute_dtype!r}; choose one of "
                                      f"{', '.join(COMPUTE_DTYPES)}")

    @property
    def enabled(self) -> bool:
        return self.bits != 0

    def stored_as(self) -> tuple:
        """What decides the stored base weights (two settings with the same value load the same
        weights); the compute dtype does not."""
        if self.bits == 4:
            return (4, self.quant_type, self.double_quant)
        return (self.bits,)

    def describe(self) -> str:
        """In words, e.g. ``"4-bit nf4 with double quantisation"``, ``"8-bit"``, ``"none"``."""
        if self.bits == 0:
            return "none"
        if self.bits == 8:
            return "8-bit"
        return f"4-bit {self.quant_type}" + (" with double quantisation" if self.double_quant else "")

    def to_config(self) -> BitsAndBytesConfig | None:
        """transformers' ``BitsAndBytesConfig`` (``None`` when not quantised); a
        :class:`~swag_lora.errors.MissingDependencyError` if bitsandbytes is not installed."""
        if not self.enabled:
            return None
        if importlib.util.find_spec("bitsandbytes") is None:
            raise MissingDependencyError(f"a {self.describe()} base model needs bitsandbytes: "
                                         "pip install 'swag-lora[qlora]' (or pip install bitsandbytes)")
        if self.bits == 8:
            return BitsAndBytesConfig(load_in_8bit=True)
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=self.quant_type,
                                  bnb_4bit_use_double_quant=self.double_quant,
                                  bnb_4bit_compute_dtype=getattr(torch, self.compute_dtype))


def keep_4bit_layers_differentiable(model) -> None:
    """Keep every 4-bit layer of ``model`` on bitsandbytes' differentiable path.

    On CPUs with AVX512-BF16, bitsandbytes (0.50) repacks a 4-bit layer's weights for a faster
    kernel at its first forward in eval mode without gradients, and uses that kernel from then
    on, also in training; the kernel has no backward, so gradients through the layer are
    silently lost (training after a validation pass, Laplace's Jacobians). This turns the
    repacking off (inference on the CPU is slower; GPUs are not affected)."""
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def loaded_quantization(config) -> Quantization:
    """The quantisation a loaded model's ``config`` says its weights have (bitsandbytes only)."""
    qc = getattr(config, "quantization_config", None)
    if qc is None:
        return Quantization()
    qc = qc if isinstance(qc, dict) else qc.to_dict()
    if qc.get("load_in_4bit"):
        compute = str(qc.get("bnb_4bit_compute_dtype") or "float32").removeprefix("torch.")
        return Quantization(4, qc.get("bnb_4bit_quant_type", "nf4"), bool(qc.get("bnb_4bit_use_double_quant")),
                            compute if compute in COMPUTE_DTYPES else "float32")
    return Quantization(8) if qc.get("load_in_8bit") else Quantization()


def check_same_quantization(trained: Quantization, requested: Quantization, what: str) -> None:
    """Raise :class:`QuantizationMismatchError` (one line naming both settings) unless
    ``requested`` stores the base weights as ``trained`` did."""
    if trained.stored_as() != requested.stored_as():
        raise QuantizationMismatchError(
            f"{what} was trained on a base model with quantisation {trained.describe()!r}; evaluating it with "
            f"{requested.describe()!r} is refused (its LoRA weights fit the base they were trained on): "
            "leave out the quantisation flags to use the run's own"
        )
