"""TFB, Training-Free Bayesianization of a LoRA adapter (Shi, Wang, Han, Zhang & Wang, 2025).

A trained adapter (here the run's MAP) becomes a Gaussian posterior over its A matrices with
no training. As in the authors' code (``Wang-ML-Lab/bayesian-peft``, ``modelwrappers/tfblora.py``
and ``tfblora_acc.py``): per LoRA layer, B = U diag(d) Vᵀ (thin SVD), B' = U diag(d) and
A' = Vᵀ A (so B'A' = BA), and A' gets independent noise of standard deviation σ / d_i in its
row i. In the original coordinates ΔA = V diag(1/d) E σ, E ~ N(0, I), so each column of A has
covariance σ² (BᵀB)⁻¹ and the weight update's noise B ΔA = σ U E is isotropic, σ² times the
projector onto B's column space: one scalar σ for the whole model. (Directions where d_i is
below 10⁻⁶ · max d get no noise; the code adds 10⁻⁶ to d instead, which sends σ/d_i to 10⁶σ
there while B' cancels it.)

σ is the largest value whose predictive on an anchor set stays within a tolerance of the
adapter's own: the anchor questions are labelled with the MAP's predictions (no labels
needed), and the change is the fraction of anchor predictions that flip (``accuracy``, the
code's ``tfblora_acc``, tolerance 1%) or the relative change of the pseudo-label NLL
(``nll``, ``tfblora``). The search is a bisection over (0, σ_max], σ_max = 0.015 and 5
halvings in the authors' scripts; every σ is scored on the same S unit draws E (so the search
compares σ on one set of randomness) and the method's members are those draws at the chosen σ.
Here the anchor set is the run's validation split (the authors take 500 training questions).

Differences from the code, on purpose: the code returns the upper end of the final bracket
(the smallest σ tried that broke the tolerance, or σ_max untested), here the lower end: the
largest σ tried that kept it (0, the MAP itself, when none did); the code divides the NLL
change by the anchor size as well (its ``th`` = 0.003 at 500 anchors is a relative change of
1.5), here the tolerance is the relative change itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .. import metrics as M
from ..errors import InvalidSettingError
from .lora import lora_factors
from .parameters import FlatParameterView
from .predictive import Method, fixed_weights, weight_samples

__all__ = ["DEFAULT_TOLERANCE", "TFB_METRICS", "TfbOptions", "fit_tfb", "metric_change", "search_sigma",
           "unit_deviations"]

TFB_METRICS = ("accuracy", "nll")
DEFAULT_TOLERANCE = {"accuracy": 0.01, "nll": 0.003}  # th of scripts/tfblora_acc/*.sh and scripts/tfblora/*.sh
RELATIVE_RANK_FLOOR = 1e-6


@dataclass(frozen=True)
class TfbOptions:
    """The σ search: the anchor metric, its tolerance (default per metric), the upper end of
    the search and the number of bisection steps."""

    metric: str = "accuracy"
    tolerance: float | None = None
    max_sigma: float = 0.015
    iterations: int = 5

    def __post_init__(self):
        if self.metric not in TFB_METRICS:
            raise InvalidSettingError(f"TFB metric must be one of {', '.join(TFB_METRICS)}, got {self.metric!r}")
        if self.tolerance is not None and not self.tolerance >= 0:
            raise InvalidSettingError(f"TFB tolerance must be >= 0, got {self.tolerance}")
        if not self.max_sigma > 0:
            raise InvalidSettingError(f"TFB max_sigma must be > 0, got {self.max_sigma}")
        if self.iterations < 0:
            raise InvalidSettingError(f"TFB iterations must be >= 0, got {self.iterations}")

    @property
    def threshold(self) -> float:
        return DEFAULT_TOLERANCE[self.metric] if self.tolerance is None else float(self.tolerance)


@torch.no_grad()
def unit_deviations(model, view: FlatParameterView, vector: torch.Tensor, n_samples: int, seed: int = 0,
                    antithetic: bool = False) -> list[torch.Tensor]:
    """S flat deviations at σ = 1 for the adapter ``vector`` (laid out as ``view``): in every
    LoRA layer ΔA = V diag(1/d) E with B = U diag(d) Vᵀ taken from ``vector``, E ~ N(0, I) from
    one generator seeded by ``seed`` (nested in S); zero outside the A matrices. With
    ``antithetic``, δ₁, −δ₁, δ₂, −δ₂, …"""
    if n_samples < 1 or (antithetic and n_samples % 2):
        raise InvalidSettingError(f"TFB needs n_samples >= 1 (even when antithetic), got {n_samples}")
    transforms = []
    for f in lora_factors(model, view):
        if f.a_slice is None or f.b_slice is None:
            continue
        b = vector[f.b_slice].reshape(f.b.shape).double()
        _, d, vh = torch.linalg.svd(b, full_matrices=False)
        inverse = torch.where(d > RELATIVE_RANK_FLOOR * d.max().clamp_min(1e-30), 1.0 / d, torch.zeros_like(d))
        transforms.append((f.a_slice, tuple(f.a.shape), (vh.T * inverse).float().cpu()))  # V diag(1/d), [r, r]
    if not transforms:
        raise InvalidSettingError("TFB needs trainable LoRA A and B matrices; none is tracked")
    generator = torch.Generator().manual_seed(seed)

    def draw() -> torch.Tensor:
        delta = torch.zeros(vector.numel(), dtype=torch.float32)
        for where, shape, transform in transforms:
            delta[where] = (transform @ torch.randn(shape, generator=generator)).reshape(-1)
        return delta.to(vector.device)

    out = []
    while len(out) < n_samples:
        delta = draw()
        out += [delta, -delta] if antithetic else [delta]
    return out


def metric_change(metric: str, reference: np.ndarray, log_probs: np.ndarray) -> float:
    """How far the averaged predictive of ``log_probs`` [N, S, C] moved from the ``reference``
    [N, 1, C] (the MAP's) on its own predictions: the fraction of changed predictions
    (``accuracy``) or |NLL − NLL_ref| / NLL_ref of the reference's predicted labels (``nll``)."""
    ref = M.average_log_probs(reference)
    pseudo = ref.argmax(axis=-1)
    p_bar = M.average_log_probs(log_probs)
    if metric == "accuracy":
        return float(np.mean(p_bar.argmax(axis=-1) != pseudo))
    ref_nll = M.negative_log_likelihood(ref, pseudo)
    return abs(M.negative_log_likelihood(p_bar, pseudo) - ref_nll) / max(ref_nll, 1e-12)


def search_sigma(change: Callable[[float], float], tolerance: float, max_sigma: float,
                 iterations: int) -> tuple[float, dict[float, float]]:
    """The largest σ tried whose ``change(σ)`` is within ``tolerance``: σ_max if it is, else a
    bisection of (0, σ_max] for ``iterations`` steps that keeps the lower end within it; 0 when
    no σ tried is. Returns σ and every σ tried with its change. For a ``change`` increasing in
    σ the boundary lies within σ_max / 2^iterations above the result."""
    tried = {float(max_sigma): float(change(max_sigma))}
    if tried[max_sigma] <= tolerance:
        return float(max_sigma), tried
    low, high = 0.0, float(max_sigma)
    for _ in range(iterations):
        mid = (low + high) / 2
        tried[mid] = float(change(mid))
        if tried[mid] <= tolerance:
            low = mid
        else:
            high = mid
    return low, tried


def fit_tfb(ctx) -> Method:
    """TFB members for the first run of ``ctx`` (a :class:`~swag_lora.bayes.registry.MethodContext`):
    σ searched on its validation split (``ctx.tfb``), S = ``ctx.sampling.n_samples`` draws."""
    run, options, sampling = ctx.run, ctx.tfb, ctx.sampling
    val = ctx.validation_data()
    units = unit_deviations(run.model, run.posterior.view, run.map_vector, sampling.n_samples, sampling.seed,
                            sampling.antithetic)
    reference = ctx.predict(fixed_weights("map", run.posterior, run.map_vector), val)
    cache: dict[float, np.ndarray] = {}

    def members(sigma: float) -> Method:
        return weight_samples("tfb", run.posterior, run.map_vector, [sigma * u for u in units])

    def change(sigma: float) -> float:
        cache[sigma] = ctx.predict(members(sigma), val)
        return metric_change(options.metric, reference, cache[sigma])

    sigma, tried = search_sigma(change, options.threshold, options.max_sigma, options.iterations)
    method = members(sigma)
    method.settings.update(sigma=sigma, seed=sampling.seed, antithetic=sampling.antithetic, **asdict(options),
                           threshold=options.threshold, at_max_sigma=sigma == options.max_sigma,
                           change_by_sigma={f"{s:.6g}": c for s, c in sorted(tried.items())},
                           n_validation=len(val.labels))
    method.validation_log_probs = cache[sigma] if sigma in cache else reference
    return method
