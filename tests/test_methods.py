"""Every baseline in one harness, on tiny trained runs: equalities between methods, fitted
settings, reuse of saved evaluations, Laplace-LoRA, antithetic and nested samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from swag_lora import metrics as M
from swag_lora.bayes.predictive import evaluate_predictive, swag_samples
from swag_lora.bayes.registry import MethodContext, build_method
from swag_lora.bayes.sampling import SamplingOptions
from swag_lora.bayes.temperature import Tempered, fit_temperature
from tests.conftest import make_tiny_llama


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, tokenizer, data_dir):
    """Two runs of a tiny Llama on ARC-Easy (seeds 0 and 1), the second attached to the first's model."""
    from transformers import TrainingArguments

    from swag_lora.runs.arguments import DataArguments, LoraArguments, ModelArguments, SwagArguments
    from swag_lora.runs.load import attach_run, load_run
    from swag_lora.runs.train import train_run

    root = tmp_path_factory.mktemp("methods")
    model_dir = root / "tiny"
    make_tiny_llama(len(tokenizer)).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    paths = []
    for seed in (0, 1):
        args = TrainingArguments(
            output_dir=str(root / f"run{seed}"), learning_rate=1e-2, num_train_epochs=2, per_device_train_batch_size=8,
            eval_strategy="epoch", save_strategy="no", report_to=[], use_cpu=True, remove_unused_columns=False,
            seed=seed, disable_tqdm=True, logging_steps=100, dataloader_pin_memory=False,
        )
        paths.append(train_run(
            ModelArguments(model_name_or_path=str(model_dir)),
            DataArguments(task="arc-easy", data_dir=str(data_dir), train_limit=24, validation_limit=12),
            LoraArguments(lora_dropout=0.1),
            SwagArguments(swag_start_epoch=1, swag_collect_every_steps=1, swag_max_rank=3),
            args,
        ))
    host = load_run(paths[0])
    return [host, attach_run(paths[1], host)]


@pytest.fixture(scope="module")
def test_data(tiny_runs, data_dir):
    from swag_lora.evaluation.data import EvalSpec, prepare_data

    return prepare_data(tiny_runs[0], EvalSpec("arc-easy", "test", limit=10, data_dir=str(data_dir)))


def predict(ctx, method, data):
    return ctx.predict(method, data)


def context(runs, **kw):
    from swag_lora.evaluation.harness import make_context

    sampling = {k: kw.pop(k) for k in ("n_samples", "scale", "seed", "antithetic") if k in kw}
    return make_context(runs, sampling=SamplingOptions(**sampling), **kw)


def samples(posterior, n_samples, scale=1.0, seed=0, antithetic=False, deviations=None):
    options = SamplingOptions(n_samples=n_samples, scale=scale, seed=seed, antithetic=antithetic)
    return swag_samples(posterior, options, deviations=deviations)


def test_attached_run_shares_the_model_and_leaves_the_host_at_its_map(tiny_runs):
    from swag_lora.runs.load import load_run

    host, other = tiny_runs
    assert other.model is host.model
    torch.testing.assert_close(host.posterior.read(), host.map_vector, rtol=0, atol=0)
    alone = load_run(other.path)
    torch.testing.assert_close(other.map_vector, alone.map_vector, rtol=0, atol=0)
    torch.testing.assert_close(other.posterior.mean(), alone.posterior.mean(), rtol=0, atol=0)
    assert not torch.equal(other.map_vector, host.map_vector)


def test_ensemble_of_one_equals_map(tiny_runs, test_data):
    ctx = context(tiny_runs[:1])
    ensemble = predict(ctx, build_method("ensemble", ctx), test_data)
    map_ = predict(ctx, build_method("map", ctx), test_data)
    assert ensemble.shape == map_.shape == (10, 1, test_data.n_slots)
    np.testing.assert_array_equal(ensemble, map_)


def test_ensemble_of_two_averages_both_maps(tiny_runs, test_data):
    ctx = context(tiny_runs)
    ensemble = predict(ctx, build_method("ensemble", ctx), test_data)
    maps = [predict(context([r]), build_method("map", context([r])), test_data) for r in tiny_runs]
    np.testing.assert_array_equal(ensemble, np.concatenate(maps, axis=1))
    assert M.mutual_information(ensemble).mean() > 0  # two different adapters disagree


def test_multiswag_of_one_run_equals_swag_with_the_same_samples(tiny_runs, test_data):
    ctx = context(tiny_runs[:1], n_samples=3, scale=2.0, seed=5)
    multiswag = predict(ctx, build_method("multiswag", ctx), test_data)
    swag = predict(ctx, build_method("swag", ctx), test_data)
    assert multiswag.shape[1] == 3
    np.testing.assert_array_equal(multiswag, swag)


def test_temperature_one_equals_map_and_the_fitted_temperature_minimises_validation_nll(tiny_runs, test_data):
    run = tiny_runs[0]
    ctx = context([run])
    map_ = build_method("map", ctx)
    _, plain = evaluate_predictive(run.model, test_data.features, test_data.collator, map_)
    _, at_one = evaluate_predictive(run.model, test_data.features, test_data.collator, Tempered(map_, 1.0, "map+ts"))
    for key in ("acc", "nll", "ece", "brier", "entropy"):
        assert at_one[key] == plain[key], key
    fitted = build_method("temperature", ctx)
    val = ctx.validation_data()
    log_p_bar = M.average_log_probs(predict(ctx, map_, val))
    nll = lambda t: M.negative_log_likelihood(M.temper(log_p_bar, t), val.labels)  # noqa: E731
    T = fitted.temperature
    assert fitted.fit["n_examples"] == 12 and T != 1.0
    assert nll(T) <= min(nll(T * 1.05), nll(T / 1.05), nll(1.0)) + 1e-9


def test_fit_temperature_recovers_a_planted_temperature():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(20000, 4)) * 3.0
    true_T = 2.5
    p = np.exp(z / true_T) / np.exp(z / true_T).sum(1, keepdims=True)
    labels = np.array([rng.choice(4, p=row) for row in p])
    log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
    fit = fit_temperature(log_p, labels)
    assert fit["temperature"] == pytest.approx(true_T, rel=0.05)
    assert fit["nll_after"] < fit["nll_before"]


def test_tempering_keeps_absent_choices_absent():
    lp = np.array([[np.log(0.7), np.log(0.2), np.log(0.1), -np.inf]])
    out = M.temper(lp, 3.0)
    assert np.isneginf(out[0, 3]) and np.exp(out[0, :3]).sum() == pytest.approx(1.0)
    assert np.exp(out[0, 0]) < 0.7  # T > 1 flattens


def test_mc_dropout_with_rate_zero_equals_map_and_active_dropout_varies_then_restores(tiny_runs, test_data):
    from swag_lora.bayes.mc_dropout import lora_dropout_slots

    run = tiny_runs[0]
    map_ = predict(context([run]), build_method("map", context([run])), test_data)
    ctx0 = context([run], n_samples=2, dropout=0.0)
    zero = predict(ctx0, build_method("mc-dropout", ctx0), test_data)
    np.testing.assert_array_equal(zero, np.repeat(map_, 2, axis=1))
    before = [d[k] for d, k in lora_dropout_slots(run.model)]
    ctx = context([run], n_samples=3, dropout=0.5, seed=1)
    method = build_method("mc-dropout", ctx)
    assert method.settings["dropout"] == 0.5
    first, again = predict(ctx, method, test_data), predict(ctx, method, test_data)
    np.testing.assert_array_equal(first, again)  # seeded per pass
    finite = np.isfinite(first)
    assert not np.allclose(first[:, 0][finite[:, 0]], first[:, 1][finite[:, 1]])  # passes differ
    after = [d[k] for d, k in lora_dropout_slots(run.model)]
    assert len(after) == len(before) and all(a is b for a, b in zip(after, before))  # the model's own layers back
    np.testing.assert_array_equal(predict(context([run]), build_method("map", context([run])), test_data), map_)
    assert build_method("mc-dropout", context([run], n_samples=1)).settings["dropout"] == pytest.approx(0.1)


def test_antithetic_pairs_average_to_the_mean_in_the_linear_part():
    from swag_lora import SwagPosterior

    torch.manual_seed(0)
    model = torch.nn.Linear(6, 3)
    posterior = SwagPosterior(model, max_rank=4)
    for _ in range(6):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.3)
        posterior.collect()
    method = samples(posterior, 8, scale=2.0, seed=3, antithetic=True)
    x = torch.randn(5, 6)
    outputs, vectors = [], []
    for enter in method.members:
        with enter() as vector:
            vectors.append(vector)
            outputs.append(model(x).detach())
    mean = posterior.mean()
    torch.testing.assert_close(torch.stack(vectors).mean(0), mean, rtol=0, atol=1e-6)
    torch.testing.assert_close(vectors[0] + vectors[1], 2 * mean, rtol=0, atol=1e-6)  # θ̄ + δ, θ̄ − δ
    with posterior.written(mean):
        at_mean = model(x).detach()
    torch.testing.assert_close(torch.stack(outputs).mean(0), at_mean, rtol=0, atol=1e-5)  # linear model: exact
    iid = samples(posterior, 8, scale=2.0, seed=3)
    assert not torch.allclose(torch.stack([e().__enter__() for e in iid.members]).mean(0), mean, atol=1e-3)
    with pytest.raises(ValueError, match="even"):
        posterior.draw_deviations(3, antithetic=True)


def test_samples_are_nested_across_sample_counts(tiny_runs):
    post = tiny_runs[0].posterior
    for antithetic in (False, True):
        short = post.draw_deviations(4, seed=2, antithetic=antithetic)
        long = post.draw_deviations(8, seed=2, antithetic=antithetic)
        for a, b in zip(short, long[:4]):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    # one δ per sample serves every scale: θ̄ + √s·δ
    delta = post.draw_deviations(1, seed=4)[0]
    method = samples(post, 1, scale=9.0, seed=4)
    with method.members[0]() as vector:
        torch.testing.assert_close(vector, post.mean() + 3.0 * delta)
    torch.testing.assert_close(post.sample(scale=9.0, generator=torch.Generator().manual_seed(4)), vector)


def test_swag_tuned_picks_the_grid_scale_with_lowest_validation_nll_from_one_set_of_draws(tiny_runs, test_data):
    run = tiny_runs[0]
    grid = (0.5, 4.0, 50.0)
    ctx = context([run], n_samples=2, seed=1, scale_grid=grid)
    tuned = build_method("swag-tuned", ctx)
    nll = {float(k): v for k, v in tuned.settings["validation_nll_by_scale"].items()}
    assert sorted(nll) == list(grid) and tuned.settings["scale"] == min(nll, key=nll.get)
    val = ctx.validation_data()
    for scale in grid:  # each grid value is the same draws at that scale
        same = samples(run.posterior, 2, scale, seed=1)
        got = M.negative_log_likelihood(M.average_log_probs(predict(ctx, same, val)), val.labels)
        assert got == pytest.approx(nll[scale], rel=1e-6)
    lp = predict(ctx, tuned, test_data)
    plain = samples(run.posterior, 2, tuned.settings["scale"], seed=1)
    np.testing.assert_array_equal(lp, predict(ctx, plain, test_data))


def test_planted_perfect_ood_score_has_auroc_and_aupr_one():
    confident = np.log(np.full((30, 3, 4), 1e-3))
    confident[:, :, 0] = np.log(1 - 3e-3)  # every member sure of choice 0: low entropy, no disagreement
    disagree = np.log(np.full((20, 3, 4), 1e-3))
    for s in range(3):
        disagree[:, s, s] = np.log(1 - 3e-3)  # members sure of different choices: high entropy and MI
    out = M.ood_detection(confident, disagree)
    assert out["auroc_entropy"] == 1.0 and out["aupr_entropy"] == 1.0
    assert out["auroc_mi"] == 1.0 and out["aupr_mi"] == 1.0
    assert out["base_rate"] == pytest.approx(20 / 50)
    swapped = M.ood_detection(disagree, confident)
    assert swapped["auroc_entropy"] == 0.0
    single = M.ood_detection(confident[:, :1], disagree[:, :1])
    assert single["auroc_mi"] is None and single["aupr_mi"] is None


def test_laplace_glm_mean_is_map_and_a_huge_prior_collapses_to_map(tiny_runs, test_data):
    import dataclasses

    from swag_lora.bayes.laplace import LaplaceOptions

    run = tiny_runs[0]
    data = dataclasses.replace(test_data, features=test_data.features[:5])  # one Jacobian per question: keep it small
    ctx = context([run], seed=0, laplace=LaplaceOptions(n_samples=6))
    laplace = build_method("laplace", ctx)
    info = laplace.settings
    assert info["n_fit_examples"] == 24 and info["n_parameters"] == run.posterior.num_parameters
    assert info["prior_method"] == "marglik" and info["prior_precision"] > 0
    map_ = predict(ctx, build_method("map", ctx), data)
    f_mu, f_var = laplace.moments(data.features, data.collator)
    present = np.isfinite(map_[:, 0])
    log_softmax = f_mu - f_mu.max(1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax).sum(1, keepdims=True))
    np.testing.assert_allclose(log_softmax[present], map_[:, 0][present], atol=1e-4)  # GLM mean = MAP logits
    assert np.all(np.linalg.eigvalsh(f_var) > -1e-6)  # a covariance
    lp = predict(ctx, laplace, data)
    assert lp.shape == (5, 6, data.n_slots)
    assert np.array_equal(np.isneginf(lp), np.repeat(np.isneginf(map_), 6, axis=1))
    assert M.mutual_information(lp).mean() > 0
    laplace.la.prior_precision = 1e12
    collapsed = predict(ctx, laplace, data)
    finite = np.isfinite(collapsed)
    np.testing.assert_allclose(collapsed[finite], np.repeat(map_, 6, axis=1)[finite], atol=1e-3)
    torch.testing.assert_close(run.posterior.read(), run.map_vector, rtol=0, atol=0)


def test_laplace_prior_chosen_on_validation_is_the_grid_minimum(tiny_runs):
    from swag_lora.bayes.laplace import LaplaceOptions

    ctx = context(tiny_runs[:1], laplace=LaplaceOptions(prior="validation", prior_grid=(1e-1, 1e2, 1e5), n_samples=4),
                  fit_limit=8)
    laplace = build_method("laplace", ctx)
    nll = {float(k): v for k, v in laplace.settings["prior_grid_validation_nll"].items()}
    assert laplace.prior_precision == pytest.approx(min(nll, key=nll.get))
    assert laplace.settings["n_fit_examples"] == 8  # --fit_limit


def test_evaluate_methods_writes_ood_metrics_and_multi_run_methods_reuse_saved_members(tiny_runs, data_dir, tmp_path):
    from swag_lora.evaluation.data import EvalSpec, prepare_data
    from swag_lora.evaluation.harness import evaluate_methods
    from swag_lora.files import read_json

    specs = [EvalSpec("arc-easy", "test", limit=8, data_dir=str(data_dir)),
             EvalSpec("arc-challenge", "test", limit=6, data_dir=str(data_dir), ood=True)]
    roots = {}
    for i, run in enumerate(tiny_runs):
        roots[str(run.path)] = tmp_path / f"single{i}"
        datas = [prepare_data(run, s) for s in specs]
        evaluate_methods(context([run], n_samples=2), datas, ["map", "swag"], roots[str(run.path)])
    ctx = context(tiny_runs, n_samples=2, saved_roots=roots)
    datas = [prepare_data(tiny_runs[0], s) for s in reversed(specs)]  # OOD given first: evaluated last
    records = evaluate_methods(ctx, datas, ["ensemble", "multiswag"], tmp_path / "multi")
    assert [r["task"] for r in records] == ["arc-easy"] * 2 + ["arc-challenge"] * 2
    ood = read_json(tmp_path / "multi" / "arc-challenge" / "test" / "multiswag" / "metrics.json")
    assert ood["ood"] and ood["n_members"] == 4 and ood["ood_reference"]["task"] == "arc-easy"
    assert ood["base_rate"] == pytest.approx(6 / 14) and 0 <= ood["auroc_entropy"] <= 1 and ood["auroc_mi"] is not None
    ens = read_json(tmp_path / "multi" / "arc-challenge" / "test" / "ensemble" / "metrics.json")
    assert ens["n_members"] == 2 and ens["run"].count(" + ") == 1
    from swag_lora.report.records import find_records, ood_records

    for entry in ood_records(find_records([tmp_path / "multi"])):  # the report recomputes the same numbers
        saved = ood if entry["method"] == "multiswag" else ens
        for key in ("auroc_entropy", "aupr_entropy", "auroc_mi", "aupr_mi", "base_rate"):
            assert entry[key] == saved[key], key
    # the saved members were reused, and they are what a fresh computation gives
    fresh = context(tiny_runs, n_samples=2)
    data = prepare_data(tiny_runs[0], specs[0])
    method = build_method("multiswag", ctx)
    reused = predict(ctx, method, data)
    assert [p.reused for p in method.parts] == [1, 1]
    computed = predict(fresh, build_method("multiswag", fresh), data)
    np.testing.assert_allclose(reused, computed, atol=1e-6)
    saved = np.load(tmp_path / "multi" / "arc-easy" / "test" / "ensemble" / "log_probs.npy")
    np.testing.assert_allclose(saved, predict(fresh, build_method("ensemble", fresh), data), atol=1e-6)


def test_sample_study_curves_are_nested_and_reuse_a_saved_swag_evaluation(tiny_runs, test_data, tmp_path):
    from swag_lora.evaluation.harness import evaluate_methods
    from swag_lora.evaluation.sample_study import run_sample_study

    run = tiny_runs[0]
    evaluate_methods(context([run], n_samples=6, seed=0), [test_data], ["swag"], tmp_path)
    study, arrays = run_sample_study(run, test_data, max_samples=5, replicates=2, seed=0, saved_root=tmp_path)
    assert study["reused"] == 1  # replicate 0's i.i.d. draws came from the saved S = 6 evaluation
    assert study["iid"]["s"] == [1, 2, 3, 4, 5] and study["antithetic"]["s"] == [2, 4]
    assert np.array(study["iid"]["nll"]).shape == (2, 5)
    full = M.summarise(arrays["iid_seed1"], test_data.labels)
    assert study["iid"]["nll"][1][-1] == pytest.approx(full["nll"]) and study["iid"]["ece"][1][-1] == pytest.approx(full["ece"])
    again = predict(context([run]), samples(run.posterior, 5, seed=0), test_data)
    np.testing.assert_allclose(arrays["iid_seed0"], again, atol=1e-6)
    anti = arrays["antithetic_seed1"]
    assert anti.shape[1] == 4


def test_unknown_and_multi_run_contexts(tiny_runs):
    with pytest.raises(ValueError, match="unknown method"):
        build_method("bogus", MethodContext(tiny_runs[:1]))
    with pytest.raises(ValueError, match="validation split"):
        build_method("temperature", MethodContext(tiny_runs[:1]))


def test_evaluate_run_keeps_its_one_dataset_signature(tiny_runs, data_dir, tmp_path):
    from swag_lora.evaluation.data import EvalSpec
    from swag_lora.evaluation.harness import evaluate_run

    spec = EvalSpec("arc-easy", "test", limit=4, data_dir=str(data_dir))
    records = evaluate_run(tiny_runs[0], spec, ["map", "swag"], SamplingOptions(n_samples=2), output_root=tmp_path,
                           progress=False)
    assert [r["method"] for r in records] == ["map", "swag"] and records[1]["n_members"] == 2
    assert (tmp_path / "arc-easy" / "test" / "swag" / "log_probs.npy").is_file()


def test_temperature_on_top_of_any_method_scales_its_averaged_predictive(tiny_runs, test_data, tmp_path):
    from swag_lora.evaluation.harness import evaluate_methods

    ctx = context(tiny_runs[:1], n_samples=2, antithetic=True)
    plain, tempered = evaluate_methods(ctx, [test_data], ["swag"], tmp_path, temperature=True)
    assert (plain["method"], tempered["method"]) == ("swag-anti", "swag-anti+ts")
    folder = tmp_path / "arc-easy" / "test"
    lp = np.load(folder / "swag-anti+ts" / "log_probs.npy")
    np.testing.assert_array_equal(lp, np.load(folder / "swag-anti" / "log_probs.npy"))  # same members
    T = tempered["temperature"]
    assert T != 1.0 and tempered["temperature_fit"]["n_examples"] == 12
    expected = M.negative_log_likelihood(M.temper(M.average_log_probs(lp), T), test_data.labels)
    assert tempered["nll"] == pytest.approx(expected)
    assert tempered["mutual_information"] == pytest.approx(plain["mutual_information"])  # the members' own


def test_attach_run_fills_defaults_of_settings_newer_than_the_run_and_refuses_real_differences(tiny_runs, tmp_path):
    """A run saved before a model setting existed (here: ``cloze_length_normalize``) still
    shares a model with a newer run that leaves the setting at its default; a LoRA rank that
    differs is refused, naming the differing group."""
    import shutil

    from swag_lora.files import read_json, write_json
    from swag_lora.runs.layout import RUN_CONFIG
    from swag_lora.runs.load import RunError, attach_run

    host = tiny_runs[0]
    old = tmp_path / "old-run"
    shutil.copytree(tiny_runs[1].path, old)
    config = read_json(old / RUN_CONFIG)
    assert config["model"].pop("cloze_length_normalize") is False
    write_json(old / RUN_CONFIG, config)
    attached = attach_run(old, host)
    assert torch.equal(attached.map_vector, tiny_runs[1].map_vector)

    config["lora"]["lora_r"] = config["lora"]["lora_r"] * 2
    write_json(old / RUN_CONFIG, config)
    with pytest.raises(RunError, match="lora settings differ"):
        attach_run(old, host)


@pytest.fixture
def member_passes(monkeypatch) -> list:
    """(method name, number of questions) of every members' pass made while the test runs."""
    import swag_lora.bayes.predictive as predictive

    calls = []
    real = predictive.member_log_probs

    def counted(model, features, collator, method, *args, **kwargs):
        calls.append((method.name, len(features)))
        return real(model, features, collator, method, *args, **kwargs)

    monkeypatch.setattr(predictive, "member_log_probs", counted)
    return calls


def test_temperature_on_top_reuses_the_members_passes(tiny_runs, test_data, tmp_path, member_passes):
    """``METHOD+ts`` rescales the log-probabilities of ``METHOD`` computed in the same call, and
    ``temperature`` tempers the ``map`` built there: each set of members runs once per dataset."""
    from swag_lora.evaluation.harness import evaluate_methods

    calls = member_passes
    ctx = context(tiny_runs[:1], n_samples=2)
    records = evaluate_methods(ctx, [test_data], ["temperature", "swag", "map"], tmp_path, temperature=True)
    assert sorted(r["method"] for r in records) == ["map", "swag", "swag+ts", "temperature"]
    on_test = sorted(name for name, n in calls if n == len(test_data.features))
    on_validation = sorted(name for name, n in calls if n != len(test_data.features))
    assert on_test == ["map", "swag"] and on_validation == ["map", "swag"]  # one pass set each
    by = {r["method"]: r for r in records}
    lp = np.load(tmp_path / "arc-easy" / "test" / "temperature" / "log_probs.npy")
    np.testing.assert_array_equal(lp, np.load(tmp_path / "arc-easy" / "test" / "map" / "log_probs.npy"))
    assert by["temperature"]["nll"] == pytest.approx(
        M.negative_log_likelihood(M.temper(M.average_log_probs(lp), by["temperature"]["temperature"]),
                                  test_data.labels))


def test_a_resumed_evaluation_reads_back_what_was_written_and_computes_only_the_rest(tiny_runs, data_dir, tmp_path,
                                                                                    member_passes):
    """``resume``: a second call over the same folder makes no forward pass (the temperatures'
    validation passes included) and returns the same records; with one evaluation lost (an
    interrupted call) only that one is computed, and comes out the same; other sampling
    settings reuse nothing."""
    import shutil

    from swag_lora.evaluation.data import EvalSpec, prepare_data, run_split
    from swag_lora.evaluation.harness import evaluate_methods

    calls = member_passes
    run = tiny_runs[0]
    datas = [prepare_data(run, EvalSpec("arc-easy", "test", limit=8, data_dir=str(data_dir))),
             run_split(run, "validation"),
             prepare_data(run, EvalSpec("arc-challenge", "test", limit=6, data_dir=str(data_dir), ood=True))]
    names = ["map", "temperature", "swag"]
    keys = ("method", "task", "split", "acc", "nll", "ece", "temperature", "n_members", "auroc_entropy")

    def evaluate(resume, n_samples=2):
        calls.clear()
        records = evaluate_methods(context([run], n_samples=n_samples), datas, names, tmp_path, temperature=True,
                                   resume=resume)
        return [{k: r.get(k) for k in keys} for r in records]

    first = evaluate(resume=False)
    assert len(first) == 12 and calls  # map, temperature, swag, swag+ts on 3 datasets
    assert evaluate(resume=True) == first and calls == []
    shutil.rmtree(tmp_path / "arc-challenge" / "test" / "swag")
    assert evaluate(resume=True) == first and calls == [("swag", 6)]
    evaluate(resume=True, n_samples=3)
    assert sorted(set(calls)) == [("map", 6), ("map", 8), ("map", 12), ("swag", 6), ("swag", 8), ("swag", 12)]


def test_a_finished_evaluation_is_found_only_when_everything_that_defines_it_matches(tmp_path):
    from swag_lora.evaluation.store import find_finished_evaluation, write_evaluation

    folder = tmp_path / "arc-easy" / "test" / "swag"
    record = {"run": "runs/a", "run_config_digest": "sha256:1", "method": "swag", "scale_grid": [1.0, 3.0],
              "sampling": {"n_samples": 2, "seed": 0}, "nll": 1.2}
    log_probs = np.log(np.full((3, 2, 4), 0.25, dtype=np.float32))
    write_evaluation(folder, record, log_probs, [0, 1, 2], ["q1", "q2", "q3"])
    expected = {"run": "runs/a", "run_config_digest": "sha256:1", "method": "swag", "scale_grid": (1.0, 3.0),
                "sampling": {"n_samples": 2, "seed": 0}}
    found = find_finished_evaluation(folder, ["q1", "q2", "q3"], expected)
    assert found is not None and found[0]["nll"] == 1.2 and found[1].shape == (3, 2, 4)
    assert find_finished_evaluation(folder, ["q1", "q3", "q2"], expected) is None  # other order
    for key, other in (("run_config_digest", "sha256:2"), ("sampling", {"n_samples": 3, "seed": 0}),
                       ("scale_grid", (1.0,)), ("temperature", 2.0)):
        assert find_finished_evaluation(folder, ["q1", "q2", "q3"], {**expected, key: other}) is None, key
    (folder / "metrics.json").unlink()  # written last: without it the evaluation is unfinished
    assert find_finished_evaluation(folder, ["q1", "q2", "q3"], expected) is None
