"""Temperature scaling: one temperature T, fitted by validation NLL, applied to a method's
averaged predictive log p̄ (Guo et al., 2017).

The fitted method keeps its members; only its averaged predictive becomes
softmax(log p̄ / T). With T = 1 it is the method itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize_scalar

from .. import metrics as M

__all__ = ["TEMPERATURE_BOUNDS", "Tempered", "fit_temperature", "tempered_nll"]

# Bounds of the search, wide enough for summed cloze log-probabilities (T of 5 to 10 is common).
TEMPERATURE_BOUNDS = (1e-2, 1e2)


def tempered_nll(log_p_bar, labels, temperature: float) -> float:
    """Validation NLL of softmax(log p̄ / T)."""
    return M.negative_log_likelihood(M.temper(log_p_bar, temperature), labels)


def fit_temperature(log_p_bar, labels, bounds: tuple[float, float] = TEMPERATURE_BOUNDS) -> dict:
    """The temperature in ``bounds`` that minimises the NLL of softmax(log p̄ / T) on the given
    (validation) predictive [N, C], found by a bounded scalar search over log T.

    The NLL is convex in 1/T, so it has one minimum. Returns ``temperature``, the NLL before
    (T = 1) and after, and the number of examples.
    """
    log_p_bar = np.asarray(log_p_bar, dtype=np.float64)
    labels = np.asarray(labels)
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    result = minimize_scalar(lambda t: tempered_nll(log_p_bar, labels, float(np.exp(t))), bounds=(lo, hi),
                             method="bounded", options={"xatol": 1e-5})
    temperature = float(np.exp(result.x))
    return {
        "temperature": temperature,
        "nll_before": tempered_nll(log_p_bar, labels, 1.0),
        "nll_after": tempered_nll(log_p_bar, labels, temperature),
        "n_examples": int(len(labels)),
    }


@dataclass
class Tempered:
    """A predictive whose averaged log p̄ is divided by ``temperature`` before the softmax."""

    inner: object
    temperature: float
    name: str
    fit: dict = field(default_factory=dict)

    @property
    def settings(self) -> dict:
        return {**self.inner.settings, "temperature_fit": self.fit, "tempered_method": self.inner.name}

    def log_probs(self, model, features, collator, batch_size: int = 16, progress: bool = False) -> np.ndarray:
        return self.inner.log_probs(model, features, collator, batch_size, progress)
