"""Any GGUF model as a plain safetensors folder, converted once and cached.

transformers reads a GGUF file (``from_pretrained(folder_or_repo, gguf_file=NAME)``) by
de-quantising every tensor and building the tokenizer from the file's metadata: about 30 s for
SmolLM2-135M and about 100 s for a 270M model, at every load. :func:`converted_gguf` does that
once per GGUF file and keeps a safetensors copy (model, tokenizer, config) that loads in about
a second; ``swag-lora train``, ``evaluate``, ``predict`` and the demo load a model given with
``--gguf_file`` through it.

The cache key is the GGUF file's identity on disk: its resolved path, its size and its
modification time (nanoseconds). That identifies the file without reading it (hashing a file of
hundreds of MB to several GB at every load would cost seconds to minutes, and the header alone
does not identify the weights: two fine-tunes of one model share their architecture and tokenizer
metadata); a file replaced in place has a new size or time and is converted again, never served
from the old copy. A copy of the file elsewhere is converted again (harmless). The copy lives in
``$SWAG_LORA_CACHE/gguf/<file stem>-<16 hex digits of the key's SHA-256>/`` (default
``~/.cache/swag-lora``) with ``gguf_source.json`` recording the key, and is written to a
temporary folder that is renamed into place only when complete, so a half-written copy is never
used and two processes converting at once both end with one copy. A hub repository's GGUF file
is first fetched into (or read offline from) the Hugging Face hub cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from huggingface_hub import hf_hub_download
from transformers import AutoModelForCausalLM, AutoTokenizer

from ..errors import SwagLoraError

__all__ = ["GGUF_SUBDIR", "GgufNotFoundError", "cache_root", "convert_gguf", "converted_gguf", "gguf_file_path"]

GGUF_SUBDIR = "gguf"
SOURCE_RECORD = "gguf_source.json"


class GgufNotFoundError(SwagLoraError, FileNotFoundError):
    """The GGUF file named by ``--gguf_file`` is not in the model folder or repository given."""


def cache_root() -> Path:
    """``$SWAG_LORA_CACHE`` if set, else ``~/.cache/swag-lora``."""
    return Path(os.environ.get("SWAG_LORA_CACHE", Path.home() / ".cache" / "swag-lora"))


def gguf_file_path(model_name_or_path: str, gguf_file: str) -> Path:
    """The GGUF file on disk: ``gguf_file`` inside the folder ``model_name_or_path``, or fetched
    from that hub repository into the Hugging Face cache (offline: read from it)."""
    folder = Path(model_name_or_path).expanduser()
    if folder.is_dir():
        path = folder / gguf_file
        if not path.is_file():
            found = ", ".join(sorted(p.name for p in folder.glob("*.gguf"))) or "none"
            raise GgufNotFoundError(f"no GGUF file {gguf_file!r} in {str(folder)!r} (GGUF files there: {found})")
        return path.resolve()
    try:
        return Path(hf_hub_download(model_name_or_path, gguf_file)).resolve()
    except Exception as err:  # the hub client's own errors: not found, offline, no network
        reason = " ".join(f"{type(err).__name__}: {err}".split())
        raise GgufNotFoundError(f"cannot get GGUF file {gguf_file!r} of {model_name_or_path!r}: {reason}") from err


def _key(path: Path) -> dict:
    stat = path.stat()
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def convert_gguf(gguf: Path, target: Path, record: dict | None = None, verbose: bool = True) -> Path:
    """Read the GGUF file ``gguf`` with transformers and save model and tokenizer to ``target``
    as safetensors (atomically: a temporary folder renamed into place), unless ``target`` is
    already complete. ``record`` is written beside them as ``gguf_source.json``."""
    if _complete(target):
        return target
    if verbose:
        print(f"converting {gguf.name} to a safetensors cache at {target} (once)", file=sys.stderr, flush=True)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if record is not None:
            (tmp / SOURCE_RECORD).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        if target.exists():  # another process finished first
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def converted_gguf(model_name_or_path: str, gguf_file: str, cache_dir: str | os.PathLike | None = None,
                   verbose: bool = True) -> Path:
    """A folder loadable with ``from_pretrained`` holding the model and tokenizer of the GGUF file
    ``gguf_file`` of ``model_name_or_path``: converted on first use, then read from the cache
    (``cache_dir``, default ``$SWAG_LORA_CACHE/gguf``) while the file is unchanged."""
    gguf = gguf_file_path(model_name_or_path, gguf_file)
    key = _key(gguf)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    root = Path(cache_dir) if cache_dir is not None else cache_root() / GGUF_SUBDIR
    return convert_gguf(gguf, root / f"{gguf.stem}-{digest}", record={**key, "model": model_name_or_path,
                                                                        "gguf_file": gguf_file}, verbose=verbose)
