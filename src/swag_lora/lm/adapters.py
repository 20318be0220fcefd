"""LoRA adapters on disk in PEFT's format (``adapter_config.json`` +
``adapter_model.safetensors``), plus, in letter mode, the trained answer head
(``answer_head.safetensors``).

Adapters are written from flat vectors of the tracked parameters (MAP, SWA mean) without
touching the model's weights, each file atomically, with a checksum of its tensors in its
metadata (:mod:`swag_lora.tensorfile`), and ``adapter_config.json`` last; reading one back
verifies the checksum and checks every tensor's name and shape against the model.
"""

from __future__ import annotations

import math
import os

import torch
from peft import get_peft_model_state_dict

from .. import distributed as D
from ..bayes.parameters import FlatParameterView
from ..errors import SwagLoraError
from ..files import atomic_folder_write
from ..tensorfile import add_checksum, load_checked, save_checked

__all__ = [
    "ADAPTER_FILE",
    "ANSWER_HEAD_FILE",
    "AdapterMismatchError",
    "adapter_vector",
    "load_adapter",
    "save_adapter",
    "save_adapter_vector",
]

ADAPTER_FILE = "adapter_model.safetensors"
ANSWER_HEAD_FILE = "answer_head.safetensors"


class AdapterMismatchError(SwagLoraError, ValueError):
    """A saved adapter does not fit the model (other LoRA settings or another base model)."""


def _tracked(model) -> list[tuple[str, torch.Tensor]]:
    return [(D.clean_name(n), p) for n, p in model.named_parameters() if p.requires_grad]


def _write_adapter(model, output_dir: str, tensors: dict[str, torch.Tensor]) -> None:
    """Write ``tensors`` (tracked name -> tensor) as a PEFT adapter folder (plus the answer
    head), every file atomically; ``adapter_config.json`` goes last."""
    lm_state = {name[len("lm."):]: t.detach().cpu().contiguous() for name, t in tensors.items() if name.startswith("lm.")}
    head = tensors.get("answer_head.weight")

    def write(tmp: str) -> None:
        model.lm.save_pretrained(tmp, safe_serialization=True, state_dict=lm_state)
        add_checksum(os.path.join(tmp, ADAPTER_FILE))  # verified when swag-lora reads it back
        if head is not None:
            save_checked(os.path.join(tmp, ANSWER_HEAD_FILE), {"weight": head})

    atomic_folder_write(output_dir, write, last=("adapter_config.json",))


def save_adapter(model, output_dir: str, state_dict: dict | None = None) -> None:
    """Write the LoRA adapter (PEFT format) and, in letter mode, the answer head, from the
    model's parameters or, where they are sharded, from a gathered ``state_dict``."""
    names = [name for name, _ in _tracked(model)]
    if state_dict is None:
        tensors = dict(_tracked(model))
    else:
        state_dict = {D.clean_name(k): v for k, v in state_dict.items()}
        missing = [n for n in names if n not in state_dict]
        if missing:
            raise KeyError(f"the gathered state dict lacks tracked parameter {missing[0]!r}")
        tensors = {n: state_dict[n] for n in names}
    _write_adapter(model, output_dir, tensors)


def save_adapter_vector(model, output_dir: str, view: FlatParameterView, vector: torch.Tensor) -> None:
    """Write the adapter whose tracked parameters (laid out as ``view``, e.g. a posterior's) are
    the flat ``vector`` (MAP, SWA mean), without touching the model's weights (a
    main-process-only write, also under sharding)."""
    chunks = vector.detach().cpu().split([math.prod(s) for s in view.shapes])
    tensors = {
        name: chunk.view(shape).to(dtype)
        for name, chunk, shape, dtype in zip(view.names, chunks, view.shapes, view.param_dtypes)
    }
    _write_adapter(model, output_dir, tensors)


def adapter_vector(model, folder: str, view: FlatParameterView) -> torch.Tensor:
    """The flat vector (in ``view``'s order and dtype) of the adapter saved in ``folder`` (an
    answer head it lacks keeps the model's current values); raises
    :class:`AdapterMismatchError` naming the first tensor that is missing or has another shape."""
    weights, _ = load_checked(os.path.join(folder, ADAPTER_FILE))
    head_file = os.path.join(folder, ANSWER_HEAD_FILE)
    # PEFT's own name mapping (model key -> file key), applied to index placeholders
    lm_names = [n for n in view.names if n.startswith("lm.")]
    placeholders = {n[len("lm."):]: torch.tensor(i) for i, n in enumerate(lm_names)}
    file_key = {lm_names[int(v)]: k for k, v in get_peft_model_state_dict(model.lm, state_dict=placeholders).items()}
    parts = []
    for i, (name, shape) in enumerate(zip(view.names, view.shapes)):
        if name == "answer_head.weight":
            if not os.path.isfile(head_file):  # a plain PEFT adapter: keep the head as initialised
                offset = sum(math.prod(s) for s in view.shapes[:i])
                parts.append(view.read()[offset : offset + math.prod(shape)])
                continue
            tensor, label = load_checked(head_file)[0]["weight"], ANSWER_HEAD_FILE
        else:
            key = file_key.get(name)
            if key is None or key not in weights:
                raise AdapterMismatchError(
                    f"adapter {folder} does not fit the model: no tensor for {name!r} (other LoRA target modules?)"
                )
            tensor, label = weights[key], key
        if tuple(tensor.shape) != tuple(shape):
            raise AdapterMismatchError(
                f"adapter {folder} does not fit the model: {label} has shape {list(tensor.shape)} in the file but "
                f"{list(shape)} in the model (another base model or LoRA rank?)"
            )
        parts.append(tensor.reshape(-1).to(view.dtype))
    return torch.cat(parts)


def load_adapter(model, folder: str) -> None:
    """Load adapter weights (and the answer head, if the model has one) from ``folder`` into
    ``model``; :class:`AdapterMismatchError` if they do not fit it."""
    view = FlatParameterView.of_model(model)
    view.write(adapter_vector(model, folder, view))
