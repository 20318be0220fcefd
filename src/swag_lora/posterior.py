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
from typing import Protocol

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .io import atomic_write

FORMAT_VERSION = 1
FORMAT_NAME = "swag-lora/swag-posterior"
VARIANCE_FLOOR = 1e-30


class PosteriorMismatchError(ValueError):
    """A saved posterior does not fit the model it is loaded into."""


class PosteriorFileError(ValueError):
    """A posterior file is unreadable, truncated, or not a swag-lora posterior."""


def tracked_parameters(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """The parameters SWAG tracks: every ``requires_grad`` parameter, in ``named_parameters()`` order."""
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]


class ParameterGather(Protocol):
    """Access to tracked parameters that are sharded across processes (FSDP, ZeRO-3).

    Both methods are collectives: every process calls them, in the same order. They need
    memory for the tracked parameters only (plus, at most, one sharding unit at a time)."""

    def read(self) -> list[torch.Tensor]:
        """The full values of the tracked parameters, in order (possibly copies)."""
        ...

    def write(self, tensors: list[torch.Tensor]) -> None:
        """Set the tracked parameters to these full values (shapes as the parameters')."""
        ...


def full_shape(param: torch.Tensor) -> tuple[int, ...]:
    """The unsharded shape of a parameter (DeepSpeed ZeRO-3 keeps it in ``ds_shape``;
    a DTensor's ``shape`` is already the global one)."""
    return tuple(getattr(param, "ds_shape", param.shape))


class FlatParameterView:
    """Reads and writes a list of parameters as one flat vector.

    Reading converts to the view's dtype, into a caller's buffer or a new tensor; writing
    converts back to each parameter's own dtype and device. Neither loops over elements,
    and the view holds no buffer of its own. Where the parameters are sharded across
    processes (FSDP, ZeRO-3), :meth:`set_gather` installs a :class:`ParameterGather`
    through which both go, so they always see the full tensors.
    """

    def __init__(self, params: list[torch.Tensor], dtype: torch.dtype = torch.float32):
        if not params:
            raise ValueError("no parameters to track: the model has no parameter with requires_grad=True")
        self.params = params
        self.shapes = [full_shape(p) for p in params]
        self.numels = [math.prod(s) for s in self.shapes]
        self.numel = sum(self.numels)
        self.device = params[0].device
        self.dtype = dtype
        self._gather: ParameterGather | None = None

    def set_gather(self, gather: ParameterGather | None) -> None:
        """Route reads and writes through ``gather`` (``None``: the parameters are whole)."""
        self._gather = gather

    def split(self, vector: torch.Tensor) -> list[torch.Tensor]:
        """Views of a flat vector (shape [P]) shaped like the (full) parameters, in order."""
        return [chunk.view(shape) for chunk, shape in zip(vector.split(self.numels), self.shapes)]

    def _tensors(self) -> list[torch.Tensor]:
        tensors = self._gather.read() if self._gather is not None else self.params
        return [t.detach() for t in tensors]

    @torch.no_grad()
    def read(self, out: torch.Tensor | None = None) -> torch.Tensor:
        """The current parameter values as a flat vector: written into ``out`` (shape [P], the
        view's dtype and device) when given, else into a new tensor."""
        if out is None:
            out = torch.empty(self.numel, dtype=self.dtype, device=self.device)
        torch._foreach_copy_(self.split(out), self._tensors())
        return out

    @torch.no_grad()
    def read_into(self, views: list[torch.Tensor], check_finite: bool = False) -> None:
        """Copy the parameters into ``views`` (as made by :meth:`split` of a flat buffer).

        With ``check_finite``, a NaN or infinite parameter raises ``FloatingPointError``
        before anything is copied."""
        tensors = self._tensors()
        if check_finite and not all(torch.isfinite(t.sum()) for t in tensors):
            raise FloatingPointError("non-finite values in the tracked parameters; nothing collected")
        torch._foreach_copy_(views, tensors)

    @torch.no_grad()
    def write(self, vector: torch.Tensor) -> None:
        """Copy ``vector`` (shape [P]) into the parameters, keeping their dtype and device."""
        if vector.dim() != 1 or vector.numel() != self.numel:
            raise ValueError(f"expected a flat vector of {self.numel} elements, got shape {tuple(vector.shape)}")
        if self._gather is not None:
            self._gather.write(self.split(vector))
        else:
            torch._foreach_copy_([p.data for p in self.params], self.split(vector.to(self.device)))


class SwagPosterior:
    """SWAG moments over the trainable parameters of ``model``.

    ``SwagPosterior(model, max_rank=5)`` tracks every parameter with ``requires_grad=True``
    at construction time. Call :meth:`collect` at each collection point during training;
    then draw weights with :meth:`sample` and put them into the model with :meth:`write`
    or, restoring the original weights afterwards, with :meth:`sampled`.
    """

    def __init__(self, model: torch.nn.Module, max_rank: int = 5, dtype: torch.dtype = torch.float32):
        if max_rank < 0:
            raise ValueError(f"max_rank must be >= 0, got {max_rank}")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"the posterior accumulates in float32 or float64, got {dtype}")
        named = tracked_parameters(model)
        self.names = [name for name, _ in named]
        self.shapes = [full_shape(p) for _, p in named]
        self.param_dtypes = [p.dtype for _, p in named]
        self.max_rank = int(max_rank)
        self.dtype = dtype
        self._view = FlatParameterView([p for _, p in named], dtype=dtype)
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
        if scale < 0:
            raise ValueError(f"scale must be >= 0, got {scale}")
        return self.sample_deviation(diag_only, generator).mul_(scale**0.5).add_(self._mean)

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
        ``max_rank``, ``n_collected`` and the ring-buffer position. A failed write raises
        :class:`~swag_lora.io.ArtifactWriteError` and leaves any previous file intact.
        """
        path = os.fspath(path)
        tensors = {
            "mean": self._mean.detach().contiguous().cpu(),
            "m2": self._m2.detach().contiguous().cpu(),
            "deviations": self._dev.detach().contiguous().cpu(),
        }
        metadata = {"swag_lora": json.dumps(self._metadata())}
        atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))

    @classmethod
    def load(cls, path: str | os.PathLike, model: torch.nn.Module) -> SwagPosterior:
        """Read a posterior saved by :meth:`save` and attach it to ``model``.

        Every tracked parameter's name and shape must match the file, in order; otherwise
        :class:`PosteriorMismatchError` names the first mismatch. A truncated, corrupted or
        foreign file raises :class:`PosteriorFileError`.
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no posterior file at {path}")
        try:
            from safetensors import safe_open

            with safe_open(path, framework="pt") as handle:
                raw_meta = handle.metadata() or {}
            tensors = load_file(path)
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
        dtype = getattr(torch, meta["state_dtype"])
        posterior = cls(model, max_rank=meta["max_rank"], dtype=dtype)
        cls._check_matches(path, meta, posterior)
        P, K = posterior.num_parameters, posterior.max_rank
        expected = {"mean": (P,), "m2": (P,), "deviations": (K, P)}
        for key, shape in expected.items():
            if key not in tensors or tuple(tensors[key].shape) != shape:
                got = tuple(tensors[key].shape) if key in tensors else "missing"
                raise PosteriorFileError(f"{path}: tensor {key!r} should have shape {shape}, found {got}")
        device = posterior.device
        posterior._mean.copy_(tensors["mean"].to(device))
        posterior._m2.copy_(tensors["m2"].to(device))
        posterior._dev.copy_(tensors["deviations"].to(device))
        posterior.n_collected = int(meta["n_collected"])
        posterior._next_slot = int(meta["next_slot"])
        return posterior

    @staticmethod
    def _check_matches(path: str, meta: dict, posterior: SwagPosterior) -> None:
        saved = list(zip(meta["names"], [tuple(s) for s in meta["shapes"]]))
        current = list(zip(posterior.names, posterior.shapes))
        for i, (want, have) in enumerate(zip(saved, current)):
            if want[0] != have[0]:
                raise PosteriorMismatchError(
                    f"posterior {path} does not match the model: tracked parameter #{i} is "
                    f"{want[0]!r} in the file but {have[0]!r} in the model"
                )
            if want[1] != have[1]:
                raise PosteriorMismatchError(
                    f"posterior {path} does not match the model: parameter {want[0]!r} has shape "
                    f"{list(want[1])} in the file but {list(have[1])} in the model"
                )
        if len(saved) != len(current):
            longer, which = (saved, "file") if len(saved) > len(current) else (current, "model")
            raise PosteriorMismatchError(
                f"posterior {path} does not match the model: parameter {longer[len(current if which == 'file' else saved)][0]!r} "
                f"is tracked in the {which} only ({len(saved)} tracked in the file, {len(current)} in the model)"
            )
