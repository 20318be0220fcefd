"""The registry of evaluation methods: name -> how to build its predictive.

Every builder takes a :class:`MethodContext` (the loaded runs, the sampling options, lazy
access to the first run's validation and training splits) and returns a
:class:`~swag_lora.bayes.predictive.Predictive`, so the evaluation loop never changes when a
method is added. Methods marked ``multi_run`` average over every run of the context
(ensemble, MultiSWAG); the others use the first run only.

A run here is anything with ``path``, ``model``, ``posterior`` and ``map_vector`` (a
:class:`~swag_lora.runs.load.LoadedRun`), and, for the methods of a trained posterior,
``trained_with`` and ``variational``; a prepared dataset anything with ``features``,
``collator`` and ``labels`` (an :class:`~swag_lora.evaluation.data.EvalData`).

Some methods need a run trained for them (:attr:`MethodEntry.requires`): the SWAG family a SWAG
run, ``blob`` / ``blob-mean`` a BLoB run, ``ivon`` / ``ivon-mean`` an IVON run; asking a run
for a method it cannot provide raises :class:`MethodUnavailableError` before anything is built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import InvalidSettingError
from .fitting import DEFAULT_SCALE_GRID, temperature_scaled, tune_swag_scale
from .laplace import LaplaceOptions, fit_laplace_lora
from .mc_dropout import mc_dropout
from .names import METHOD_NAMES, TEMPERED_SUFFIX, method_label
from .predictive import Concatenation, Predictive, fixed_weights, swag_samples, weight_samples
from .sampling import SamplingOptions
from .temperature import Tempered
from .tfb import TfbOptions, fit_tfb
from .zero_shot import zero_shot

__all__ = [
    "BASE_METHODS",
    "METHODS",
    "MethodContext",
    "MethodEntry",
    "MethodUnavailableError",
    "build_method",
    "check_available",
    "predictive_label",
    "unavailable_reason",
]

Reuse = Callable[[object, Predictive, str], Predictive]


@dataclass
class MethodContext:
    """What a method builder may use. ``validation()`` and ``training()`` return the first
    run's validation / training split prepared for evaluation; ``reuse(run, predictive,
    label)`` may wrap a run's single-run predictive so that multi-run methods take its saved
    log-probabilities instead of recomputing them (the evaluation harness sets it)."""

    runs: list
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    dropout: float | None = None
    scale_grid: tuple[float, ...] = DEFAULT_SCALE_GRID
    laplace: LaplaceOptions = field(default_factory=LaplaceOptions)
    tfb: TfbOptions = field(default_factory=TfbOptions)
    batch_size: int = 16
    progress: bool = False
    validation: Callable[[], object] | None = None
    training: Callable[[], object] | None = None
    reuse: Reuse | None = None

    @property
    def run(self):
        return self.runs[0]

    def validation_data(self):
        if self.validation is None:
            raise InvalidSettingError("this method is fitted on the run's validation split, but none is available")
        return self.validation()

    def predict(self, method: Predictive, data) -> np.ndarray:
        """``method``'s [N, S, C] log-probabilities on prepared ``data``."""
        return method.log_probs(self.run.model, data.features, data.collator, self.batch_size, self.progress)

    def reused(self, run, method: Predictive, label: str) -> Predictive:
        return self.reuse(run, method, label) if self.reuse is not None else method


class MethodUnavailableError(InvalidSettingError):
    """A method was asked of a run that was not trained for it (e.g. ``blob`` of a SWAG run)."""


@dataclass(frozen=True)
class MethodEntry:
    """How to build a method; ``requires`` names the training (``swag``, ``blob``, ``ivon``) a
    run must have had to provide it (``None``: any run)."""

    build: Callable[[MethodContext], Predictive]
    multi_run: bool = False
    summary: str = ""
    requires: str | None = None


# ------------------------------------------------------------------ builders
def _map(ctx):
    return fixed_weights("map", ctx.run.posterior, ctx.run.map_vector)


def _zero_shot(ctx):
    return zero_shot(ctx.run.model)


def _swa(ctx):
    return fixed_weights("swa", ctx.run.posterior, ctx.run.posterior.mean())


def _swag(ctx):
    return swag_samples(ctx.run.posterior, ctx.sampling.with_(diag_only=False), name="swag")


def _swag_diag(ctx):
    return swag_samples(ctx.run.posterior, ctx.sampling.with_(diag_only=True), name="swag-diag")


def _swag_tuned(ctx):
    return tune_swag_scale(ctx)


def _temperature(ctx):
    return temperature_scaled(_map(ctx), ctx, name="temperature")


def _mc_dropout(ctx):
    run = ctx.run
    return mc_dropout(run.model, run.posterior, run.map_vector, ctx.sampling.n_samples, p=ctx.dropout,
                      seed=ctx.sampling.seed)


def _laplace(ctx):
    run = ctx.run
    train = ctx.training()
    validation = None
    if ctx.laplace.prior == "validation":
        val = ctx.validation_data()
        validation = (val.features, val.collator)
    return fit_laplace_lora(run.model, run.posterior, run.map_vector, train.features, train.collator, ctx.laplace,
                            seed=ctx.sampling.seed, validation=validation, progress=ctx.progress)


def _tfb(ctx):
    return fit_tfb(ctx)


def _gaussian_samples(name: str, ctx):
    run, o = ctx.run, ctx.sampling
    q = run.variational
    deviations = q.draw_deviations(o.n_samples, o.seed, o.antithetic)
    return weight_samples(name, run.posterior, q.mean, deviations, seed=o.seed, antithetic=o.antithetic)


def _gaussian_mean(name: str, ctx):
    return fixed_weights(name, ctx.run.posterior, ctx.run.variational.mean)


def _ensemble(ctx):
    parts = [ctx.reused(r, fixed_weights("map", r.posterior, r.map_vector), "map") for r in ctx.runs]
    return Concatenation("ensemble", parts, {"n_runs": len(ctx.runs), "runs": [str(r.path) for r in ctx.runs]})


def _multiswag(ctx):
    options = ctx.sampling.with_(diag_only=False)
    label = method_label("swag", options.scale, options.antithetic)
    parts = [ctx.reused(r, swag_samples(r.posterior, options, name="swag"), label) for r in ctx.runs]
    settings = {"n_runs": len(ctx.runs), "runs": [str(r.path) for r in ctx.runs], "n_samples": options.n_samples,
                "scale": options.scale, "seed": options.seed, "diag_only": False, "antithetic": options.antithetic}
    return Concatenation("multiswag", parts, settings)


_ENTRIES: dict[str, MethodEntry] = {
    "zero-shot": MethodEntry(_zero_shot, summary="the base model without fine-tuning (LoRA disabled)"),
    "map": MethodEntry(_map, summary="the MAP adapter (best validation NLL)"),
    "swa": MethodEntry(_swa, summary="the SWA mean", requires="swag"),
    "swag": MethodEntry(_swag, summary="S SWAG samples (low-rank plus diagonal)", requires="swag"),
    "swag-diag": MethodEntry(_swag_diag, summary="S SWAG samples, diagonal covariance", requires="swag"),
    "swag-tuned": MethodEntry(_swag_tuned, summary="SWAG with the scale chosen on validation NLL", requires="swag"),
    "mc-dropout": MethodEntry(_mc_dropout, summary="S passes with the LoRA dropout active"),
    "temperature": MethodEntry(_temperature, summary="MAP with a temperature fitted on validation NLL"),
    "laplace": MethodEntry(_laplace, summary="Laplace-LoRA: K-FAC GGN over the LoRA parameters, GLM predictive"),
    "tfb": MethodEntry(_tfb, summary="TFB: MAP's A matrices with the largest isotropic σ within the validation "
                                     "tolerance (no training)"),
    "blob": MethodEntry(lambda ctx: _gaussian_samples("blob", ctx), requires="blob",
                        summary="S draws of BLoB's Gaussian over the LoRA A matrices (run trained with blob)"),
    "blob-mean": MethodEntry(lambda ctx: _gaussian_mean("blob-mean", ctx), requires="blob",
                             summary="BLoB's mean alone, 'BLoB (N=0)' (run trained with blob)"),
    "ivon": MethodEntry(lambda ctx: _gaussian_samples("ivon", ctx), requires="ivon",
                        summary="S draws of IVON's Gaussian over the LoRA parameters (run trained with ivon)"),
    "ivon-mean": MethodEntry(lambda ctx: _gaussian_mean("ivon-mean", ctx), requires="ivon",
                             summary="IVON's mean alone (run trained with ivon)"),
    "ensemble": MethodEntry(_ensemble, multi_run=True, summary="the MAP adapters of M runs"),
    "multiswag": MethodEntry(_multiswag, multi_run=True, summary="S SWAG samples from each of M runs",
                             requires="swag"),
}
if set(_ENTRIES) != set(METHOD_NAMES):  # pragma: no cover - a method added in one place only
    raise RuntimeError("bayes.names.METHOD_NAMES and the registry's methods differ")
METHODS: dict[str, MethodEntry] = {name: _ENTRIES[name] for name in METHOD_NAMES}
BASE_METHODS = tuple(METHODS)


def unavailable_reason(name: str, trained_with: str, run_name: str = "the run") -> str | None:
    """Why a run trained with ``trained_with`` cannot provide method ``name`` (``None`` if it can)."""
    needs = METHODS[name].requires if name in METHODS else None
    if needs is None or needs == trained_with:
        return None
    return (f"method {name} needs a run trained with --bayes_method {needs}, but {run_name} was trained with "
            f"--bayes_method {trained_with}")


def check_available(names, runs) -> None:
    """Raise :class:`MethodUnavailableError` for the first method of ``names`` that a run of
    ``runs`` (all of them for multi-run methods, else the first) cannot provide."""
    for name in names:
        if name not in METHODS:
            raise InvalidSettingError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
        for run in runs if METHODS[name].multi_run else runs[:1]:
            reason = unavailable_reason(name, getattr(run, "trained_with", "swag"), str(getattr(run, "path", "the run")))
            if reason is not None:
                raise MethodUnavailableError(reason)


def build_method(name: str, ctx: MethodContext) -> Predictive:
    """The predictive of method ``name`` for ``ctx``."""
    check_available([name], ctx.runs)
    return METHODS[name].build(ctx)


def predictive_label(name: str, method: Predictive) -> str:
    """Folder name of a built method's results."""
    s = method.settings
    if isinstance(method, Tempered) and name != "temperature":
        return predictive_label(name, method.inner) + TEMPERED_SUFFIX
    return method_label(name, s.get("scale", 1.0), s.get("antithetic", False))
