"""Bayesian model averaging: evaluate any posterior on a dataset with one fixed set of members.

A *method* is anything with a ``name``, ``settings`` and ``log_probs(model, features,
collator, batch_size, progress) -> [N, S, C]``: per example, per member, log-probabilities
over the choice slots. Every metric is derived from their log-mean-exp average
(:mod:`swag_lora.metrics`). Most methods are a :class:`Method`: a fixed list of S
"members", context managers that put the model into one state (a weight setting, a
forward mode) for a ``with`` block, each run over every batch. Methods that produce
per-example predictive samples directly (e.g. a linearised Laplace predictive) implement
``log_probs`` themselves.

Members are drawn once per method from a seeded generator, so the same seed gives the same
weights for every dataset evaluated (in-distribution and OOD alike). A method may also carry a
``temperature`` T (default 1): its metrics then come from softmax(log p̄ / T), the averaged
predictive recalibrated (:mod:`swag_lora.bayes.temperature`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import distributed as D
from .. import metrics as M
from .posterior import SwagPosterior
from .sampling import SamplingOptions

__all__ = [
    "Concatenation",
    "Member",
    "Method",
    "Predictive",
    "evaluate_predictive",
    "fixed_weights",
    "length_sorted_batches",
    "member_log_probs",
    "summarise_predictive",
    "swag_samples",
    "temperature_of",
    "weight_samples",
]

Member = Callable[[], AbstractContextManager]


@runtime_checkable
class Predictive(Protocol):
    """What the evaluation loop needs from a method."""

    name: str
    settings: dict

    def log_probs(self, model, features, collator, batch_size: int = 16, progress: bool = False) -> np.ndarray:
        """[N, S, C] log-probabilities (float32, −inf in absent choice slots), in ``features`` order."""
        ...


def temperature_of(method) -> float:
    """The temperature a method applies to its averaged log p̄ (1 when it has none)."""
    return float(getattr(method, "temperature", 1.0))


@dataclass
class Method:
    """A named list of members; ``members[s]()`` enters member s."""

    name: str
    members: list[Member]
    settings: dict

    def __len__(self) -> int:
        return len(self.members)

    def log_probs(self, model, features, collator, batch_size: int = 16, progress: bool = False) -> np.ndarray:
        return member_log_probs(model, features, collator, self, batch_size, progress)


def fixed_weights(name: str, posterior: SwagPosterior, vector: torch.Tensor, **settings) -> Method:
    """A single weight setting (MAP, SWA)."""
    return Method(name, [lambda: posterior.written(vector)], {"n_samples": 1, **settings})


def swag_samples(
    posterior: SwagPosterior,
    options: SamplingOptions,
    name: str | None = None,
    deviations: Sequence[torch.Tensor] | None = None,
) -> Method:
    """S SWAG draws θ̄ + √scale·δ_s (:meth:`SwagPosterior.draw`), fixed by ``options.seed`` and
    drawn up front, so every dataset sees the same weights. ``deviations`` (from
    :meth:`SwagPosterior.draw_deviations`) reuses given δ_s, e.g. the same draws for every scale of a
    grid; otherwise they are drawn here."""
    o = options
    if deviations is None:
        deviations = posterior.draw_deviations(o.n_samples, o.diag_only, o.seed, o.antithetic)
    elif len(deviations) != o.n_samples:
        raise ValueError(f"{len(deviations)} deviations given for n_samples={o.n_samples}")
    name = name or ("swag-diag" if o.diag_only else "swag")
    settings = {"scale": o.scale, "seed": o.seed, "diag_only": o.diag_only, "antithetic": o.antithetic}
    return _weight_members(name, posterior, [posterior.draw(d, o.scale) for d in deviations], settings)


def weight_samples(name: str, posterior: SwagPosterior, mean: torch.Tensor, deviations: Sequence[torch.Tensor],
                   **settings) -> Method:
    """Members θ_s = ``mean`` + δ_s for given flat deviations (drawn up front by the caller from a
    seeded generator), each written into the tracked parameters through ``posterior``'s view for
    its ``with`` block: BLoB, IVON and TFB draws."""
    return _weight_members(name, posterior, [mean + d.to(mean.device) for d in deviations], settings)


def _weight_members(name: str, posterior: SwagPosterior, draws: list[torch.Tensor], settings: dict) -> Method:
    members = [(lambda v=v: posterior.written(v)) for v in draws]
    return Method(name, members, {"n_samples": len(draws), **settings})


@dataclass
class Concatenation:
    """Several predictives as one: their [N, S_i, C] outputs joined along the member axis
    (an ensemble of runs, MultiSWAG). Parts may have different numbers of members."""

    name: str
    parts: list
    settings: dict

    def log_probs(self, model, features, collator, batch_size: int = 16, progress: bool = False) -> np.ndarray:
        outputs = [part.log_probs(model, features, collator, batch_size, progress) for part in self.parts]
        width = max(o.shape[2] for o in outputs)
        outputs = [np.pad(o, ((0, 0), (0, 0), (0, width - o.shape[2])), constant_values=-np.inf) for o in outputs]
        return np.concatenate(outputs, axis=1)


@contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _feature_length(feature: dict) -> int:
    if "input_ids" in feature:
        return len(feature["input_ids"])
    return sum(map(len, feature["contexts"])) + sum(map(len, feature["continuations"]))


def length_sorted_batches(features: Sequence[dict], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first), to waste little padding."""
    order = sorted(range(len(features)), key=lambda i: -_feature_length(features[i]))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _move(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


@torch.no_grad()
def member_log_probs(
    model: torch.nn.Module,
    features: Sequence[dict],
    collator,
    method: Method,
    batch_size: int = 16,
    progress: bool = False,
    desc: str | None = None,
) -> np.ndarray:
    """Log-probabilities over the choice slots, shape [N, S, C] float32, in ``features`` order.

    The model is in eval mode unless a member switches a mode itself (e.g. MC dropout).
    Each member's weights are written once and all batches run under them.

    Under several processes (``torch.distributed`` initialised, every process holding the
    whole model) the batches are dealt out round-robin and the results summed back, so every
    process returns the full array, and each question is computed in the same batch as in
    one process: with deterministic members the result does not depend on the number of
    processes.
    """
    batches = length_sorted_batches(features, batch_size)
    batches = batches[D.rank() :: D.world_size()]
    padded = [_move(collator([features[i] for i in idx]), model.device) for idx in batches]
    fill = 0.0 if D.is_distributed() else -np.inf  # rows of other processes stay 0 for the sum
    out = np.full((len(features), len(method), collator.n_slots), fill, dtype=np.float32)
    total = len(method) * len(batches)
    bar = None
    if progress and D.is_main_process():
        bar = tqdm(total=total, desc=desc or method.name, unit="batch", leave=False)
    with _eval_mode(model):
        for s, enter in enumerate(method.members):
            with enter():
                for idx, batch in zip(batches, padded):
                    batch = {k: v for k, v in batch.items() if k != "labels"}
                    logits = model(**batch).logits.float()
                    out[idx, s, :] = torch.log_softmax(logits, dim=-1).cpu().numpy()
                    if bar is not None:
                        bar.update(1)
    if bar is not None:
        bar.close()
    return D.sum_across_processes(out)


def evaluate_predictive(
    model: torch.nn.Module,
    features: Sequence[dict],
    collator,
    method: Predictive,
    batch_size: int = 16,
    ece_bins: int = M.DEFAULT_ECE_BINS,
    progress: bool = False,
) -> tuple[np.ndarray, dict]:
    """Run ``method`` on ``features``: returns the [N, S, C] log-probabilities and the metrics
    of their averaged predictive, tempered by the method's temperature (plus its settings)."""
    log_probs = method.log_probs(model, features, collator, batch_size, progress)
    labels = np.array([f["label"] for f in features])
    return log_probs, summarise_predictive(method, log_probs, labels, ece_bins)


def summarise_predictive(method: Predictive, log_probs: np.ndarray, labels, ece_bins: int = M.DEFAULT_ECE_BINS) -> dict:
    """The metrics of ``method``'s [N, S, C] log-probabilities (its averaged predictive, tempered by
    the method's temperature) with the method's name and settings."""
    summary = M.summarise(log_probs, labels, ece_bins, temperature=temperature_of(method))
    summary.update(method=method.name, **method.settings)
    return summary
