"""Scale out and never lose work, end to end on a tiny model (subprocesses, as a user runs them):

* two processes (torchrun, gloo) train to the posterior of one process with the same global
  batch and data order, and evaluate to the same log-probabilities;
* a run killed by SIGKILL while writing a checkpoint in the SWAG phase resumes from the newest
  complete checkpoint and ends with the posterior of an uninterrupted run.

All runs: 32 ARC-Easy questions, 3 epochs of 4 steps, SWAG from step 4 collecting every step
(8 collections, so the K = 5 deviation buffer wraps), a checkpoint every 2 steps (at most 2
kept), LoRA dropout 0 so that no process draws different dropout masks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from swag_lora.training.checkpoints import incomplete_reason, list_checkpoints
from tests.conftest import make_tiny_llama

WORKERS = Path(__file__).parent / "workers"


def run(*args, check=True):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("SWAG_LORA_DEBUG", None)
    proc = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=env, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-4000:]}")
    return proc


def cli(*args, processes: int = 1, check=True):
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"] if processes > 1 else []
    return run(*launcher, "-m", "swag_lora.cli", *args, check=check)


@pytest.fixture(scope="module")
def train_args(tmp_path_factory, tokenizer, data_dir):
    folder = tmp_path_factory.mktemp("tiny-llama")
    make_tiny_llama(len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    config = folder.parent / "scale_out.yaml"
    config.write_text(
        f"model_name_or_path: {folder}\ntask: arc-easy\ndata_dir: {data_dir}\ntrain_limit: 32\nvalidation_limit: 16\n"
        "num_train_epochs: 3\nswag_start_epoch: 1\nswag_collect_every_steps: 1\nlearning_rate: 0.01\n"
        "lora_dropout: 0.0\nuse_cpu: true\ndisable_tqdm: true\nsave_strategy: steps\nsave_steps: 2\n"
        "save_total_limit: 2\nseed: 0\n"
    )
    return [config]


@pytest.fixture(scope="module")
def reference_run(train_args, tmp_path_factory):
    """One process, batch 8, never interrupted."""
    out = tmp_path_factory.mktemp("reference") / "run"
    cli("train", *train_args, "--per_device_train_batch_size", 8, "--output_dir", out)
    return out


def posterior_tensors(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "swag_posterior.safetensors")


def run_config(run_dir: Path) -> dict:
    return json.loads((run_dir / "run_config.json").read_text())


def assert_same_run(run_dir: Path, reference: Path, tol: float) -> None:
    """Same posterior, same MAP and SWA adapters, same collection steps and MAP choice."""
    got, want = posterior_tensors(run_dir), posterior_tensors(reference)
    for key in ("mean", "m2", "deviations"):
        torch.testing.assert_close(got[key], want[key], rtol=tol, atol=tol, msg=lambda m, k=key: f"{k}: {m}")
    for adapter in ("map", "swa"):
        got_a = load_file(run_dir / adapter / "adapter_model.safetensors")
        want_a = load_file(reference / adapter / "adapter_model.safetensors")
        assert got_a.keys() == want_a.keys()
        for key in want_a:
            torch.testing.assert_close(got_a[key], want_a[key], rtol=tol, atol=tol)
    got_c, want_c = run_config(run_dir), run_config(reference)
    assert got_c["swag_collected_at_steps"] == want_c["swag_collected_at_steps"] == list(range(5, 13))
    assert got_c["map_selection"]["step"] == want_c["map_selection"]["step"]
    assert got_c["map_selection"]["eval_nll"] == pytest.approx(want_c["map_selection"]["eval_nll"], rel=tol)


def test_two_processes_train_the_single_process_posterior(train_args, reference_run, tmp_path):
    out = tmp_path / "ddp"
    cli("train", *train_args, "--per_device_train_batch_size", 4, "--output_dir", out, processes=2)
    assert run_config(out)["world_size"] == 2
    assert_same_run(out, reference_run, tol=1e-5)
    # the main process wrote complete checkpoints, each with its posterior
    kept = list_checkpoints(out)
    assert [step for step, _ in kept] == [10, 12]
    assert all(incomplete_reason(path) is None for _, path in kept)
    assert all((Path(path) / "swag_posterior.safetensors").is_file() for _, path in kept)


def test_two_processes_evaluate_like_one(reference_run, data_dir, tmp_path):
    args = ["evaluate", reference_run, "--methods", "map", "swag", "--n_samples", 3, "--limit", 21,
            "--batch_size", 4, "--data_dir", data_dir, "--no_progress"]
    cli(*args, "--output_dir", tmp_path / "one")
    proc = cli(*args, "--output_dir", tmp_path / "two", processes=2)
    assert proc.stdout.count("| swag |") == 1  # only the main process prints the table
    for method in ("map", "swag"):
        one = tmp_path / "one" / "arc-easy" / "test" / method
        two = tmp_path / "two" / "arc-easy" / "test" / method
        log_probs = np.load(two / "log_probs.npy")
        assert log_probs.shape == (21, 3 if method == "swag" else 1, 4)
        np.testing.assert_array_equal(log_probs, np.load(one / "log_probs.npy"))
        np.testing.assert_array_equal(np.load(two / "labels.npy"), np.load(one / "labels.npy"))
        assert json.loads((two / "ids.json").read_text()) == json.loads((one / "ids.json").read_text())
        m1, m2 = json.loads((one / "metrics.json").read_text()), json.loads((two / "metrics.json").read_text())
        for key in ("acc", "nll", "ece", "brier", "mutual_information"):
            assert m2[key] == m1[key], key


def test_killed_during_swag_phase_then_resumed_equals_uninterrupted(train_args, reference_run, tmp_path):
    out = tmp_path / "killed"
    proc = run(WORKERS / "killed_train.py", 10, *train_args, "--per_device_train_batch_size", 8, "--output_dir", out,
               check=False)
    assert proc.returncode == -9, proc.stderr[-3000:]
    # killed while writing checkpoint-10's posterior (SWAG phase: 6 collections so far)
    assert not (out / "run_config.json").exists()
    steps = {step: incomplete_reason(path) for step, path in list_checkpoints(out)}
    assert set(steps) == {6, 8, 10}  # rotation waits for a complete checkpoint
    assert steps[6] is None and steps[8] is None
    assert "cut off" in steps[10]
    assert (out / "checkpoint-10" / "swag_posterior.safetensors").is_file()  # truncated, never loaded
    assert (out / "checkpoint-10" / "trainer_state.json").is_file()  # what get_last_checkpoint would pick

    resumed = cli("train", *train_args, "--per_device_train_batch_size", 8, "--output_dir", out,
                  "--resume_from_checkpoint", "true")
    assert run_config(out)["resumed_from"] == str(out / "checkpoint-8")
    # it says which checkpoint it used and which newer one it passed over, and why
    assert f"resuming from {out / 'checkpoint-8'}; skipped the newer, incomplete checkpoint-10 (no " \
           "swag_checkpoint.json: it was cut off while being written" in resumed.stderr
    assert_same_run(out, reference_run, tol=1e-6)
    assert incomplete_reason(out / "checkpoint-10") is None  # rewritten, complete this time
