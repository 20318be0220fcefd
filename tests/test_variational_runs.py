"""BLoB, IVON and TFB end to end on a tiny Llama: training writes the posterior into the run,
``load_run`` reads it, the methods evaluate through the one protocol with seeded members, a run
refuses the methods it cannot provide, and a resumed BLoB or IVON run ends where an
uninterrupted one does."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from swag_lora.bayes.lora import lora_factors
from swag_lora.bayes.registry import MethodUnavailableError, build_method
from swag_lora.bayes.sampling import SamplingOptions
from swag_lora.evaluation.harness import evaluate_run, make_context
from tests.conftest import save_tiny_llama


def train(root, model_dir, data_dir, method: str, name: str | None = None, **training):
    from transformers import TrainingArguments

    from swag_lora.runs.arguments import (
        BayesArguments,
        DataArguments,
        LoraArguments,
        ModelArguments,
        SwagArguments,
    )
    from swag_lora.runs.train import train_run

    args = dict(output_dir=str(root / (name or method)), learning_rate=3e-2 if method == "ivon" else 1e-2,
                num_train_epochs=2, per_device_train_batch_size=8, eval_strategy="epoch", save_strategy="no",
                report_to=[], use_cpu=True, remove_unused_columns=False, seed=0, disable_tqdm=True, logging_steps=100,
                dataloader_pin_memory=False)
    args.update(training)
    return train_run(
        ModelArguments(model_name_or_path=str(model_dir)),
        DataArguments(task="arc-easy", data_dir=str(data_dir), train_limit=24, validation_limit=12),
        LoraArguments(lora_dropout=0.0),
        SwagArguments(swag_start_epoch=1, swag_collect_every_steps=1, swag_max_rank=3),
        TrainingArguments(**args),
        BayesArguments(bayes_method=method, blob_init_std=0.2, blob_kl_gamma=None),
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tokenizer):
    return save_tiny_llama(tmp_path_factory, tokenizer, "variational")


class Runs(dict):
    """Tiny runs trained on first use, by bayes_method (IVON's needs ivon-opt)."""

    def __init__(self, model_dir, data_dir):
        super().__init__()
        self.model_dir, self.data_dir = model_dir, data_dir

    def __missing__(self, method):
        from swag_lora.runs.load import load_run

        if method == "ivon":
            pytest.importorskip("ivon")
        self[method] = load_run(train(self.model_dir.parent, self.model_dir, self.data_dir, method))
        return self[method]


@pytest.fixture(scope="module")
def runs(model_dir, data_dir):
    return Runs(model_dir, data_dir)


@pytest.fixture(scope="module")
def test_data(runs, data_dir):
    from swag_lora.evaluation.data import EvalSpec, prepare_data

    return prepare_data(runs["swag"], EvalSpec("arc-easy", "test", limit=10, data_dir=str(data_dir)))


def log_probs(run, name, data, **sampling):
    ctx = make_context([run], sampling=SamplingOptions(**sampling))
    return ctx.predict(build_method(name, ctx), data)


def test_blob_run_holds_a_gaussian_over_the_a_matrices_only(runs):
    run = runs["blob"]
    q = run.variational
    assert run.trained_with == "blob" and q.method == "blob" and not (run.path / "swa").exists()
    config = run.config
    assert config.bayes.bayes_method == "blob" and config.variational["kl_cycle_steps"] == 3  # one epoch per cycle
    a_entries = torch.zeros(q.num_parameters, dtype=torch.bool)
    for f in lora_factors(run.model, run.posterior.view):
        a_entries[f.a_slice] = True
    assert bool((q.std[a_entries] > 0).all()) and float(q.std[~a_entries].abs().max()) == 0.0
    # σ = G² started in [ε²/2, ε²] = [0.02, 0.04] and was trained by the NLL and the KL step
    assert config.variational["sigma_mean"] != pytest.approx(0.03, abs=1e-6)


def test_blob_members_are_seeded_draws_around_the_mean(runs, test_data):
    run = runs["blob"]
    mean_only = log_probs(run, "blob-mean", test_data)
    draws = log_probs(run, "blob", test_data, n_samples=3, seed=5)
    assert mean_only.shape[1] == 1 and draws.shape[1] == 3
    assert not np.allclose(draws[:, 0], draws[:, 1])
    np.testing.assert_array_equal(draws, log_probs(run, "blob", test_data, n_samples=3, seed=5))
    assert not np.array_equal(draws, log_probs(run, "blob", test_data, n_samples=3, seed=6))
    np.testing.assert_array_equal(draws[:, :2], log_probs(run, "blob", test_data, n_samples=2, seed=5))  # nested
    from swag_lora.prediction.predictor import Predictor

    assert Predictor(run, n_samples=2).settings["method"] == "blob"  # predict's default: the run's own posterior
    # members are whole weight draws: writing the mean back gives the mean-only predictive
    with run.posterior.written(run.variational.mean):
        np.testing.assert_allclose(mean_only, log_probs(run, "map", test_data), atol=1e-6)


def test_ivon_run_holds_the_optimizers_gaussian(runs, test_data):
    run = runs["ivon"]
    q = run.variational
    assert q.method == "ivon" and q.settings["ess"] == 24.0  # the training-set size
    assert q.settings["hess_init"] == pytest.approx(1e3 / 24)
    expected = (q.settings["ess"] * (q.extra["hess"] + q.settings["weight_decay"])).rsqrt()
    torch.testing.assert_close(q.std.cpu(), expected)
    assert run.config.variational["ivon_steps"] == 6
    draws = log_probs(run, "ivon", test_data, n_samples=2)
    assert draws.shape[1] == 2 and np.isfinite(draws).all()
    assert log_probs(run, "ivon-mean", test_data).shape[1] == 1


def test_tfb_turns_the_map_adapter_into_a_posterior_within_the_tolerance(runs, test_data):
    run = runs["swag"]
    ctx = make_context([run], sampling=SamplingOptions(n_samples=3))
    method = build_method("tfb", ctx)
    s = method.settings
    assert s["metric"] == "accuracy" and s["threshold"] == 0.01 and s["n_validation"] == 12
    tried = {float(k): v for k, v in s["change_by_sigma"].items()}
    assert tried[round(s["sigma"], 6) if s["sigma"] else 0.015] <= 0.01 or s["sigma"] == 0.0
    assert all(c > 0.01 for sigma, c in tried.items() if sigma > s["sigma"])
    # a σ far below the tolerance: TFB keeps the MAP's predictions
    from swag_lora.bayes.tfb import TfbOptions

    tiny = make_context([run], sampling=SamplingOptions(n_samples=2), tfb=TfbOptions(max_sigma=1e-7))
    method = build_method("tfb", tiny)
    assert method.settings["at_max_sigma"] and method.settings["sigma"] == 1e-7
    lp = tiny.predict(method, test_data)
    np.testing.assert_allclose(lp[:, 0], log_probs(run, "map", test_data)[:, 0], atol=1e-4)


def test_runs_refuse_the_methods_they_cannot_provide(runs, data_dir, tmp_path):
    from swag_lora.cli import main
    from swag_lora.evaluation.data import EvalSpec

    with pytest.raises(MethodUnavailableError, match="method blob needs a run trained with --bayes_method blob"):
        build_method("blob", make_context([runs["swag"]]))
    with pytest.raises(MethodUnavailableError, match="method swag needs .* was trained with --bayes_method ivon"):
        evaluate_run(runs["ivon"], EvalSpec("arc-easy", "test", limit=4, data_dir=str(data_dir)), ["map", "swag"],
                     output_root=tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything was evaluated
    assert build_method("tfb", make_context([runs["blob"]], sampling=SamplingOptions(n_samples=2)))  # TFB: any run
    code = main(["evaluate", str(runs["swag"].path), "--methods", "map", "blob", "--limit", "4"])
    assert code == 2
    # without --methods, a BLoB run evaluates MAP and its own posterior
    out = tmp_path / "default"
    assert main(["evaluate", str(runs["blob"].path), "--limit", "4", "--n_samples", "2", "--data_dir", str(data_dir),
                 "--output_dir", str(out), "--no_progress"]) == 0
    assert sorted(p.name for p in (out / "arc-easy" / "test").iterdir()) == ["blob", "blob-mean", "map"]


@pytest.mark.parametrize("method", ["blob", "ivon"])
def test_resumed_run_ends_with_the_uninterrupted_posterior(method, model_dir, data_dir, tmp_path):
    from swag_lora.bayes.variational import DiagonalGaussian

    if method == "ivon":
        pytest.importorskip("ivon")

    whole = train(tmp_path, model_dir, data_dir, method, "whole", save_strategy="steps", save_steps=2,
                  save_total_limit=None)
    resumed_dir = tmp_path / "resumed"
    resumed_dir.mkdir()
    shutil.copytree(whole / "checkpoint-4", resumed_dir / "checkpoint-4")  # as if killed after step 4
    resumed = train(tmp_path, model_dir, data_dir, method, "resumed", save_strategy="steps", save_steps=2,
                    save_total_limit=None, resume_from_checkpoint=True)
    a = DiagonalGaussian.load(whole / "variational_posterior.safetensors")
    b = DiagonalGaussian.load(resumed / "variational_posterior.safetensors")
    torch.testing.assert_close(b.mean, a.mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b.std, a.std, rtol=1e-5, atol=1e-7)


def test_ivon_refuses_gradient_accumulation(model_dir, data_dir, tmp_path):
    from swag_lora.errors import InvalidSettingError

    pytest.importorskip("ivon")
    with pytest.raises(InvalidSettingError, match="use gradient_accumulation_steps 1"):
        train(tmp_path, model_dir, data_dir, "ivon", gradient_accumulation_steps=2)
