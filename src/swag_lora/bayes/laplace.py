"""Laplace-LoRA (Yang, Robeyns, Wang & Aitchison, ICLR 2024) with ``laplace-torch``.

Post hoc: at the MAP adapter, a Gaussian posterior over the LoRA parameters (every trainable
parameter; in letter mode also the answer head) whose precision is the prior precision plus
a Kronecker-factored GGN (K-FAC, from curvlinops through laplace-torch) of the training
split's cross-entropy. The prior precision (one scalar) is chosen by the Laplace marginal
likelihood or by validation NLL over a grid. Predictions use the linearised (GLM)
predictive: per question, the choice logits are Gaussian, f ~ N(f_MAP(x), J Σ Jᵀ), with J
the Jacobian of the C choice logits with respect to the LoRA parameters. The method's S
members are S draws of those logits per question (not S weight settings): it implements the
:class:`~swag_lora.bayes.predictive.Predictive` protocol directly.

Why the LoRA parameters and not a last layer: in cloze mode the last layer is the tied LM
head (49k rows × hidden), whose output-side Kronecker factor alone would be 49k × 49k, and
which also is the input embedding. A full (non-factored) covariance over the 460,800 LoRA
parameters of SmolLM2-135M would need ~850 GB; K-FAC needs a few MB.

``laplace-torch`` is an optional dependency (see the README for the install line).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..errors import InvalidSettingError, MissingDependencyError
from .posterior import SwagPosterior

__all__ = [
    "DEFAULT_PRIOR_GRID",
    "PRIOR_METHODS",
    "ChoiceLogits",
    "LaplaceLoRA",
    "LaplaceOptions",
    "fit_laplace_lora",
    "logit_samples_to_log_probs",
    "sample_logits",
]

# A finite stand-in for absent choice slots (−inf breaks the curvature and Jacobian maths);
# exp(ABSENT_LOGIT − max) is exactly 0 in float32.
ABSENT_LOGIT = -1e4
PRIOR_METHODS = ("marglik", "validation")
DEFAULT_PRIOR_GRID = tuple(10.0**k for k in range(-2, 6))


class ChoiceLogits(nn.Module):
    """``MultipleChoiceLM`` seen as laplace-torch expects: one argument (the collated batch
    dict) in, [B, C] logits out, absent choices at :data:`ABSENT_LOGIT` instead of −inf."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict) -> torch.Tensor:
        inputs = {k: v for k, v in batch.items() if k != "labels"}  # the mask gives the number of choice slots
        logits = self.model(**inputs).logits
        return torch.where(batch["choice_mask"].bool(), logits, torch.full_like(logits, ABSENT_LOGIT))


class _Features(torch.utils.data.Dataset):
    def __init__(self, features):
        self.features = list(features)

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i):
        return self.features[i]


def _to(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


@dataclass
class LaplaceOptions:
    """How the Laplace-LoRA posterior is fitted and sampled."""

    prior: str = "marglik"
    prior_grid: tuple[float, ...] = DEFAULT_PRIOR_GRID
    n_samples: int = 100
    fit_batch_size: int = 8
    marglik_steps: int = 200

    def __post_init__(self):
        if self.prior not in PRIOR_METHODS:
            raise InvalidSettingError(f"unknown Laplace prior method {self.prior!r}; choose from {', '.join(PRIOR_METHODS)}")
        if self.n_samples < 1:
            raise InvalidSettingError(f"the Laplace predictive needs at least one sample, got {self.n_samples}")


def _laplace_module():
    try:
        import laplace  # optional: laplace-torch is installed without its dependencies (see README)
    except ModuleNotFoundError as err:
        raise MissingDependencyError(
            "the laplace method needs laplace-torch: pip install --no-deps laplace-torch asdfghjkl==0.1a4 "
            "backpack-for-pytorch curvlinops-for-pytorch einconv einops linear_operator unfoldNd opt_einsum "
            "torchmetrics lightning-utilities scipy (as `make setup` does)"
        ) from err
    return laplace


class LaplaceLoRA:
    """A fitted Laplace-LoRA posterior and its GLM predictive (see the module docstring)."""

    name = "laplace"

    def __init__(self, la, wrapper: ChoiceLogits, posterior: SwagPosterior, map_vector: torch.Tensor,
                 n_samples: int, seed: int, fit_info: dict):
        self.la = la
        self.wrapper = wrapper
        self.posterior = posterior
        self.map_vector = map_vector
        self.n_samples = int(n_samples)
        self.seed = int(seed)
        self.fit_info = fit_info

    @property
    def settings(self) -> dict:
        return {"n_samples": self.n_samples, "seed": self.seed, **self.fit_info}

    @property
    def prior_precision(self) -> float:
        return float(self.la.prior_precision.reshape(-1)[0])

    # --------------------------------------------------------------- moments
    def _jacobians(self, batch: dict):
        Js, f_mu = self.la.backend.jacobians(batch)
        return Js, f_mu

    def moments(self, features, collator, progress: bool = False, desc: str = "laplace"):
        """GLM predictive moments per question: mean logits [N, C] and covariance [N, C, C]
        (float64), at the MAP weights. One question per Jacobian (jacrev over the C logits)."""
        f_mu, f_var = [], []
        for js, mu in self._each_jacobian(features, collator, progress, desc):
            f_mu.append(mu)
            f_var.append(self.la.functional_variance(js).double())
        return torch.cat(f_mu).numpy(), torch.cat(f_var).numpy()

    def _each_jacobian(self, features, collator, progress: bool, desc: str):
        bar = None
        if progress:
            bar = tqdm(total=len(features), desc=desc, unit="question", leave=False)
        device = self.posterior.device
        self.wrapper.eval()
        with self.posterior.written(self.map_vector):
            for feature in features:
                batch = _to(collator([feature]), device)
                js, mu = self._jacobians(batch)
                yield js, mu.double().cpu()
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()

    # ------------------------------------------------------------ predictive
    def log_probs(self, model, features, collator, batch_size: int = 16, progress: bool = False) -> np.ndarray:
        """[N, S, C]: log-softmax of S Gaussian logit draws per question (seeded by ``seed``),
        −inf in absent choice slots."""
        f_mu, f_var = self.moments(features, collator, progress)
        present = np.stack([np.arange(collator.n_slots) < f["n_choices"] for f in features])
        z = np.random.default_rng(self.seed).standard_normal((len(features), self.n_samples, collator.n_slots))
        return logit_samples_to_log_probs(sample_logits(f_mu, f_var, z), present)


def sample_logits(f_mu: np.ndarray, f_var: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Draws f_mu + L z with L Lᵀ = f_var (a symmetric square root, robust to singular f_var):
    f_mu [N, C], f_var [N, C, C], z [N, S, C] standard normal -> [N, S, C]."""
    eigval, eigvec = np.linalg.eigh(0.5 * (f_var + np.swapaxes(f_var, 1, 2)))
    root = eigvec * np.sqrt(np.clip(eigval, 0.0, None))[:, None, :]
    return f_mu[:, None, :] + np.einsum("nij,nsj->nsi", root, z)


def logit_samples_to_log_probs(logits: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Log-softmax over the present choices of logit draws [N, S, C]; −inf where absent."""
    logits = np.where(present[:, None, :], logits, -np.inf)
    top = logits.max(axis=-1, keepdims=True)
    out = logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))
    return out.astype(np.float32)


def fit_laplace_lora(
    model: nn.Module,
    posterior: SwagPosterior,
    map_vector: torch.Tensor,
    train_features,
    collator,
    options: LaplaceOptions,
    seed: int = 0,
    validation: tuple | None = None,
    progress: bool = False,
) -> LaplaceLoRA:
    """Fit K-FAC Laplace over the trainable parameters at ``map_vector`` on ``train_features``;
    choose the prior precision by marginal likelihood or, with ``options.prior ==
    "validation"``, by the GLM predictive's NLL on ``validation = (features, collator)``."""
    laplace = _laplace_module()
    wrapper = ChoiceLogits(model)
    loader = torch.utils.data.DataLoader(_Features(train_features), batch_size=options.fit_batch_size,
                                         collate_fn=collator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        la = laplace.Laplace(wrapper, "classification", subset_of_weights="all", hessian_structure="kron")
        with posterior.written(map_vector):
            la.fit(loader, progress_bar=progress)
    info = {"hessian_structure": "kron", "curvature": "GGN (K-FAC, curvlinops)", "predictive": "glm (linearised), MC",
            "n_fit_examples": len(train_features), "n_parameters": int(la.n_params), "prior_method": options.prior}
    method = LaplaceLoRA(la, wrapper, posterior, map_vector, options.n_samples, seed, info)
    if options.prior == "marglik":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            la.optimize_prior_precision(pred_type="glm", method="marglik", prior_structure="scalar",
                                        n_steps=options.marglik_steps)
        info["log_marginal_likelihood"] = float(la.log_marginal_likelihood().detach())
    else:
        if validation is None:
            raise InvalidSettingError("choosing the Laplace prior precision on validation data needs a validation split")
        grid_nll = _validation_grid(method, *validation, options.prior_grid, progress)
        best = min(grid_nll, key=grid_nll.get)
        la.prior_precision = float(best)
        info["prior_grid_validation_nll"] = {f"{k:g}": v for k, v in grid_nll.items()}
    info["prior_precision"] = method.prior_precision
    return method


def _validation_grid(method: LaplaceLoRA, features, collator, grid, progress: bool) -> dict[float, float]:
    """Validation NLL of the GLM predictive for every prior precision in ``grid``: one
    Jacobian per question serves every grid value; the same normal draws for every value."""
    la = method.la
    rng = np.random.default_rng(method.seed)
    z = rng.standard_normal((len(features), method.n_samples, collator.n_slots))
    total = {float(g): 0.0 for g in grid}
    for i, (js, mu) in enumerate(method._each_jacobian(features, collator, progress, "laplace prior")):
        feature = features[i]
        present = (np.arange(collator.n_slots) < feature["n_choices"])[None]
        for g in total:
            la.prior_precision = g
            var = la.functional_variance(js).double().numpy()
            lp = logit_samples_to_log_probs(sample_logits(mu.numpy(), var, z[i : i + 1]), present)
            top = lp[0, :, feature["label"]].astype(np.float64)
            m = top.max()
            total[g] -= m + math.log(np.exp(top - m).mean())
    return {g: v / len(features) for g, v in total.items()}
