"""SWAG: a Gaussian posterior over the trainable parameters of a model, learned from SGD iterates.

The posterior is held over the flat vector θ of every parameter with ``requires_grad=True``
(for a LoRA model: the adapter matrices and any trainable answer head), concatenated in
``model.named_parameters()`` order. Its state is

* ``mean``      θ̄, the running average of the collected iterates (SWA),
* ``m2``        the sum of squared deviations from the running mean (Welford), so the
                diagonal variance is ``m2 / n`` without the catastrophic cancellation of
                ``E[θ²] − θ̄²`` when iterates barely move,
* ``dev``       a ring buffer of the last ``max_rank`` deviations ``θ_i − θ̄_i`` (the mean
                *after* the update with ``θ_i``),

all in float32 (or wider) whatever the parameters' dtype: (2 + max_rank)·P numbers, and
nothing else is kept between calls (a collection allocates nothing; a sample allocates its
result and O(P) transient scratch). A sample is

    θ̃ = θ̄ + √scale · (σ ⊙ z₁ + Dᵀ z₂ / √(k − 1)),   z₁ ~ N(0, I_P), z₂ ~ N(0, I_k),

with ``k`` the number of deviation rows actually held, so its covariance is
``scale · (diag(σ²) + DᵀD / (k − 1))``. ``scale = 0.5`` is the covariance of Maddox et al.
(2019); ``scale = 0`` gives SWA. This module imports torch and nothing from transformers.

Precision: with the default float32 state the variance is accurate to roughly
``ulp(θ̄) / σ`` (a few percent when σ/|θ̄| ≈ 1e-6, far better for LoRA weights); pass
``dtype=torch.float64`` for an exact-to-rounding state at twice the memory.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from safetensors import SafetensorError

from ..errors import InvalidSettingError, SwagLoraError
from ..tensorfile import ChecksumMismatchError, load_checked, save_checked
from .parameters import FlatParameterView, ParameterGather, mismatch

__all__ = [
    "DEFAULT_MAX_RANK",
    "FORMAT_VERSION",
    "POSTERIOR_FILE",
    "PosteriorFileError",
    "PosteriorMismatchError",
    "SwagPosterior",
    "check_scale",
]

POSTERIOR_FILE = "swag_posterior.safetensors"  # the name of a saved posterior in runs and checkpoints
FORMAT_VERSION = 1
FORMAT_NAME = "swag-lora/swag-posterior"
VARIANCE_FLOOR = 1e-30
DEFAULT_MAX_RANK = 5  # K, the deviation columns kept (the paper's value)


class PosteriorMismatchError(SwagLoraError, ValueError):
    """A saved posterior does not fit the model it is loaded into."""


class PosteriorFileError(SwagLoraError, ValueError):
    """A posterior file is unreadable, truncated, or not a swag-lora posterior."""


class SwagPosterior:
    """SWAG moments over the trainable parameters of ``model``.

    ``SwagPosterior(model, max_rank=K)`` (K = 5 by default) tracks every parameter with ``requires_grad=True``
    at construction time. Call :meth:`collect` at each collection point during training;
    then draw weights with :meth:`sample` and put them into the model with :meth:`write`
    or, restoring the original weights afterwards, with :meth:`sampled`.
    """

    def __init__(self, model: torch.nn.Module, max_rank: int = DEFAULT_MAX_RANK, dtype: torch.dtype = torch.float32):
        if max_rank < 0:
            raise InvalidSettingError(f"max_rank must be >= 0, got {max_rank}")
        if dtype not in (torch.float32, torch.float64):
            raise InvalidSettingError(f"the posterior accumulates in float32 or float64, got {dtype}")
        self._view = FlatParameterView.of_model(model, dtype=dtype)
        self.names = self._view.names
        self.shapes = self._view.shapes
        self.param_dtypes = self._view.param_dtypes
        self.max_rank = int(max_rank)
        self.dtype = dtype
        P, device = self._view.numel, self._view.device
        self.n_collected = 0
        self._mean = torch.zeros(P, dtype=dtype, device=device)
        self._m2 = torch.zeros(P, dtype=dtype, device=device)
        self._dev = torch.zeros(self.max_rank, P, dtype=dtype, device=device)
        self._dev_views = [self._view.split(row) for row in self._dev]  # per-parameter views of each row
        self._next_slot = 0  # ring-buffer row the next deviation goes into

    # ------------------------------------------------------------------ state
    @property
    def num_parameters(self) -> int:
        """P, the length of the flat parameter vector."""
        return self._view.numel

    @property
    def device(self) -> torch.device:
        return self._view.device

    @property
    def view(self) -> FlatParameterView:
        """The tracked parameters as one flat vector (names, shapes, reads and writes)."""
        return self._view

    @property
    def rank(self) -> int:
        """k, the number of deviation rows held: ``min(n_collected, max_rank)``."""
        return min(self.n_collected, self.max_rank)

    def state_nbytes(self) -> int:
        """Bytes held by the posterior's moments (mean, m2 and the deviation buffer)."""
        return sum(t.numel() * t.element_size() for t in (self._mean, self._m2, self._dev))

    def mean(self) -> torch.Tensor:
        """θ̄, shape [P] (a copy). Zeros before the first collection."""
        return self._mean.clone()

    def variance(self) -> torch.Tensor:
        """The diagonal variance σ² = m2 / n (population form, as SWAG), shape [P] (a copy)."""
        if self.n_collected == 0:
            return torch.zeros_like(self._mean)
        return (self._m2 / self.n_collected).clamp_(min=0.0)

    def deviations(self) -> torch.Tensor:
        """D, shape [k, P] with k = ``min(n_collected, max_rank)``, oldest row first (a copy)."""
        k = self.rank
        if self.n_collected <= self.max_rank:
            return self._dev[:k].clone()
        order = [(self._next_slot + i) % self.max_rank for i in range(self.max_rank)]
        return self._dev[order].clone()

    # ------------------------------------------------------------- collection
    @torch.no_grad()
    def collect(self, check_finite: bool = False) -> None:
        """Add the model's current tracked parameters as one iterate.

        Updates the mean and the Welford sum of squares, and writes the deviation from the
        updated mean into the ring buffer (overwriting the oldest row once full). With
        ``check_finite``, a NaN or infinite value raises ``FloatingPointError`` and nothing
        is collected.
        """
        n = self.n_collected + 1
        if self.max_rank > 0:
            # The iterate is read straight into the ring-buffer row it replaces, so collection
            # needs no buffer beyond the state: five passes over P numbers, no allocation.
            d = self._dev[self._next_slot]
            self._view.read_into(self._dev_views[self._next_slot], check_finite=check_finite)
            self._next_slot = (self._next_slot + 1) % self.max_rank
        else:
            d = torch.empty_like(self._mean)
            self._view.read_into(self._view.split(d), check_finite=check_finite)
        # With δ = θ − θ̄_old and θ̄_new = θ̄_old + δ/n, the deviation from the updated mean is
        # θ − θ̄_new = δ·(n−1)/n, and Welford's increment δ·(θ − θ̄_new) is δ²·(n−1)/n ≥ 0.
        d.sub_(self._mean)
        self._mean.add_(d, alpha=1.0 / n)
        self._m2.addcmul_(d, d, value=(n - 1) / n)
        d.mul_((n - 1) / n)
        self.n_collected = n

    # --------------------------------------------------------------- sampling
    def _check_collected(self) -> None:
        if self.n_collected == 0:
            raise RuntimeError("the posterior has no collected iterates yet: call collect() during training first")

    @torch.no_grad()
    def sample_deviation(self, diag_only: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """One unit-scale deviation δ = σ⊙z₁ + Dᵀz₂/√(k−1) from the mean, as a new tensor of shape [P].

        θ̄ + √scale·δ is a draw at any ``scale`` (one δ serves a whole grid of scales) and
        θ̄ ± √scale·δ is an antithetic pair. Consumes ``generator`` exactly as :meth:`sample`.
        """
        self._check_collected()
        z1 = torch.randn(self.num_parameters, generator=generator, dtype=self.dtype, device=self.device)
        delta = self._m2.div(self.n_collected).clamp_(min=VARIANCE_FLOOR).sqrt_().mul_(z1)
        k = self.rank
        if not diag_only and k >= 2:
            z2 = torch.randn(k, generator=generator, dtype=self.dtype, device=self.device)
            # Row order does not matter for the distribution; use the raw buffer rows.
            delta.addmv_(self._dev[:k].T, z2, alpha=1.0 / (k - 1) ** 0.5)
        return delta

    @torch.no_grad()
    def draw_deviations(
        self,
        n_samples: int,
        diag_only: bool = False,
        seed: int = 0,
        antithetic: bool = False,
    ) -> list[torch.Tensor]:
        """S unit-scale deviations δ (see :meth:`sample_deviation`), drawn from one generator
        seeded by ``seed``.

        The first S' of a seed's draws are the same for every S ≥ S' (nested samples). With
        ``antithetic``, S must be even and the list is δ₁, −δ₁, δ₂, −δ₂, …: every even-length
        prefix is made of whole pairs, whose average is exactly the mean.
        """
        if n_samples < 1:
            raise InvalidSettingError(f"n_samples must be >= 1, got {n_samples}")
        if antithetic and n_samples % 2:
            raise InvalidSettingError(f"antithetic sampling draws pairs: n_samples must be even, got {n_samples}")
        generator = torch.Generator(device=self.device).manual_seed(seed)
        if not antithetic:
            return [self.sample_deviation(diag_only, generator) for _ in range(n_samples)]
        out = []
        for _ in range(n_samples // 2):
            delta = self.sample_deviation(diag_only, generator)
            out += [delta, -delta]
        return out

    def draw(self, deviation: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """The weights θ̄ + √scale·δ for a unit-scale deviation δ, as a new tensor of shape [P]:
        the one rule by which every SWAG sample of this package is made."""
        check_scale(scale)
        return self._mean + scale**0.5 * deviation

    @torch.no_grad()
    def sample(
        self,
        scale: float = 1.0,
        diag_only: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """One draw θ̃ = θ̄ + √scale·(σ⊙z₁ + Dᵀz₂/√(k−1)) as a new tensor of shape [P].

        The low-rank term is left out when ``diag_only`` or when fewer than two deviation
        rows are held. ``generator`` (on the posterior's device) makes the draw
        reproducible; without it the global RNG is used.
        """
        self._check_collected()
        check_scale(scale)
        return self.draw(self.sample_deviation(diag_only, generator), scale)

    def write(self, vector: torch.Tensor) -> None:
        """Copy a flat vector into the tracked parameters (their dtype and device kept)."""
        self._view.write(vector)

    def read(self) -> torch.Tensor:
        """The tracked parameters' current values as a new flat vector in the posterior's dtype."""
        return self._view.read()

    def set_gather(self, gather: ParameterGather | None) -> None:
        """Read and write the tracked parameters through ``gather`` from now on: needed once
        they are sharded across processes (FSDP, ZeRO-3; see :mod:`swag_lora.distributed`).
        ``collect``, ``read``, ``write`` and ``written`` are then collectives."""
        self._view.set_gather(gather)

    @contextmanager
    def written(self, vector: torch.Tensor) -> Iterator[torch.Tensor]:
        """Put ``vector`` into the model for the ``with`` block; restore the previous weights
        on exit, also when the block raises."""
        saved = self.read()
        try:
            self.write(vector)
            yield vector
        finally:
            self.write(saved)

    @contextmanager
    def sampled(
        self,
        scale: float = 1.0,
        diag_only: bool = False,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Iterator[torch.Tensor]:
        """Draw one sample (seeded by ``seed`` or from ``generator``), put it into the model
        for the ``with`` block, and restore the original weights on exit, also on an exception.
        Yields the sampled vector."""
        if seed is not None:
            if generator is not None:
                raise ValueError("pass either seed or generator, not both")
            generator = torch.Generator(device=self.device).manual_seed(seed)
        vector = self.sample(scale=scale, diag_only=diag_only, generator=generator)
        with self.written(vector):
            yield vector

    # ---------------------------------------------------------------- storage
    def _metadata(self) -> dict:
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "names": self.names,
            "shapes": [list(s) for s in self.shapes],
            "param_dtypes": [str(d).replace("torch.", "") for d in self.param_dtypes],
            "state_dtype": str(self.dtype).replace("torch.", ""),
            "max_rank": self.max_rank,
            "n_collected": self.n_collected,
            "next_slot": self._next_slot,
            "num_parameters": self.num_parameters,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the full state to a safetensors file, atomically (temporary name, then rename).

        The file holds the moments and, as metadata, everything needed to continue collecting
        exactly after a reload: format version, parameter names, shapes and dtypes,
        ``max_rank``, ``n_collected`` and the ring-buffer position, and a checksum of the
        tensors that :meth:`load` verifies (:mod:`swag_lora.tensorfile`). A failed write raises
        :class:`~swag_lora.files.ArtifactWriteError` and leaves any previous file intact.
        """
        path = os.fspath(path)
        tensors = {
            "mean": self._mean.detach().contiguous().cpu(),
            "m2": self._m2.detach().contiguous().cpu(),
            "deviations": self._dev.detach().contiguous().cpu(),
        }
        save_checked(path, tensors, {"swag_lora": json.dumps(self._metadata())})

    @classmethod
    def load(cls, path: str | os.PathLike, model: torch.nn.Module) -> SwagPosterior:
        """Read a posterior saved by :meth:`save` and attach it to ``model``.

        Every tracked parameter's name and shape must match the file, in order; otherwise
        :class:`PosteriorMismatchError` names the first mismatch. A truncated, corrupted or
        foreign file raises :class:`PosteriorFileError`.
        """
        path = os.fspath(path)
        meta, tensors = cls._read_file(path)
        dtype = getattr(torch, meta["state_dtype"])
        posterior = cls(model, max_rank=meta["max_rank"], dtype=dtype)
        posterior._set_state(path, meta, tensors)
        return posterior

    def restore(self, path: str | os.PathLike) -> None:
        """Replace this posterior's state by the one saved in ``path`` (by :meth:`save`), e.g.
        to continue collecting after a resume; the file must hold the same parameters, K and
        state dtype (:class:`PosteriorMismatchError` otherwise)."""
        path = os.fspath(path)
        meta, tensors = self._read_file(path)
        mine = str(self.dtype).replace("torch.", "")
        if meta["max_rank"] != self.max_rank or meta["state_dtype"] != mine:
            raise PosteriorMismatchError(
                f"posterior {path} keeps K={meta['max_rank']} deviations in {meta['state_dtype']}; this one keeps "
                f"K={self.max_rank} in {mine}"
            )
        self._set_state(path, meta, tensors)

    def _set_state(self, path: str, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        self._check_matches(path, meta, self)
        P, K = self.num_parameters, self.max_rank
        expected = {"mean": (P,), "m2": (P,), "deviations": (K, P)}
        for key, shape in expected.items():
            if key not in tensors or tuple(tensors[key].shape) != shape:
                got = tuple(tensors[key].shape) if key in tensors else "missing"
                raise PosteriorFileError(f"{path}: tensor {key!r} should have shape {shape}, found {got}")
        device = self.device
        self._mean.copy_(tensors["mean"].to(device))
        self._m2.copy_(tensors["m2"].to(device))
        self._dev.copy_(tensors["deviations"].to(device))
        self.n_collected = int(meta["n_collected"])
        self._next_slot = int(meta["next_slot"])

    @staticmethod
    def _read_file(path: str) -> tuple[dict, dict[str, torch.Tensor]]:
        """The metadata and tensors of a posterior file; :class:`PosteriorFileError` if it is
        not a readable swag-lora posterior of this format version."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no posterior file at {path}")
        try:
            tensors, raw_meta = load_checked(path)
        except ChecksumMismatchError as err:
            raise PosteriorFileError(str(err)) from err
        except (SafetensorError, OSError, ValueError, RuntimeError) as err:
            raise PosteriorFileError(f"cannot read posterior file {path}: {err} (truncated or corrupted?)") from err
        if "swag_lora" not in raw_meta:
            raise PosteriorFileError(f"{path} is a safetensors file but not a swag-lora posterior (no metadata)")
        meta = json.loads(raw_meta["swag_lora"])
        if meta.get("format") != FORMAT_NAME:
            raise PosteriorFileError(f"{path} is not a swag-lora posterior (format {meta.get('format')!r})")
        if meta.get("format_version") != FORMAT_VERSION:
            raise PosteriorFileError(
                f"{path} has posterior format version {meta.get('format_version')}; "
                f"this swag-lora reads version {FORMAT_VERSION}"
            )
        return meta, tensors

    @staticmethod
    def _check_matches(path: str, meta: dict, posterior: SwagPosterior) -> None:
        saved = list(zip(meta["names"], [tuple(s) for s in meta["shapes"]]))
        reason = mismatch(saved, list(zip(posterior.names, posterior.shapes)))
        if reason is not None:
            raise PosteriorMismatchError(f"posterior {path} does not match the model: {reason}")


def check_scale(scale: float) -> None:
    """A SWAG covariance scale must be a finite number >= 0 (0 gives the SWA mean)."""
    if not (scale >= 0 and math.isfinite(scale)):
        raise InvalidSettingError(f"the SWAG scale must be a finite number >= 0, got {scale}")
