"""Methods fitted on validation data: a temperature on top of any method, and SWAG's scale
chosen over a grid.

Both use the first run of a :class:`~swag_lora.bayes.registry.MethodContext` and its
validation split. The scale grid is evaluated on one set of draws δ_s (θ̄ + √scale·δ_s for
every scale), so scales are compared on the same randomness; :func:`scale_grid_log_probs` is
the one loop that does it, for ``swag-tuned`` and for the benchmark's tuning.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

from .. import metrics as M
from ..errors import InvalidSettingError
from .names import TEMPERED_SUFFIX
from .posterior import SwagPosterior
from .predictive import Method, Predictive, swag_samples
from .sampling import SamplingOptions
from .temperature import Tempered, fit_temperature

__all__ = ["DEFAULT_SCALE_GRID", "scale_grid_log_probs", "temperature_scaled", "tune_swag_scale"]

# From 1 to 1000, as the calibration benchmark's grid: its validation tuning chose 100 (ARC-Easy)
# and 30 (OBQA), and NLL was still falling at 100 on ARC-Easy.
DEFAULT_SCALE_GRID = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)


def _validation_log_probs(method: Predictive, ctx) -> np.ndarray:
    """``method``'s log-probabilities on the validation split, computed once and kept on the
    method (``validation_log_probs``), so an evaluation of that split can reuse them."""
    cached = getattr(method, "validation_log_probs", None)
    if cached is None:
        cached = ctx.predict(method, ctx.validation_data())
        method.validation_log_probs = cached
    return cached


def temperature_scaled(method: Predictive, ctx, name: str | None = None) -> Tempered:
    """``method`` with a temperature fitted on the first run's validation split (NLL of its
    averaged log p̄)."""
    val = ctx.validation_data()
    log_p_bar = M.average_log_probs(_validation_log_probs(method, ctx))
    fit = fit_temperature(log_p_bar, val.labels)
    return Tempered(method, fit["temperature"], name or method.name + TEMPERED_SUFFIX, fit)


def scale_grid_log_probs(
    posterior: SwagPosterior,
    options: SamplingOptions,
    scales: Sequence[float],
    predict: Callable[[Method], np.ndarray],
    name: str = "swag",
) -> dict[float, tuple[Method, np.ndarray]]:
    """SWAG at every scale of ``scales`` on the same S draws δ_s (``options`` gives S, the seed,
    antithetic pairs, diagonal only; its scale is ignored): scale -> (method, ``predict(method)``)."""
    deviations = posterior.draw_deviations(options.n_samples, options.diag_only, options.seed, options.antithetic)
    out = {}
    for scale in scales:
        method = swag_samples(posterior, options.with_(scale=scale), name, deviations)
        out[scale] = (method, predict(method))
    return out


def tune_swag_scale(ctx, diag_only: bool = False) -> Method:
    """SWAG whose scale is the grid value with the lowest validation NLL; every scale uses the
    same S draws δ_s (θ̄ + √scale·δ_s), and so does the returned method."""
    grid = sorted(set(float(s) for s in ctx.scale_grid))
    if not grid:
        raise InvalidSettingError("swag-tuned needs at least one scale in the grid")
    val = ctx.validation_data()
    options = ctx.sampling.with_(diag_only=diag_only)
    results = scale_grid_log_probs(ctx.run.posterior, options, grid, lambda m: ctx.predict(m, val), "swag-tuned")
    nll = {s: M.negative_log_likelihood(M.average_log_probs(lp), val.labels) for s, (_, lp) in results.items()}
    best = min(grid, key=lambda s: (nll[s], s))
    method, lp = results[best]
    method.settings.update(scale_grid=grid, validation_nll_by_scale={f"{s:g}": v for s, v in nll.items()},
                           n_validation=len(val.labels))
    if len(grid) > 1 and best in (grid[0], grid[-1]):
        edge = "largest" if best == grid[-1] else "smallest"
        method.settings["warning"] = (f"the chosen scale {best:g} is the {edge} of the grid; the best may lie beyond it "
                                      "(widen --scale_grid)")
        warnings.warn(method.settings["warning"], stacklevel=2)
    method.validation_log_probs = lp
    return method
