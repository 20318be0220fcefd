"""The base-model quantisation flags of ``evaluate`` and ``predict``.

A run is always evaluated on its base model quantised as in training (``run_config.json``
records it). These flags only state what the user expects; one that differs from the run's
is refused with a message naming both (:func:`~swag_lora.runs.load.check_run_quantization`).
"""

from __future__ import annotations

import argparse

from ..lm.quantization import QUANT_TYPES

__all__ = ["add_quantization_flags", "requested_quantization"]


def add_quantization_flags(parser: argparse.ArgumentParser) -> None:
    """``--load_in_4bit``, ``--load_in_8bit``, ``--bnb_4bit_quant_type``, ``--bnb_4bit_use_double_quant``."""
    group = parser.add_argument_group(
        "quantised base model (default: as the run was trained; another quantisation is refused)")
    bits = group.add_mutually_exclusive_group()
    bits.add_argument("--load_in_4bit", action="store_true", default=None, help="the run's base model is 4-bit")
    bits.add_argument("--load_in_8bit", action="store_true", default=None, help="the run's base model is 8-bit")
    group.add_argument("--bnb_4bit_quant_type", choices=QUANT_TYPES, default=None, help="its 4-bit data type")
    group.add_argument("--bnb_4bit_use_double_quant", action="store_true", default=None,
                       help="its 4-bit constants are double-quantised")


def requested_quantization(args: argparse.Namespace) -> dict | None:
    """The quantisation settings given on the command line (``None`` when none were)."""
    names = ("load_in_4bit", "load_in_8bit", "bnb_4bit_quant_type", "bnb_4bit_use_double_quant")
    given = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    return given or None
