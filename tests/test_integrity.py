"""Never silently wrong: damaged files and another base model of the same shape are refused."""

from __future__ import annotations

import shutil
import warnings

import pytest
import torch
from transformers import TrainingArguments

from swag_lora import SwagPosterior
from swag_lora.bayes.posterior import POSTERIOR_FILE, PosteriorFileError
from swag_lora.lm.fingerprint import BaseModelMismatchError, base_model_fingerprint
from swag_lora.runs.arguments import (
    TRAINING_DEFAULTS,
    DataArguments,
    LoraArguments,
    ModelArguments,
    SwagArguments,
)
from swag_lora.runs.load import load_run
from swag_lora.runs.train import train_run
from swag_lora.tensorfile import ChecksumMismatchError
from tests.conftest import make_tiny_llama, save_tiny_llama


def flip_bytes(path, count: int = 200) -> None:
    """Overwrite ``count`` bytes near the end of the file (tensor data) with other values, keeping its size."""
    data = bytearray(path.read_bytes())
    start = len(data) - count - 16
    data[start : start + count] = bytes((b + 97) % 256 for b in data[start : start + count])
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tokenizer, data_dir):
    model_dir = save_tiny_llama(tmp_path_factory, tokenizer, "integrity", seed=0)
    root = model_dir.parent
    args = TrainingArguments(**{**TRAINING_DEFAULTS, "output_dir": str(root / "run"), "num_train_epochs": 2,
                                "learning_rate": 1e-2, "save_strategy": "no", "use_cpu": True, "disable_tqdm": True,
                                "dataloader_pin_memory": False})
    run = train_run(ModelArguments(model_name_or_path=str(model_dir)),
                    DataArguments(task="arc-easy", data_dir=str(data_dir), train_limit=16, validation_limit=8),
                    LoraArguments(), SwagArguments(swag_start_epoch=1, swag_collect_every_steps=1), args)
    return root, model_dir, run


def test_a_posterior_with_flipped_bytes_is_refused_naming_the_file(tiny_run, tmp_path):
    _, _, run = tiny_run
    damaged = tmp_path / "run"
    shutil.copytree(run, damaged)
    size = (damaged / POSTERIOR_FILE).stat().st_size
    flip_bytes(damaged / POSTERIOR_FILE)
    assert (damaged / POSTERIOR_FILE).stat().st_size == size
    with pytest.raises(PosteriorFileError, match=f"{damaged / POSTERIOR_FILE} is damaged: its tensor data no longer "
                                                 "matches the checksum"):
        load_run(damaged)


def test_an_adapter_with_flipped_bytes_is_refused(tiny_run, tmp_path):
    _, _, run = tiny_run
    damaged = tmp_path / "run"
    shutil.copytree(run, damaged)
    flip_bytes(damaged / "map" / "adapter_model.safetensors", count=64)
    with pytest.raises(ChecksumMismatchError, match="adapter_model.safetensors is damaged"):
        load_run(damaged)


def test_an_intact_run_still_loads_and_the_posterior_round_trips(tiny_run, tmp_path):
    _, _, run = tiny_run
    loaded = load_run(run)
    again = tmp_path / "posterior.safetensors"
    loaded.posterior.save(again)
    copy = SwagPosterior.load(again, loaded.model)
    torch.testing.assert_close(copy.mean(), loaded.posterior.mean(), rtol=0, atol=0)


def test_another_base_model_of_the_same_shape_is_refused_unless_allowed(tiny_run, tokenizer, tmp_path):
    root, model_dir, run = tiny_run
    swapped = tmp_path / "model"
    shutil.copytree(model_dir, swapped)
    make_tiny_llama(len(tokenizer), seed=1).save_pretrained(swapped)  # same config, other weights
    moved = tmp_path / "run"
    shutil.copytree(run, moved)
    config = (moved / "run_config.json").read_text().replace(str(model_dir), str(swapped))
    (moved / "run_config.json").write_text(config)
    with pytest.raises(BaseModelMismatchError, match=f"made with base model '{swapped}', but the model now at "
                                                     f"'{swapped}' has other weights.*--allow_base_mismatch"):
        load_run(moved)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_run(moved, allow_base_mismatch=True)
    assert any("other weights" in str(w.message) for w in caught)
    assert loaded.posterior.n_collected > 0


def test_the_weights_digest_sees_weights_not_the_dtype(tokenizer):
    a = make_tiny_llama(len(tokenizer), seed=0)
    b = make_tiny_llama(len(tokenizer), seed=0).to(torch.bfloat16)
    c = make_tiny_llama(len(tokenizer), seed=2)
    digest = lambda m: base_model_fingerprint(m)["weights_sha256"]  # noqa: E731
    assert digest(a) == digest(b) != digest(c)
    from swag_lora.lm.loading import apply_lora

    assert digest(apply_lora(a)) == digest(make_tiny_llama(len(tokenizer), seed=0))  # LoRA is not the base


def test_weight_sample_indices_stay_inside_large_tensors():
    """49,152 × 576 values (SmolLM2's embedding): float positions rounded past the last index."""
    from swag_lora.lm.fingerprint import sample_indices

    n = 49_152 * 576
    index = sample_indices(n, 1024)
    assert index[0] == 0 and index[-1] == n - 1 and len(index) == 1024
    assert bool((index[1:] > index[:-1]).all())
    assert sample_indices(5, 1024).tolist() == [0, 1, 2, 3, 4] and sample_indices(1, 1024).tolist() == [0]

