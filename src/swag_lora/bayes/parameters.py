"""The tracked parameters of a model as one flat vector: which parameters, in which order, and
reading and writing them (also when FSDP or ZeRO-3 shard them across processes).

SWAG, adapters written from vectors, and the Laplace and MC-dropout baselines all address a
model's trainable parameters as the concatenation, in ``named_parameters()`` order, of every
parameter with ``requires_grad=True``. This module imports torch only.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch

from ..errors import InvalidSettingError

__all__ = ["FlatParameterView", "ParameterGather", "full_shape", "mismatch", "tracked_parameters"]


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

    def __init__(
        self,
        params: list[torch.Tensor],
        dtype: torch.dtype = torch.float32,
        names: list[str] | None = None,
    ):
        if not params:
            raise InvalidSettingError("no parameters to track: the model has no parameter with requires_grad=True")
        self.params = params
        self.names = list(names) if names is not None else [f"#{i}" for i in range(len(params))]
        self.shapes = [full_shape(p) for p in params]
        self.param_dtypes = [p.dtype for p in params]
        self.numels = [math.prod(s) for s in self.shapes]
        self.numel = sum(self.numels)
        self.device = params[0].device
        self.dtype = dtype
        self._gather: ParameterGather | None = None

    @classmethod
    def of_model(cls, model: torch.nn.Module, dtype: torch.dtype = torch.float32) -> FlatParameterView:
        """The view of ``model``'s tracked parameters (:func:`tracked_parameters`), with their names."""
        named = tracked_parameters(model)
        return cls([p for _, p in named], dtype=dtype, names=[name for name, _ in named])

    def set_gather(self, gather: ParameterGather | None) -> None:
        """Route reads and writes through ``gather`` (``None``: the parameters are whole)."""
        self._gather = gather

    def slice_of(self, param: torch.Tensor) -> slice:
        """Where ``param`` (one of the view's parameters, by identity) lies in the flat vector."""
        offset = 0
        for p, n in zip(self.params, self.numels):
            if p is param:
                return slice(offset, offset + n)
            offset += n
        raise KeyError("the parameter is not tracked by this view")

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


def mismatch(saved: list[tuple[str, tuple]], current: list[tuple[str, tuple]]) -> str | None:
    """Why a file's tracked (name, shape) list does not fit a model's (``None`` if it does): the
    first parameter whose name or shape differs, or the first one tracked on one side only."""
    for i, (want, have) in enumerate(zip(saved, current)):
        if want[0] != have[0]:
            return f"tracked parameter #{i} is {want[0]!r} in the file but {have[0]!r} in the model"
        if tuple(want[1]) != tuple(have[1]):
            return f"parameter {want[0]!r} has shape {list(want[1])} in the file but {list(have[1])} in the model"
    if len(saved) != len(current):
        longer, which = (saved, "file") if len(saved) > len(current) else (current, "model")
        extra = longer[min(len(saved), len(current))][0]
        return (f"parameter {extra!r} is tracked in the {which} only ({len(saved)} tracked in the file, "
                f"{len(current)} in the model)")
    return None
