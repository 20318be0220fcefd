"""BLoB, Bayesian Low-Rank Adaptation by Backpropagation (Wang et al., NeurIPS 2024): the maths.

The posterior is a Gaussian over every LoRA A matrix, q(A) = N(M, diag(Σ²)), mean M (the LoRA
A weight itself) and standard deviation Σ learned; B (and any answer head) stays deterministic.
As in the authors' code (``Wang-ML-Lab/bayesian-peft``, ``modelwrappers/blob.py``):

- Σ = G² with G a learned matrix initialised uniformly in [ε/√2, ε], ε = 0.05
  (``--bayes-eps``; with ε < 0 the code uses Σ = softplus(G), G ~ U[ε−1, ε] instead);
- training samples by *flipout*: for input x the A output gains ((x ⊙ r) (Σ ⊙ E)ᵀ) ⊙ s, with
  one E ~ N(0, I) per forward pass and random signs r, s per token, so the examples of a batch
  see decorrelated perturbations; the noise flows through B as the mean path does;
- the KL to the prior N(0, β²), β = 0.2 (``--bayes-beta``), in closed form, summed over every
  entry of every A;
- the KL weight of step i of a cycle of M steps is π_i = 2^i / (2^(M+1) − 1), i = 1..M
  (``--bayes-klreweighting``), with M = ⌊100 · N^(π/γ) / batch⌋, γ = 8
  (``--bayes-datasetrescaling``; N training examples); without re-weighting π = 1/M.

At test time the authors' code keeps flipout on and averages 10 passes; here a member is a
whole weight draw A = M + Σ ⊙ Z (:class:`~swag_lora.bayes.variational.DiagonalGaussian`), the
same for every token and question, so members are fixed, seeded and shared across datasets.
BLoB (N = 0) is the mean M alone. Imports torch only; LoRA layers are found by duck typing.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidSettingError
from .lora import lora_factors
from .parameters import FlatParameterView
from .variational import DiagonalGaussian

__all__ = [
    "DEFAULT_INIT_STD",
    "DEFAULT_KL_GAMMA",
    "DEFAULT_KL_LEARNING_RATE",
    "DEFAULT_PRIOR_STD",
    "BlobVariational",
    "flipout_noise",
    "gaussian_kl",
    "init_g",
    "kl_cycle_length",
    "kl_weight",
    "sigma_of",
]

DEFAULT_INIT_STD = 0.05  # ε: G ~ U[ε/√2, ε], Σ = G² (bayes-eps)
DEFAULT_PRIOR_STD = 0.2  # β, the prior N(0, β²) (bayes-beta)
DEFAULT_KL_LEARNING_RATE = 0.01  # the KL step's SGD rate (bayes-kllr in the paper's scripts)
DEFAULT_KL_GAMMA = 8.0  # γ of the dataset-rescaled KL cycle (bayes-gamma)


def sigma_of(g: torch.Tensor, eps: float = DEFAULT_INIT_STD) -> torch.Tensor:
    """Σ from the learned G: G² when ε > 0 (the paper's default), softplus(G) when ε < 0."""
    return g.square() if eps > 0 else F.softplus(g)


def init_g(shape, eps: float = DEFAULT_INIT_STD, generator: torch.Generator | None = None,
           device=None) -> torch.Tensor:
    """G's initial values: U[ε/√2, ε] for ε > 0 (Σ = G² in [ε²/2, ε²]), U[ε − 1, ε] for ε < 0."""
    if eps == 0:
        raise InvalidSettingError("the BLoB initial standard-deviation parameter ε must not be 0")
    low, high = (eps / math.sqrt(2), eps) if eps > 0 else (eps - 1, eps)
    return torch.empty(shape, device=device).uniform_(low, high, generator=generator)


def gaussian_kl(mean: torch.Tensor, sigma: torch.Tensor, prior_std: float) -> torch.Tensor:
    """KL(N(mean, σ²) ‖ N(0, prior_std²)) summed over every entry, in float64:
    Σ [log(prior_std / σ) + (σ² + mean²) / (2 prior_std²) − ½]."""
    if prior_std <= 0:
        raise InvalidSettingError(f"the prior standard deviation must be > 0, got {prior_std}")
    mean, sigma = mean.double(), sigma.double()
    return (math.log(prior_std) - torch.log(sigma) + (sigma.square() + mean.square()) / (2 * prior_std**2)
            - 0.5).sum()


def kl_weight(step: int, cycle: int, reweighting: bool = True) -> float:
    """The KL weight π of optimizer step ``step`` (1, 2, …): with re-weighting
    2^i / (2^(M+1) − 1) for i = step mod M (M when 0), M = ``cycle``; else 1/M. Over one cycle
    the weights sum to 1 − 1/(2^(M+1) − 1) (re-weighted) or exactly 1."""
    if cycle < 1:
        raise InvalidSettingError(f"the KL cycle must be at least one step, got {cycle}")
    if not reweighting:
        return 1.0 / cycle
    i = step % cycle or cycle
    # 2^i / (2^(M+1) − 1) = 2^(i−M−1) / (1 − 2^−(M+1)), with no overflow for long cycles
    return math.ldexp(1.0, i - cycle - 1) / (1.0 - math.ldexp(1.0, -(cycle + 1)))


def kl_cycle_length(n_train: int, batch_size: int, steps_per_epoch: int, gamma: float | None = DEFAULT_KL_GAMMA) -> int:
    """M, the steps of one KL cycle: ⌊100 · N^(π/γ) / batch⌋ (the paper's dataset rescaling, with
    the global batch), or one epoch's steps when ``gamma`` is ``None``; at least 1."""
    if gamma is None:
        return max(1, int(steps_per_epoch))
    if gamma <= 0:
        raise InvalidSettingError(f"the KL rescaling gamma must be > 0, got {gamma}")
    return max(1, int(100 * n_train ** (math.pi / gamma) / batch_size))


def flipout_noise(x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """The flipout perturbation of x Aᵀ for a weight perturbation ``delta`` [r, in]:
    ((x ⊙ r) deltaᵀ) ⊙ s with independent random signs r [..., in] and s [..., r] per token.
    Each token's perturbation has the distribution of x deltaᵀ (delta's entries are symmetric)."""
    r = torch.empty_like(x).bernoulli_(0.5).mul_(2).sub_(1)
    s = torch.empty(*x.shape[:-1], delta.shape[0], dtype=x.dtype, device=x.device).bernoulli_(0.5).mul_(2).sub_(1)
    return ((x * r) @ delta.to(x.dtype).T) * s


class BlobVariational(nn.Module):
    """BLoB's variational parameters G (one per LoRA A) for ``model``; the means are the A
    weights themselves. :meth:`attach` makes every A output carry flipout noise while the A
    module is in training mode (and :attr:`active`); evaluation passes run at the mean."""

    def __init__(self, model: nn.Module, view: FlatParameterView, eps: float = DEFAULT_INIT_STD,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.eps = float(eps)
        self.factors = [f for f in lora_factors(model, view) if f.a_slice is not None]
        if not self.factors:
            raise InvalidSettingError("BLoB needs trainable LoRA A matrices; none is tracked")
        self.g = nn.ParameterList([nn.Parameter(init_g(f.a.shape, self.eps, generator).to(f.a.device))
                                   for f in self.factors])
        self.num_parameters = view.numel
        self.active = True
        self._hooks = []

    def sigmas(self) -> list[torch.Tensor]:
        return [sigma_of(g, self.eps) for g in self.g]

    def kl(self, prior_std: float = DEFAULT_PRIOR_STD) -> torch.Tensor:
        """The KL of every A's q to the prior N(0, prior_std²), summed (float64, differentiable)."""
        return sum(gaussian_kl(f.a, s, prior_std) for f, s in zip(self.factors, self.sigmas()))

    def attach(self) -> None:
        """Add the flipout noise to every LoRA A output (forward hooks), once."""
        if self._hooks:
            return
        for factor, g in zip(self.factors, self.g):
            def hook(module, inputs, output, g=g):
                if not (self.active and module.training):
                    return None
                delta = sigma_of(g, self.eps) * torch.randn_like(g)
                return output + flipout_noise(inputs[0], delta)

            self._hooks.append(factor.module_a.register_forward_hook(hook))

    def detach_hooks(self) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks = []

    @contextmanager
    def inactive(self) -> Iterator[None]:
        """No noise in the ``with`` block (training-mode passes at the mean)."""
        was, self.active = self.active, False
        try:
            yield
        finally:
            self.active = was

    @torch.no_grad()
    def std_vector(self) -> torch.Tensor:
        """Σ laid out over the flat tracked vector (0 outside the A matrices)."""
        std = torch.zeros(self.num_parameters, device=self.g[0].device)
        for factor, sigma in zip(self.factors, self.sigmas()):
            std[factor.a_slice] = sigma.reshape(-1).float()
        return std

    def posterior(self, mean: torch.Tensor, view: FlatParameterView, settings: dict) -> DiagonalGaussian:
        """The trained posterior: ``mean`` (the flat tracked vector) with Σ on the A entries."""
        return DiagonalGaussian(mean, self.std_vector(), view.names, view.shapes, "blob",
                                {"eps": self.eps, **settings})
