"""A diagonal Gaussian over the flat vector of tracked parameters: the posterior a variational
method (BLoB, IVON) leaves in a run directory, its draws and its file.

The posterior is N(μ, diag(σ²)) over the same flat vector SWAG uses (every ``requires_grad``
parameter in ``named_parameters()`` order, :mod:`swag_lora.bayes.parameters`); σ is 0 where a
parameter is deterministic (BLoB's B and answer head). A member is μ + δ with δ = σ ⊙ z,
z ~ N(0, I) drawn from one seeded generator, so the same seed gives the same members for every
dataset, and the first S' draws of a seed are the same for every S ≥ S' (nested).

The file (``variational_posterior.safetensors``) holds ``mean`` and ``std`` (float32) and any
method-specific tensors (IVON's Hessian estimate), with the method, its settings and the tracked
names and shapes as metadata; it is written atomically with a checksum of its tensors (verified on
loading) and checked against the model on loading.
"""

from __future__ import annotations

import json
import os

import torch
from safetensors import SafetensorError

from ..errors import InvalidSettingError, SwagLoraError
from ..tensorfile import ChecksumMismatchError, load_checked, save_checked
from .parameters import mismatch

__all__ = ["VARIATIONAL_FILE", "DiagonalGaussian", "VariationalFileError"]

VARIATIONAL_FILE = "variational_posterior.safetensors"
FORMAT_NAME = "swag-lora/diagonal-gaussian"
FORMAT_VERSION = 1


class VariationalFileError(SwagLoraError, ValueError):
    """A variational posterior file is unreadable, of another format, or does not fit the model."""


class DiagonalGaussian:
    """N(``mean``, diag(``std``²)) over a flat vector of tracked parameters named ``names``
    with ``shapes``; ``method`` and ``settings`` say what made it; ``extra`` holds further
    tensors saved with it."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, names: list[str], shapes: list[tuple[int, ...]],
                 method: str, settings: dict | None = None, extra: dict[str, torch.Tensor] | None = None):
        mean, std = mean.detach().float().reshape(-1), std.detach().float().reshape(-1)
        if mean.shape != std.shape:
            raise InvalidSettingError(f"mean has {mean.numel()} values but std {std.numel()}")
        if not bool(torch.isfinite(std).all()) or bool((std < 0).any()):
            raise InvalidSettingError("a posterior standard deviation must be finite and >= 0")
        self.mean, self.std = mean, std
        self.names, self.shapes = list(names), [tuple(s) for s in shapes]
        self.method, self.settings = method, dict(settings or {})
        self.extra = dict(extra or {})

    @property
    def num_parameters(self) -> int:
        return self.mean.numel()

    def to(self, device) -> DiagonalGaussian:
        """The same posterior with its vectors on ``device``."""
        self.mean, self.std = self.mean.to(device), self.std.to(device)
        return self

    @torch.no_grad()
    def draw_deviations(self, n_samples: int, seed: int = 0, antithetic: bool = False) -> list[torch.Tensor]:
        """S deviations δ_s = σ ⊙ z_s from one generator seeded by ``seed`` (nested in S); with
        ``antithetic``, δ₁, −δ₁, δ₂, −δ₂, … (S even)."""
        if n_samples < 1:
            raise InvalidSettingError(f"n_samples must be >= 1, got {n_samples}")
        if antithetic and n_samples % 2:
            raise InvalidSettingError(f"antithetic sampling draws pairs: n_samples must be even, got {n_samples}")
        generator = torch.Generator(device=self.mean.device).manual_seed(seed)
        draw = lambda: self.std * torch.randn(self.num_parameters, generator=generator,  # noqa: E731
                                              device=self.mean.device)
        if not antithetic:
            return [draw() for _ in range(n_samples)]
        out = []
        for _ in range(n_samples // 2):
            delta = draw()
            out += [delta, -delta]
        return out

    # ---------------------------------------------------------------- storage
    def save(self, path: str | os.PathLike) -> None:
        """Write the posterior to a safetensors file with its checksum, atomically."""
        tensors = {"mean": self.mean.cpu().contiguous(), "std": self.std.cpu().contiguous(),
                   **{f"extra.{k}": v.detach().float().cpu().contiguous() for k, v in self.extra.items()}}
        meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "method": self.method,
                "settings": self.settings, "names": self.names, "shapes": [list(s) for s in self.shapes]}
        save_checked(os.fspath(path), tensors, {"swag_lora": json.dumps(meta)})

    @classmethod
    def load(cls, path: str | os.PathLike, names: list[str] | None = None,
             shapes: list[tuple[int, ...]] | None = None) -> DiagonalGaussian:
        """Read a posterior written by :meth:`save`, its checksum verified; with ``names`` and
        ``shapes`` (a model's tracked parameters), :class:`VariationalFileError` unless they are
        the file's."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise VariationalFileError(f"no variational posterior file at {path}")
        try:
            tensors, metadata = load_checked(path)
            raw = metadata.get("swag_lora")
        except ChecksumMismatchError as err:
            raise VariationalFileError(str(err)) from err
        except (SafetensorError, OSError, ValueError, RuntimeError) as err:
            raise VariationalFileError(f"cannot read {path}: {err} (truncated or corrupted?)") from err
        meta = json.loads(raw) if raw else {}
        if meta.get("format") != FORMAT_NAME or meta.get("format_version") != FORMAT_VERSION:
            raise VariationalFileError(f"{path} is not a swag-lora variational posterior of format version "
                                       f"{FORMAT_VERSION}")
        if names is not None and shapes is not None:
            saved = list(zip(meta["names"], [tuple(s) for s in meta["shapes"]]))
            reason = mismatch(saved, list(zip(names, [tuple(s) for s in shapes])))
            if reason is not None:
                raise VariationalFileError(f"variational posterior {path} does not match the model: {reason}")
        extra = {k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")}
        return cls(tensors["mean"], tensors["std"], meta["names"], meta["shapes"], meta["method"], meta["settings"],
                   extra)
