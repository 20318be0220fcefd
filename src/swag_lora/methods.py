"""The registry of evaluation methods: name -> how to build its predictive.

Every builder takes a :class:`MethodContext` (the loaded runs, the sampling settings, lazy
access to the first run's validation and training splits) and returns a
:class:`~swag_lora.predictive.Predictive`, so the evaluation loop never changes when a
method is added. Methods marked ``multi_run`` average over every run of the context
(ensemble, MultiSWAG); the others use the first run only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import metrics as M
from .calibration import Tempered, fit_temperature
from .laplace_lora import LaplaceOptions
from .predictive import Concatenation, Predictive, fixed_weights, swag_deviations, swag_samples

DEFAULT_SCALE_GRID = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
SCALED = ("swag", "swag-diag", "multiswag")  # label carries the scale when it is not 1
SAMPLED = (*SCALED, "swag-tuned")  # label carries "-anti" with antithetic draws
TEMPERED_SUFFIX = "+ts"


@dataclass
class MethodContext:
    """What a method builder may use. ``validation()`` and ``training()`` return the first
    run's validation / training split prepared for evaluation (features with ids, collator,
    labels, ``activate(model)``); ``saved_roots`` maps a run path to the folder holding its
    single-run evaluations, for reuse by multi-run methods."""

    runs: list
    n_samples: int = 10
    scale: float = 1.0
    seed: int = 0
    antithetic: bool = False
    dropout: float | None = None
    scale_grid: tuple[float, ...] = DEFAULT_SCALE_GRID
    laplace: LaplaceOptions = field(default_factory=LaplaceOptions)
    batch_size: int = 16
    progress: bool = False
    validation: Callable[[], object] | None = None
    training: Callable[[], object] | None = None
    saved_roots: dict = field(default_factory=dict)

    @property
    def run(self):
        return self.runs[0]

    def validation_data(self):
        if self.validation is None:
            raise ValueError("this method is fitted on the run's validation split, but none is available")
        return self.validation()

    def predict(self, method: Predictive, data) -> np.ndarray:
        """``method``'s [N, S, C] log-probabilities on prepared ``data``."""
        data.activate(self.run.model)
        return method.log_probs(self.run.model, data.features, data.collator, self.batch_size, self.progress)


@dataclass(frozen=True)
class MethodEntry:
    build: Callable[[MethodContext], Predictive]
    multi_run: bool = False
    summary: str = ""


def method_label(name: str, scale: float = 1.0, antithetic: bool = False) -> str:
    """Folder name of a method's results: the name, ``-anti`` for antithetic draws and
    ``@scale`` when a scaled method's scale is not 1."""
    label = name
    if antithetic and name in SAMPLED:
        label += "-anti"
    if name in SCALED and scale != 1.0:
        label += f"@{scale:g}"
    return label


# ------------------------------------------------------------------ builders
def _map(ctx):
    return fixed_weights("map", ctx.run.posterior, ctx.run.map_vector)


def _zero_shot(ctx):
    from .zero_shot import zero_shot

    return zero_shot(ctx.run.model, ctx.run.tokenizer)


def _swa(ctx):
    return fixed_weights("swa", ctx.run.posterior, ctx.run.posterior.mean())


def _swag(ctx):
    return swag_samples(ctx.run.posterior, ctx.n_samples, ctx.scale, seed=ctx.seed, antithetic=ctx.antithetic,
                        name="swag")


def _swag_diag(ctx):
    return swag_samples(ctx.run.posterior, ctx.n_samples, ctx.scale, diag_only=True, seed=ctx.seed,
                        antithetic=ctx.antithetic, name="swag-diag")


def _swag_tuned(ctx):
    return tune_swag_scale(ctx)


def _temperature(ctx):
    return temperature_scaled(_map(ctx), ctx, name="temperature")


def _mc_dropout(ctx):
    from .mc_dropout import mc_dropout

    run = ctx.run
    return mc_dropout(run.model, run.posterior, run.map_vector, ctx.n_samples, p=ctx.dropout, seed=ctx.seed)


def _laplace(ctx):
    from .laplace_lora import fit_laplace_lora

    run = ctx.run
    train = ctx.training()
    validation = None
    if ctx.laplace.prior == "validation":
        val = ctx.validation_data()
        val.activate(run.model)
        validation = (val.features, val.collator)
    train.activate(run.model)
    return fit_laplace_lora(run.model, run.posterior, run.map_vector, train.features, train.collator, ctx.laplace,
                            seed=ctx.seed, validation=validation, progress=ctx.progress)


def _saved(ctx, run, inner, label):
    from .results import SavedOrComputed

    roots = [ctx.saved_roots.get(str(run.path))]
    return SavedOrComputed(inner, run.path, label, roots)


def _ensemble(ctx):
    parts = [_saved(ctx, r, fixed_weights("map", r.posterior, r.map_vector), "map") for r in ctx.runs]
    return Concatenation("ensemble", parts, {"n_runs": len(ctx.runs), "runs": [str(r.path) for r in ctx.runs]})


def _multiswag(ctx):
    label = method_label("swag", ctx.scale, ctx.antithetic)
    parts = [
        _saved(ctx, r, swag_samples(r.posterior, ctx.n_samples, ctx.scale, seed=ctx.seed, antithetic=ctx.antithetic,
                                    name="swag"), label)
        for r in ctx.runs
    ]
    settings = {"n_runs": len(ctx.runs), "runs": [str(r.path) for r in ctx.runs], "n_samples": ctx.n_samples,
                "scale": ctx.scale, "seed": ctx.seed, "diag_only": False, "antithetic": ctx.antithetic}
    return Concatenation("multiswag", parts, settings)


METHODS: dict[str, MethodEntry] = {
    "zero-shot": MethodEntry(_zero_shot, summary="the base model without fine-tuning (LoRA disabled)"),
    "map": MethodEntry(_map, summary="the MAP adapter (best validation NLL)"),
    "swa": MethodEntry(_swa, summary="the SWA mean"),
    "swag": MethodEntry(_swag, summary="S SWAG samples (low-rank plus diagonal)"),
    "swag-diag": MethodEntry(_swag_diag, summary="S SWAG samples, diagonal covariance"),
    "swag-tuned": MethodEntry(_swag_tuned, summary="SWAG with the scale chosen on validation NLL"),
    "temperature": MethodEntry(_temperature, summary="MAP with a temperature fitted on validation NLL"),
    "mc-dropout": MethodEntry(_mc_dropout, summary="S passes with the LoRA dropout active"),
    "laplace": MethodEntry(_laplace, summary="Laplace-LoRA: K-FAC GGN over the LoRA parameters, GLM predictive"),
    "ensemble": MethodEntry(_ensemble, multi_run=True, summary="the MAP adapters of M runs"),
    "multiswag": MethodEntry(_multiswag, multi_run=True, summary="S SWAG samples from each of M runs"),
}
BASE_METHODS = tuple(METHODS)


def build_method(name: str, ctx, n_samples: int = 10, scale: float = 1.0, seed: int = 0) -> Predictive:
    """The predictive of method ``name`` for a :class:`MethodContext` (or, for the single-run
    methods that need no validation data, a loaded run with the given sampling settings)."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    if not isinstance(ctx, MethodContext):
        ctx = MethodContext([ctx], n_samples=n_samples, scale=scale, seed=seed)
    return METHODS[name].build(ctx)


def predictive_label(name: str, method: Predictive) -> str:
    """Folder name of a built method's results."""
    s = method.settings
    if isinstance(method, Tempered) and name != "temperature":
        return predictive_label(name, method.inner) + TEMPERED_SUFFIX
    return method_label(name, s.get("scale", 1.0), s.get("antithetic", False))


# ------------------------------------------------------- validation fitting
def _validation_log_probs(method, ctx) -> np.ndarray:
    cached = getattr(method, "validation_log_probs", None)
    if cached is not None:
        return cached
    return ctx.predict(method, ctx.validation_data())


def temperature_scaled(method: Predictive, ctx: MethodContext, name: str | None = None) -> Tempered:
    """``method`` with a temperature fitted on the first run's validation split (NLL of its
    averaged log p̄)."""
    val = ctx.validation_data()
    log_p_bar = M.average_log_probs(_validation_log_probs(method, ctx))
    fit = fit_temperature(log_p_bar, val.labels)
    return Tempered(method, fit["temperature"], name or method.name + TEMPERED_SUFFIX, fit)


def tune_swag_scale(ctx: MethodContext, diag_only: bool = False):
    """SWAG whose scale is the grid value with the lowest validation NLL; every scale uses the
    same S draws δ_s (θ̄ + √scale·δ_s), and so does the returned method."""
    run = ctx.run
    grid = sorted(set(float(s) for s in ctx.scale_grid))
    if not grid:
        raise ValueError("swag-tuned needs at least one scale in the grid")
    deviations = swag_deviations(run.posterior, ctx.n_samples, diag_only, ctx.seed, ctx.antithetic)
    val = ctx.validation_data()
    nll, kept = {}, {}
    for scale in grid:
        method = swag_samples(run.posterior, ctx.n_samples, scale, diag_only, ctx.seed, "swag-tuned", ctx.antithetic,
                              deviations)
        lp = ctx.predict(method, val)
        nll[scale] = M.negative_log_likelihood(M.average_log_probs(lp), val.labels)
        kept[scale] = (method, lp)
    best = min(grid, key=lambda s: (nll[s], s))
    method, lp = kept[best]
    method.settings.update(scale_grid=grid, validation_nll_by_scale={f"{s:g}": v for s, v in nll.items()},
                           n_validation=len(val.labels))
    method.validation_log_probs = lp
    return method
