"""Method names, their one display order, and the folder label of an evaluation.

Imports nothing (no torch): reports and result tables use it to sort and label methods.
"""

from __future__ import annotations

__all__ = [
    "METHOD_NAMES",
    "SAMPLED",
    "SCALED",
    "TEMPERED_SUFFIX",
    "TUNED_SUFFIX",
    "base_name",
    "method_label",
    "method_order",
]

# Every evaluation method, in the order tables and plots list them.
METHOD_NAMES = ("zero-shot", "map", "swa", "swag", "swag-diag", "swag-tuned", "mc-dropout", "temperature", "laplace",
                "tfb", "blob", "blob-mean", "ivon", "ivon-mean", "ensemble", "multiswag")
SCALED = ("swag", "swag-diag", "multiswag")  # their label carries the scale when it is not 1
SAMPLED = (*SCALED, "swag-tuned", "tfb", "blob", "ivon")  # their label carries "-anti" with antithetic draws
TEMPERED_SUFFIX = "+ts"  # a method with a temperature fitted on validation on top
TUNED_SUFFIX = "-tuned"  # a benchmark result at the scale chosen on validation (multiswag-tuned)


def method_label(name: str, scale: float = 1.0, antithetic: bool = False) -> str:
    """Folder name of a method's results: the name, ``-anti`` for antithetic draws and
    ``@scale`` when a scaled method's scale is not 1."""
    label = name
    if antithetic and name in SAMPLED:
        label += "-anti"
    if name in SCALED and scale != 1.0:
        label += f"@{scale:g}"
    return label


def base_name(label: str) -> str:
    """The method a label or result name belongs to (``swag-anti@4+ts`` -> ``swag``,
    ``multiswag-tuned`` -> ``multiswag``)."""
    base = label.split("@")[0].split(TEMPERED_SUFFIX)[0].removesuffix("-anti")
    if base not in METHOD_NAMES and base.endswith(TUNED_SUFFIX) and base[: -len(TUNED_SUFFIX)] in METHOD_NAMES:
        base = base[: -len(TUNED_SUFFIX)]
    return base


def method_order(label: str) -> tuple[int, str]:
    """Sort key of a method label: its method's place in :data:`METHOD_NAMES` (unknown names
    last), then the label itself, so variants follow their method."""
    base = base_name(label)
    index = METHOD_NAMES.index(base) if base in METHOD_NAMES else len(METHOD_NAMES)
    return index, label
