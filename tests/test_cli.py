"""The command line end to end on a tiny model (subprocesses, as a user runs it)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.conftest import make_tiny_llama


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("tiny-llama")
    make_tiny_llama(len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def swag_lora(*args, cwd=None, check=True):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "TQDM_DISABLE": "1"}
    env.pop("SWAG_LORA_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "swag_lora.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_model_dir, data_dir):
    root = tmp_path_factory.mktemp("cli")
    config = root / "train.yaml"
    config.write_text(
        f"model_name_or_path: {tiny_model_dir}\ntask: arc-easy\ndata_dir: {data_dir}\ntrain_limit: 32\n"
        "validation_limit: 16\nnum_train_epochs: 2\nswag_start_epoch: 1\nswag_collect_every_steps: 1\n"
        "learning_rate: 0.01\nuse_cpu: true\ndisable_tqdm: true\n"
    )
    run = root / "run"
    # flags after the config file override it
    swag_lora("train", config, "--output_dir", run, "--swag_max_rank", 3)
    return run


def test_train_writes_a_complete_run_directory(trained_run, tiny_model_dir):
    names = {p.name for p in trained_run.iterdir()}
    assert {"map", "swa", "swag_posterior.safetensors", "run_config.json", "train_log.json"} <= names
    config = json.loads((trained_run / "run_config.json").read_text())
    assert config["swag"]["swag_max_rank"] == 3  # the flag overrode the YAML default
    assert config["data"]["train_limit"] == 32
    assert config["splits"]["train"]["size"] == 32 and config["splits"]["validation"]["size"] == 16
    assert config["swag_collected_at_steps"] == [5, 6, 7, 8]
    assert config["map_selection"]["rule"] == "best validation NLL"
    assert config["provenance"]["posterior_format_version"] == 1
    # never the base model's weights
    all_files = [p.name for p in trained_run.rglob("*")]
    assert "model.safetensors" not in all_files and "pytorch_model.bin" not in all_files
    from safetensors import safe_open

    for file in trained_run.rglob("*.safetensors"):
        with safe_open(str(file), "pt") as handle:
            keys = list(handle.keys())
        if file.name == "swag_posterior.safetensors":
            assert set(keys) == {"mean", "m2", "deviations"}
        elif file.name == "swag_trainer_state.safetensors":  # MAP candidates: trainable vectors
            assert set(keys) <= {"best.best", "swag.map_phase_end"}
        else:
            assert keys and all("lora_" in k for k in keys), (file, keys)  # adapter tensors only


def test_swa_adapter_loads_with_peft_and_equals_posterior_mean(trained_run, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from swag_lora import SwagPosterior

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    swa = PeftModel.from_pretrained(base, trained_run / "swa", is_trainable=True)
    swa_vector = torch.cat([p.detach().reshape(-1) for n, p in swa.named_parameters() if p.requires_grad])
    from swag_lora.experiment import load_run

    run = load_run(trained_run)
    torch.testing.assert_close(swa_vector, run.posterior.mean())
    assert isinstance(run.posterior, SwagPosterior) and run.posterior.n_collected == 4


def test_evaluate_then_report(trained_run, data_dir, tmp_path):
    proc = swag_lora("evaluate", trained_run, "--methods", "map", "swa", "swag", "swag-diag", "--limit", 24,
                     "--ood_tasks", "arc-challenge:test:20", "--n_samples", 3, "--data_dir", data_dir)
    assert "| swag | 1 | 3 |" in proc.stdout
    for task, split in (("arc-easy", "test"), ("arc-challenge", "test")):
        folder = trained_run / "eval" / task / split / "swag"
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["n_examples"] == (24 if task == "arc-easy" else 20) and metrics["n_members"] == 3
        assert metrics["ood"] == (task == "arc-challenge")
        log_probs = np.load(folder / "log_probs.npy")
        assert log_probs.shape[:2] == (metrics["n_examples"], 3)
        assert np.allclose(np.exp(log_probs).sum(-1), 1.0, atol=1e-5)
    report_dir = tmp_path / "report"
    swag_lora("report", trained_run, "--output_dir", report_dir)
    report = (report_dir / "report.md").read_text()
    assert "### arc-easy / test" in report and "Out-of-distribution detection" in report
    pngs = {p.name for p in report_dir.glob("*.png")}
    assert {"reliability_arc-easy_test.png", "metrics_arc-easy_test.png", "ood_roc_arc-easy_vs_arc-challenge.png"} <= pngs


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "--task", "no-such-task", "--output_dir", "{tmp}/x"], "unknown task"),
        (["train", "--task", "arc-easy", "--data_dir", "{tmp}/missing", "--data_source", "local",
          "--output_dir", "{tmp}/y"], "{tmp}/missing"),
        (["evaluate", "{tmp}"], "not a finished swag-lora run"),
        (["evaluate", "{run}", "--methods", "bogus"], "unknown method"),
        (["report", "{tmp}"], "no metrics.json"),
        (["frobnicate"], "unknown command"),
    ],
)
def test_user_errors_give_one_clear_line(args, message, tmp_path, trained_run):
    fill = lambda s: s.format(tmp=tmp_path, run=trained_run)  # noqa: E731
    proc = swag_lora(*map(fill, args), check=False)
    assert proc.returncode == 2, proc.stderr
    assert fill(message).lower() in proc.stderr.lower()
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
