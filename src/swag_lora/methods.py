"""The registry of evaluation methods: name -> how to build its predictive from a loaded run.

Every method returns a :class:`~swag_lora.predictive.Predictive`, so the evaluation loop
never changes when a method is added.
"""

from __future__ import annotations

from collections.abc import Callable

from .predictive import Predictive, fixed_weights, swag_samples

MethodBuilder = Callable[..., Predictive]


def _map(run, n_samples, scale, seed):
    return fixed_weights("map", run.posterior, run.map_vector)


def _swa(run, n_samples, scale, seed):
    return fixed_weights("swa", run.posterior, run.posterior.mean())


def _swag(run, n_samples, scale, seed):
    return swag_samples(run.posterior, n_samples, scale=scale, seed=seed, name="swag")


def _swag_diag(run, n_samples, scale, seed):
    return swag_samples(run.posterior, n_samples, scale=scale, diag_only=True, seed=seed, name="swag-diag")


def _zero_shot(run, n_samples, scale, seed):
    from .zero_shot import zero_shot

    return zero_shot(run.model, run.tokenizer)


METHODS: dict[str, MethodBuilder] = {"map": _map, "swa": _swa, "swag": _swag, "swag-diag": _swag_diag,
                                     "zero-shot": _zero_shot}
BASE_METHODS = tuple(METHODS)


def build_method(name: str, run, n_samples: int = 10, scale: float = 1.0, seed: int = 0) -> Predictive:
    """The predictive of method ``name`` for a loaded run."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    return METHODS[name](run, n_samples, scale, seed)


def method_label(name: str, scale: float) -> str:
    """Folder name of a method's results: the name, plus the scale when it is not 1."""
    return name if name in ("map", "swa", "zero-shot") or scale == 1.0 else f"{name}@{scale:g}"
