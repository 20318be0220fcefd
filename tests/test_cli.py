"""The command line end to end on a tiny model (subprocesses, as a user runs it)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch


def swag_lora(*args, cwd=None, check=True, stdin=None):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "TQDM_DISABLE": "1"}
    env.pop("SWAG_LORA_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "swag_lora.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600, input=stdin)
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
    from swag_lora.runs.load import load_run

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
    again = swag_lora("evaluate", trained_run, "--methods", "map", "swa", "swag", "swag-diag", "--limit", 24,
                      "--ood_tasks", "arc-challenge:test:20", "--n_samples", 3, "--data_dir", data_dir, "--resume")
    assert again.stderr.count("(read back: written before)") == 8 and again.stdout == proc.stdout
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
        (["train", "--swag_optimizer", "sgd", "--output_dir", "{tmp}/z"], "needs its own swag_learning_rate"),
    ],
)
def test_user_errors_give_one_clear_line(args, message, tmp_path, trained_run):
    fill = lambda s: s.format(tmp=tmp_path, run=trained_run)  # noqa: E731
    proc = swag_lora(*map(fill, args), check=False)
    assert proc.returncode == 2, proc.stderr
    assert fill(message).lower() in proc.stderr.lower()
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


ALL_METHODS = ["map", "swa", "swag", "swag-diag", "swag-tuned", "temperature", "mc-dropout", "laplace", "ensemble",
               "multiswag"]


@pytest.fixture(scope="module")
def second_run(trained_run):
    run = trained_run.parent / "run-seed1"
    swag_lora("train", trained_run.parent / "train.yaml", "--output_dir", run, "--swag_max_rank", 3, "--seed", 1)
    return run


def test_evaluate_every_method_in_one_command_then_report(trained_run, second_run, data_dir, tmp_path):
    multi = tmp_path / "multi"
    proc = swag_lora(
        "evaluate", trained_run, second_run, "--methods", *ALL_METHODS, "--limit", 8,
        "--ood_tasks", "arc-challenge:test:6", "--n_samples", 2, "--scale_grid", 1, 4, "--laplace_samples", 8,
        "--sample_study", "--study_max_samples", 4, "--study_replicates", 2, "--output_dir", multi,
        "--data_dir", data_dir,
    )
    for method in ALL_METHODS:
        assert f"| {method} |" in proc.stdout, method
    for task, n in (("arc-easy", 8), ("arc-challenge", 6)):
        for method in ALL_METHODS:
            roots = [multi] if method in ("ensemble", "multiswag") else [trained_run / "eval", second_run / "eval"]
            for root in roots:
                record = json.loads((root / task / "test" / method / "metrics.json").read_text())
                assert record["n_examples"] == n and record["method"] == method
                if task == "arc-challenge":  # OOD metrics against the same run and method's in-distribution data
                    assert record["ood"] and record["ood_reference"]["task"] == "arc-easy"
                    assert record["base_rate"] == pytest.approx(6 / 14) and 0 <= record["auroc_entropy"] <= 1
                    single_member = record["n_members"] == 1
                    assert (record["auroc_mi"] is None) == single_member, method
    ensemble = json.loads((multi / "arc-easy" / "test" / "ensemble" / "metrics.json").read_text())
    assert ensemble["n_members"] == 2 and ensemble["n_runs"] == 2
    assert json.loads((multi / "arc-easy" / "test" / "multiswag" / "metrics.json").read_text())["n_members"] == 4
    temperature = json.loads((trained_run / "eval" / "arc-easy" / "test" / "temperature" / "metrics.json").read_text())
    assert temperature["temperature"] > 0 and temperature["temperature_fit"]["n_examples"] == 16
    tuned = json.loads((trained_run / "eval" / "arc-easy" / "test" / "swag-tuned" / "metrics.json").read_text())
    assert tuned["scale"] in (1.0, 4.0) and set(tuned["validation_nll_by_scale"]) == {"1", "4"}
    study = json.loads((trained_run / "eval" / "arc-easy" / "test" / "sample-study" / "sample_study.json").read_text())
    assert study["antithetic"]["s"] == [2, 4] and len(study["iid"]["nll"]) == 2
    report_dir = tmp_path / "report"
    swag_lora("report", trained_run, second_run, multi, "--output_dir", report_dir)
    report = (report_dir / "report.md").read_text()
    assert "## Sample-count study" in report and "| multiswag |" in report
    assert "| arc-easy | arc-challenge | laplace |" in report
    pngs = {p.name for p in report_dir.glob("*.png")}
    assert "sample_study_run_arc-easy_test.png" in pngs and "ood_roc_arc-easy_vs_arc-challenge.png" in pngs


def test_multi_run_methods_over_several_runs_need_an_output_dir(trained_run, second_run):
    proc = swag_lora("evaluate", trained_run, second_run, "--methods", "ensemble", check=False)
    assert proc.returncode == 2 and "--output_dir" in proc.stderr


def test_a_swag_phase_with_sgd_from_another_runs_map_adapter(trained_run, tiny_model_dir, data_dir, tmp_path):
    """The benchmark's SWAG recipe from the command line (README, Train): a second run that
    starts from the first run's MAP adapter (``--init_adapter``) and is only a SWAG phase, SGD
    with momentum at a constant rate. At rate 0 its iterates are that MAP adapter exactly."""
    from safetensors.torch import load_file

    common = ["--model_name_or_path", tiny_model_dir, "--task", "arc-easy", "--data_dir", data_dir,
              "--train_limit", 32, "--validation_limit", 16, "--init_adapter", trained_run / "map",
              "--optim", "sgd", "--optim_args", "momentum=0.9", "--lr_scheduler_type", "constant",
              "--warmup_steps", 0, "--swag_start_step", 0, "--swag_collect_every_steps", 2, "--num_train_epochs", 2,
              "--eval_strategy", "no", "--save_strategy", "no", "--logging_steps", 1, "--use_cpu", "true",
              "--disable_tqdm", "true"]
    moving, still = tmp_path / "sgd", tmp_path / "sgd-rate0"
    swag_lora("train", *common, "--learning_rate", 0.01, "--swag_learning_rate", 0.01, "--output_dir", moving)
    config = json.loads((moving / "run_config.json").read_text())
    assert config["training"]["optim"].endswith("sgd") and config["swag"]["swag_learning_rate"] == 0.01
    assert config["swag_collected_at_steps"] == [2, 4, 6, 8]  # 32 questions, batch 8: 4 steps per epoch
    rates = [e["learning_rate"] for e in json.loads((moving / "train_log.json").read_text()) if "learning_rate" in e]
    assert len(rates) == 8 and all(r == pytest.approx(0.01) for r in rates)  # constant, never decayed

    swag_lora("train", *common, "--learning_rate", 0.0, "--swag_learning_rate", 0.0, "--output_dir", still)
    start = load_file(str(trained_run / "map" / "adapter_model.safetensors"))
    swa = load_file(str(still / "swa" / "adapter_model.safetensors"))
    moved = load_file(str(moving / "swa" / "adapter_model.safetensors"))
    assert set(swa) == set(start) and all(torch.equal(swa[k], start[k]) for k in start)
    assert any(not torch.equal(moved[k], start[k]) for k in start)


def test_one_train_command_runs_the_swag_phase_on_sgd(tiny_model_dir, data_dir, tmp_path):
    """``--swag_optimizer sgd``: AdamW on the linear schedule for the first epoch, then SGD with
    momentum at the constant SWAG rate for the second, in one run; the run records both."""
    run = tmp_path / "one-command"
    proc = swag_lora("train", "--model_name_or_path", tiny_model_dir, "--task", "arc-easy", "--data_dir", data_dir,
                     "--train_limit", 32, "--validation_limit", 16, "--num_train_epochs", 2, "--learning_rate", 1e-3,
                     "--warmup_steps", 0, "--swag_start_epoch", 1, "--swag_collect_every_steps", 1,
                     "--swag_optimizer", "sgd", "--swag_learning_rate", 0.01, "--swag_momentum", 0.8,
                     "--eval_strategy", "epoch", "--save_strategy", "no", "--logging_steps", 1, "--use_cpu", "true",
                     "--disable_tqdm", "true", "--output_dir", run)
    assert "the SWAG phase runs on SGD (momentum 0.8) from step 4" in proc.stderr
    config = json.loads((run / "run_config.json").read_text())
    assert config["swag"]["swag_optimizer"] == "sgd" and config["swag"]["swag_momentum"] == 0.8
    assert config["swag_resolved"]["optimizer"] == "sgd" and config["swag_start_step"] == 4
    assert config["training"]["optim"].startswith("adamw") and config["swag_collected_at_steps"] == [5, 6, 7, 8]
    rates = [e["learning_rate"] for e in json.loads((run / "train_log.json").read_text()) if "learning_rate" in e]
    assert len(rates) == 8 and all(r <= 1e-3 for r in rates[:4]) and rates[4:] == pytest.approx([0.01] * 4)
