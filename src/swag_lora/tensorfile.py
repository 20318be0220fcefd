"""safetensors files that carry a checksum of their tensor data, written atomically.

Every tensor file swag-lora writes (the posterior, adapters, the answer head, the SWAG
trainer state) stores, in its metadata under :data:`CHECKSUM_KEY`, a SHA-256 over its tensors
(name, dtype, shape and bytes, in name order). Reading verifies it, so a file damaged since it
was written (a flipped byte keeps the size and often still parses) is refused with
:class:`ChecksumMismatchError` instead of being used. Files without a checksum (written by
other tools, or before checksums existed) are read as they are.
"""

from __future__ import annotations

import hashlib
import os

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .errors import SwagLoraError
from .files import atomic_write

__all__ = ["CHECKSUM_KEY", "ChecksumMismatchError", "add_checksum", "load_checked", "save_checked",
           "tensor_digest"]

CHECKSUM_KEY = "swag_lora_sha256"


class ChecksumMismatchError(SwagLoraError, ValueError):
    """A file's tensor data no longer matches the checksum written with it."""


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the tensors' names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_checked(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None):
    """Write ``tensors`` (contiguous CPU copies) with ``metadata`` and their checksum, atomically."""
    cpu = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = {**(metadata or {}), CHECKSUM_KEY: tensor_digest(cpu)}
    atomic_write(path, lambda tmp: save_file(cpu, tmp, metadata=meta))


def add_checksum(path: str | os.PathLike) -> None:
    """Rewrite a safetensors file written by another library (e.g. PEFT's adapter) with the
    checksum of its tensors added to its metadata."""
    tensors, metadata = _read(os.fspath(path))
    save_checked(path, tensors, metadata)


def _read(path: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(path, framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    return tensors, metadata


def load_checked(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of ``path``, after verifying the checksum when it has one.

    Raises :class:`ChecksumMismatchError` for damaged data; a file that does not parse raises
    safetensors' own error (callers name the file and the cause)."""
    path = os.fspath(path)
    tensors, metadata = _read(path)
    expected = metadata.get(CHECKSUM_KEY)
    if expected is not None and tensor_digest(tensors) != expected:
        raise ChecksumMismatchError(
            f"{path} is damaged: its tensor data no longer matches the checksum written with it (changed on disk "
            "since it was saved); restore the file from a copy, or train the run again"
        )
    return tensors, metadata

