"""IVON, the Improved Variational Online Newton optimizer (Shen et al., ICML 2024), as a posterior.

IVON (PyPI ``ivon-opt``, repository ``team-approx-bayes/ivon``) trains the mean m of a diagonal
Gaussian q = N(m, diag(σ²)) in place of AdamW; the parameters hold m, and the optimizer's
per-parameter Hessian estimate h gives σ² = 1 / (λ (h + δ)), λ the effective sample size
(``ess``) and δ the weight decay (the prior precision): what ``IVON._sample_params`` draws its
noise with. This module reads that posterior off a trained optimizer (duck-typed: its param
groups' ``hess``, ``ess`` and ``weight_decay``) into a
:class:`~swag_lora.bayes.variational.DiagonalGaussian` over the tracked parameters, whose
seeded draws m + σ ⊙ z are the members at test time. Imports torch only.

Defaults (the ``ivon-opt`` package and the IVON-LoRA code, ``team-approx-bayes/ivon-lora``
``finetune.py`` / ``ivon.sh``): learning rate 0.03, β₁ = 0.9, β₂ = 0.99999, δ = 0, clip
radius 1e-3, no learning-rate rescaling, 1 training sample, 10 test samples (IVON-LoRA); λ = the
training-set size (the package's README: ``ess=len(train_dataset)``). IVON-LoRA's ARC and OBQA
runs use λ = 10⁶ with h₀ = 10⁻³; with β₂ = 0.99999 the estimate h stays near h₀ for thousands of
steps, so λ·h₀ = 10³ sets the posterior's width (σ ≈ 0.032). With λ = N the default h₀ keeps
that product: h₀ = 10³ / λ (h₀ = 10⁻³ at λ = N = 320 would give σ ≈ 1.8, noise that swamps a
LoRA update).
"""

from __future__ import annotations

import torch

from ..errors import InvalidSettingError
from .parameters import FlatParameterView
from .variational import DiagonalGaussian

__all__ = ["INITIAL_PRECISION", "IVON_DEFAULTS", "default_hess_init", "ivon_posterior", "ivon_std"]

IVON_DEFAULTS = {"learning_rate": 0.03, "beta1": 0.9, "beta2": 0.99999, "weight_decay": 0.0, "clip_radius": 1e-3,
                 "rescale_lr": False, "mc_samples": 1}
INITIAL_PRECISION = 1e3  # λ·h₀ of IVON-LoRA on ARC and OBQA (ess 1e6, hess_init 1e-3)


def default_hess_init(ess: float) -> float:
    """h₀ = 10³ / λ: the initial posterior precision λ·h₀ of IVON-LoRA's ARC and OBQA runs."""
    return INITIAL_PRECISION / ess


def ivon_std(hess: torch.Tensor, ess: float, weight_decay: float) -> torch.Tensor:
    """σ = 1 / √(λ (h + δ)), the standard deviation IVON samples with."""
    return (ess * (hess.float() + weight_decay)).rsqrt()


@torch.no_grad()
def ivon_posterior(optimizer, view: FlatParameterView, settings: dict | None = None) -> DiagonalGaussian:
    """The posterior of a trained IVON ``optimizer`` over ``view``'s parameters: mean = their
    current values, σ from each param group's Hessian estimate. Every tracked parameter must be
    in the optimizer, in the view's order (one or more groups)."""
    params, hess, stds = [], [], []
    for group in optimizer.param_groups:
        if "hess" not in group or "ess" not in group:
            raise InvalidSettingError("not an IVON optimizer: its param groups have no Hessian estimate")
        params += [p for p in group["params"] if p is not None]
        hess.append(group["hess"].reshape(-1))
        stds.append(ivon_std(group["hess"].reshape(-1), group["ess"], group["weight_decay"]))
    if len(params) != len(view.params) or any(p is not q for p, q in zip(params, view.params)):
        raise InvalidSettingError("the IVON optimizer does not hold exactly the tracked parameters, in order")
    group = optimizer.param_groups[0]
    meta = {**(settings or {}), "ess": float(group["ess"]), "weight_decay": float(group["weight_decay"]),
            "hess_init": float(group["hess_init"])}
    return DiagonalGaussian(view.read(), torch.cat(stds), view.names, view.shapes, "ivon", meta,
                            {"hess": torch.cat(hess)})
