"""The generation path end to end on a tiny model: `swag-lora train --objective generation`
(run directory, checkpoints, exact resume), `swag-lora generate` from a file and from standard
input, every method through the Python API, and the multiple-choice commands refusing the run."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from swag_lora.files import read_json
from swag_lora.generation import Generator, generate
from swag_lora.runs.config import RunError
from tests.test_cli import swag_lora

PROMPTS = [
    {"id": "p1", "question": "What do plants need to make food?", "choices": ["sunlight", "sand"],
     "answers": ["sunlight"]},
    {"id": "p2", "prompt": "Question: What is frozen water called?\nAnswer:", "answers": ["ice"]},
    {"id": "p3", "prompt": "Question: Which organ pumps blood?\nAnswer:"},
]


def train_args(model_dir, data_dir, out, seed=0, *extra):
    return ["train", "--objective", "generation", "--model_name_or_path", model_dir, "--task", "obqa",
            "--data_dir", data_dir, "--train_limit", 16, "--validation_limit", 8, "--num_train_epochs", 2,
            "--per_device_train_batch_size", 4, "--swag_start_epoch", 1, "--swag_collect_every_steps", 1,
            "--swag_max_rank", 3, "--learning_rate", 0.01, "--lora_dropout", 0.1, "--use_cpu", "true",
            "--disable_tqdm", "true", "--seed", seed, "--output_dir", out, *extra]


@pytest.fixture(scope="module")
def gen_runs(tmp_path_factory, tiny_model_dir, data_dir):
    root = tmp_path_factory.mktemp("gen-runs")
    runs = [root / "run0", root / "run1"]
    for seed, run in enumerate(runs):
        swag_lora(*train_args(tiny_model_dir, data_dir, run, seed))
    return runs


def test_train_writes_a_generation_run(gen_runs):
    run = gen_runs[0]
    config = read_json(run / "run_config.json")
    assert config["model"]["objective"] == "generation" and config["n_slots"] == 0
    assert config["data"]["prompt_form"] == "choices" and config["splits"]["train"]["form"] == "choices"
    assert config["map_selection"]["rule"] == "best validation NLL" and "eval_loss" in config["map_selection"]
    assert config["swag_collected_at_steps"] == [5, 6, 7, 8]
    assert {"map", "swa", "swag_posterior.safetensors", "checkpoint-4", "checkpoint-8"} <= {p.name for p in run.iterdir()}
    assert {"swag_checkpoint.json", "swag_trainer_state.safetensors"} <= {p.name for p in (run / "checkpoint-4").iterdir()}
    assert [e["step"] for e in read_json(run / "train_log.json") if "eval_loss" in e] == [4, 8]


def test_a_resumed_generation_run_ends_as_the_uninterrupted_one(gen_runs, tiny_model_dir, data_dir, tmp_path):
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(gen_runs[0] / "checkpoint-4", resumed / "checkpoint-4")
    swag_lora(*train_args(tiny_model_dir, data_dir, resumed, 0, "--resume_from_checkpoint", "true"))
    for name in ("swag_posterior.safetensors", "map/adapter_model.safetensors"):
        got, want = load_file(resumed / name), load_file(gen_runs[0] / name)
        for key in want:
            torch.testing.assert_close(got[key], want[key], rtol=0, atol=0)
    assert read_json(resumed / "run_config.json")["map_selection"] == read_json(gen_runs[0] / "run_config.json")[
        "map_selection"]


def test_generate_from_a_file_and_from_standard_input(gen_runs, tmp_path):
    inputs = tmp_path / "prompts.jsonl"
    inputs.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    out, summary = tmp_path / "answers.jsonl", tmp_path / "summary.json"
    proc = swag_lora("generate", gen_runs[0], "--input", inputs, "--output", out, "--summary", summary,
                     "--n_samples", 3, "--max_new_tokens", 4)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [a["id"] for a in lines] == ["p1", "p2", "p3"]
    first = lines[0]
    assert first["mode"] == "ensemble" and first["prompt"].startswith("Question: What do plants")
    assert set(first["measures"]) >= {"sequence_log_prob", "perplexity", "total_mean", "aleatoric_mean",
                                      "epistemic_mean", "epistemic_sum"}
    assert len(first["tokens"]["text"]) == len(first["tokens"]["epistemic"]) == first["measures"]["n_tokens"]
    assert first["references"] == ["sunlight"] and first["exact_match"] in (0.0, 1.0)
    assert "references" not in lines[2]
    written = json.loads(summary.read_text())
    assert written["members"] == 3 and written["n_inputs"] == 3 and written["quality"]["n"] == 2
    assert "3 answers, method swag (3 members), mode ensemble" in proc.stderr
    stdin = "".join(json.dumps(p) + "\n" for p in PROMPTS[1:])
    proc = swag_lora("generate", gen_runs[0], "--input", "-", "--mode", "sample", "--n_samples", 3,
                     "--max_new_tokens", 4, "--no_tokens", stdin=stdin)
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [a["id"] for a in lines] == ["p2", "p3"]
    for a in lines:
        assert a["mode"] == "sample" and len(a["samples"]) == 3 and "tokens" not in a
        assert sum(len(g["members"]) for g in a["groups"]) == 3 and a["answer"] == a["groups"][0]["answer"]
        assert a["measures"]["majority_share"] == a["groups"][0]["share"]
    bad = swag_lora("generate", gen_runs[0], "--input", "-", stdin='{"prompt": ""}\n', check=False)
    assert bad.returncode == 2 and "<stdin>, line 1: field 'prompt'" in bad.stderr


@pytest.mark.parametrize("method, runs, members", [("map", 1, 1), ("swa", 1, 1), ("swag-diag", 1, 2),
                                                   ("mc-dropout", 1, 2), ("ensemble", 2, 2), ("multiswag", 2, 4)])
def test_every_method_generates_through_the_api(gen_runs, method, runs, members):
    result = generate(gen_runs[:runs], PROMPTS, method=method, n_samples=2, max_new_tokens=3, dropout=0.3)
    assert result.summary["members"] == members and len(result.answers) == 3
    epistemic = [a.measures["epistemic_sum"] for a in result.answers]
    if members == 1:
        assert max(abs(e) for e in epistemic) < 1e-9
    else:
        assert max(epistemic) > 0


def test_the_multiple_choice_commands_refuse_a_generation_run(gen_runs):
    proc = swag_lora("evaluate", gen_runs[0], "--methods", "map", check=False)
    assert proc.returncode == 2 and "--objective generation" in proc.stderr and "swag-lora generate" in proc.stderr
    from swag_lora import Predictor

    with pytest.raises(RunError, match="swag-lora generate"):
        Predictor(gen_runs[0], method="map")
    with pytest.raises(Exception, match="cannot generate"):
        Generator(gen_runs[0], method="laplace")
