"""Shared fixtures: the benchmark data (the full local copies, else the fixtures in tests/data),
the packaged SmolLM2 (tokenizer and weights), tiny random Llamas, ARC-Easy rows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
#: Every release file of shared/data cut to a few dozen rows (tools/cut_data.py fixtures).
FIXTURES = REPO / "tests" / "data"
FORCE_FIXTURES = "SWAG_LORA_FORCE_FIXTURES"


def shared_data_dir() -> Path | None:
    """The full benchmark data: ``$SWAG_LORA_DATA`` or the ``shared/data`` folder beside the
    checkout (None with ``SWAG_LORA_FORCE_FIXTURES=1``)."""
    if os.environ.get(FORCE_FIXTURES, "") not in ("", "0"):
        return None
    candidates = [os.environ.get("SWAG_LORA_DATA"), REPO.parent / "shared" / "data"]
    for c in candidates:
        if c and Path(c, "arc-easy").is_dir():
            return Path(c)
    return None


def benchmark_data() -> tuple[Path, bool]:
    """``(folder, is_full_data)``: the full data when present, else the fixtures."""
    found = shared_data_dir()
    return (found, True) if found is not None else (FIXTURES, False)


def fixture_rows(name: str) -> int:
    """The rows a fixture file holds (``MANIFEST.json``), e.g. ``fixture_rows("obqa/test.jsonl")``."""
    manifest = json.loads((FIXTURES / "MANIFEST.json").read_text())["files"]
    return manifest[name]["rows"]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The benchmark data root the tests read: the full local copies, else the fixtures."""
    return benchmark_data()[0]


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct as a safetensors folder (converted once from the packaged GGUF)."""
    from swag_lora.lm.smollm2 import smollm2_path

    return smollm2_path()


@pytest.fixture(scope="session")
def tokenizer(smollm2_dir):
    """SmolLM2's real tokenizer (also used with tiny random models)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def make_tiny_llama(vocab_size: int, seed: int = 0, layers: int = 2, hidden: int = 32):
    """A randomly initialised Llama built from a config: seconds to run, same code paths as a real one."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        attn_implementation="sdpa",
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def save_tiny_llama(tmp_path_factory, tokenizer, name: str, seed: int = 0) -> Path:
    """A tiny random Llama (weights from ``seed``) and SmolLM2's tokenizer saved as a model
    folder ``<a new temporary folder named name>/tiny`` (for runs by path)."""
    folder = tmp_path_factory.mktemp(name) / "tiny"
    make_tiny_llama(len(tokenizer), seed=seed).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, tokenizer):
    """A tiny random Llama saved with SmolLM2's tokenizer, as a model folder (one per test module)."""
    return save_tiny_llama(tmp_path_factory, tokenizer, "tiny-llama")


@pytest.fixture
def tiny_llama(tokenizer):
    return make_tiny_llama(len(tokenizer))


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, tokenizer):
    """A tiny random Llama with SmolLM2's tokenizer saved as a model folder (read-only: shared
    by the whole session; :func:`tiny_model_dir` gives each module its own)."""
    return save_tiny_llama(tmp_path_factory, tokenizer, "tiny-llama-dir")


def randomise_lora(model, seed: int = 0, std: float = 0.05):
    """LoRA B starts at zero; give every trainable tensor random values so LoRA really acts."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=gen) * std)


@pytest.fixture(scope="session")
def arc_train_rows(data_dir):
    from swag_lora.tasks import load_task

    return list(load_task("arc-easy", "train", data_dir=data_dir, limit=64))
