"""Formatting shared by every report: mean ± standard deviation over runs, and the method order."""

from __future__ import annotations

import numpy as np

from ..bayes.names import method_order

__all__ = ["mean_std", "method_order"]


def mean_std(values) -> str:
    """Three decimals; ``mean ± std`` (sample standard deviation) over several values; "–" when
    there is no finite value (``None`` and NaN are left out)."""
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"
