"""Several processes (torchrun, ``accelerate launch``): who am I, who writes files, how the
posterior sees parameters that FSDP or DeepSpeed ZeRO-3 shard, and how evaluation results
come back together.

Process management itself is left to the launchers and to the Trainer/accelerate stack;
this module only reads ``torch.distributed``. It imports torch (and, lazily, DeepSpeed or
accelerate when they are in use) and nothing from transformers.

Every function here works unchanged in a single process.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.distributed as dist
from accelerate import PartialState
from torch import nn
from torch.distributed.fsdp import FullyShardedDataParallel
from torch.distributed.tensor import DTensor, distribute_tensor

__all__ = [
    "any_across_processes",
    "average_gradients",
    "barrier",
    "clean_name",
    "init_from_env",
    "is_distributed",
    "is_main_process",
    "local_rank",
    "parameter_gather",
    "rank",
    "sharding_kind",
    "sum_across_processes",
    "unwrap",
    "world_size",
]


# Name segments that wrappers insert into parameter names.
_WRAPPER_SEGMENTS = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")


def is_distributed() -> bool:
    """True when a process group with more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def local_rank() -> int:
    """This process's index on its machine (``LOCAL_RANK``, set by the launchers; 0 alone)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """The process that writes files (rank 0, or the only process)."""
    return rank() == 0


def barrier() -> None:
    """Wait for every process (no-op in a single process)."""
    if is_distributed():
        dist.barrier()


def init_from_env() -> torch.device | None:
    """Join the process group when started by a launcher (``WORLD_SIZE`` > 1).

    The backend is accelerate's choice (NCCL on GPUs, gloo on CPUs). Returns this process's
    device, or ``None`` when not launched as several processes.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    return PartialState(cpu=not torch.cuda.is_available()).device


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def sum_across_processes(array: np.ndarray) -> np.ndarray:
    """Element-wise sum of ``array`` over all processes (every process gets the result).

    Used to merge results where each process filled its own rows and left zeros elsewhere:
    ``x + 0 = x`` exactly, also for ``-inf``, so the merge adds no rounding.
    """
    if not is_distributed():
        return array
    tensor = torch.from_numpy(np.ascontiguousarray(array)).to(_collective_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.cpu().numpy().astype(array.dtype, copy=False)


def any_across_processes(flag: bool | torch.Tensor) -> bool:
    """True if ``flag`` is true in any process (a collective: every process must call it)."""
    if not is_distributed():
        return bool(flag)
    tensor = torch.as_tensor(flag, dtype=torch.int32).reshape(1).to(_collective_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def average_gradients(params: list[torch.Tensor]) -> None:
    """Average the ``.grad`` of parameters the data-parallel wrapper does not manage (BLoB's
    variance parameters) over all processes, as DDP does for the model's (a collective)."""
    if not is_distributed():
        return
    world = world_size()
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        p.grad.div_(world)


# ----------------------------------------------------------------- sharded parameters
def clean_name(name: str) -> str:
    """A parameter name without the segments FSDP, activation checkpointing and
    ``torch.compile`` insert."""
    for segment in _WRAPPER_SEGMENTS:
        name = name.replace(segment, "")
    return name


def unwrap(root: nn.Module) -> nn.Module:
    """The module inside DDP or a DeepSpeed engine (others are returned as they are)."""
    while isinstance(root, nn.parallel.DistributedDataParallel) or type(root).__name__ == "DeepSpeedEngine":
        root = root.module
    return root


def _resolve(root: nn.Module, names: list[str]) -> list[torch.Tensor]:
    current = {clean_name(n): p for n, p in unwrap(root).named_parameters()}
    missing = [n for n in names if n not in current]
    if missing:
        raise RuntimeError(
            f"the wrapped model no longer exposes tracked parameter {missing[0]!r} "
            f"({len(missing)} of {len(names)} missing); with FSDP set use_orig_params=True"
        )
    return [current[n] for n in names]


def _is_dtensor(p: torch.Tensor) -> bool:
    return isinstance(p, DTensor)


def _fsdp1_modules(root: nn.Module) -> list[nn.Module]:
    return [m for m in root.modules() if isinstance(m, FullyShardedDataParallel)]


def sharding_kind(root: nn.Module, names: list[str]) -> str:
    """``"fsdp2"`` (DTensor parameters), ``"zero3"`` (DeepSpeed-partitioned), ``"fsdp1"``
    (inside ``FullyShardedDataParallel``) or ``"none"`` (whole on every process: single
    process, DDP, ZeRO-1/2)."""
    root = unwrap(root)
    params = _resolve(root, names)
    if any(_is_dtensor(p) for p in params):
        return "fsdp2"
    if any(hasattr(p, "ds_id") for p in params):
        return "zero3"
    if _fsdp1_modules(root):
        return "fsdp1"
    return "none"


def parameter_gather(root: nn.Module, names: list[str], shapes: list[tuple[int, ...]]):
    """A :class:`~swag_lora.bayes.posterior.ParameterGather` for the parameters ``names`` (full
    shapes ``shapes``) of ``root`` as sharded now, or ``None`` when they are whole on every
    process.

    ``names`` are the tracked names of the unwrapped model (``SwagPosterior.names`` and
    ``.shapes``); wrapper segments in ``root``'s names are ignored. Install the result with ``SwagPosterior.set_gather``. Only the
    tracked parameters are gathered (FSDP v1: one wrapped unit at a time), never the whole
    model at once.
    """
    root = unwrap(root)
    kind = sharding_kind(root, names)
    params = _resolve(root, names)
    if kind == "fsdp2":
        return _DTensorGather(params)
    if kind == "zero3":
        return _ZeroGather(params)
    if kind == "fsdp1":
        return _Fsdp1Gather(root, params, shapes)
    return None


class _Fsdp1Gather:
    """FSDP v1 (``use_orig_params=True``). Inside ``summon_full_params(unit, recurse=False)``
    the original parameters of that unit hold their full values; units are visited one at a
    time, so at most one unit (a decoder layer) is unsharded at once. Writes go back to the
    shards on leaving each unit."""

    def __init__(self, root: nn.Module, params: list[torch.Tensor], shapes: list[tuple[int, ...]]):
        self.units = _fsdp1_modules(root)
        self.params = params
        self.full_shapes = [tuple(s) for s in shapes]

    def _visit(self, writeback: bool, visit) -> None:
        done = [False] * len(self.params)
        for unit in self.units:  # every process visits every unit, in the same order
            with FullyShardedDataParallel.summon_full_params(unit, recurse=False, writeback=writeback):
                for i, p in enumerate(self.params):
                    if not done[i] and tuple(p.shape) == self.full_shapes[i]:
                        visit(i, p)
                        done[i] = True
        if not all(done):
            missing = done.index(False)
            raise RuntimeError(f"tracked parameter #{missing} was not found whole in any FSDP unit")

    def read(self) -> list[torch.Tensor]:
        out: list[torch.Tensor | None] = [None] * len(self.params)
        self._visit(False, lambda i, p: out.__setitem__(i, p.detach().clone()))
        return out

    def write(self, tensors: list[torch.Tensor]) -> None:
        def copy(i, p):
            with torch.no_grad():
                p.data.copy_(tensors[i])

        self._visit(True, copy)


class _DTensorGather:
    """FSDP v2 (``fully_shard``): parameters are DTensors; each is gathered on its own with
    ``full_tensor`` and written back by redistributing with the same placements."""

    def __init__(self, params: list[torch.Tensor]):
        self.params = params

    def read(self) -> list[torch.Tensor]:
        return [p.full_tensor() if _is_dtensor(p) else p.detach() for p in self.params]

    @torch.no_grad()
    def write(self, tensors: list[torch.Tensor]) -> None:
        for p, tensor in zip(self.params, tensors):
            if _is_dtensor(p):
                tensor = tensor.to(device=p.device, dtype=p.dtype)
                p.copy_(distribute_tensor(tensor, p.device_mesh, p.placements))
            else:
                p.data.copy_(tensor)


class _ZeroGather:
    """DeepSpeed ZeRO-3: the tracked parameters are whole inside ``GatheredParameters``
    (only they are gathered); on writing, rank 0's values are partitioned back (every rank
    writes the same values)."""

    def __init__(self, params: list[torch.Tensor]):
        self.params = params

    def read(self) -> list[torch.Tensor]:
        import deepspeed  # optional: only under DeepSpeed ZeRO-3, where it is installed

        with deepspeed.zero.GatheredParameters(self.params, modifier_rank=None):
            return [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def write(self, tensors: list[torch.Tensor]) -> None:
        import deepspeed  # optional: only under DeepSpeed ZeRO-3, where it is installed

        with deepspeed.zero.GatheredParameters(self.params, modifier_rank=0):
            for p, tensor in zip(self.params, tensors):
                p.data.copy_(tensor)
