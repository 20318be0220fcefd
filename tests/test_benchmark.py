"""The calibration benchmark driver end to end on a tiny model and a two-run grid: every
unit, the results file, resume after a stop, and the report from the results alone."""

from __future__ import annotations

import json

import numpy as np
import pytest

from swag_lora import metrics as M
from swag_lora.benchmark import BenchConfig, BenchConfigError, Driver
from swag_lora.benchmark.results import RECORD_FIELDS, load_predictions


def grid(model_dir, data_dir, **over) -> BenchConfig:
    raw = {
        "model": str(model_dir), "data_dir": str(data_dir), "seeds": [0, 1], "threads": 1,
        "tasks": {"arc-easy": {"train": 16, "validation": 8, "test": 10, "ood": ["arc-challenge:test:6"]}},
        "map_epochs": 2, "swag_epochs": 2, "learning_rate": 1e-2, "swag_learning_rates": [1e-2, 3e-2],
        "collections_per_epoch": 2, "max_rank": 2, "tune_samples": 2, "scale_grid": [1, 4], "n_samples": 3,
        "mc_dropout_samples": 2, "laplace_fit_limit": 8, "laplace_samples": 20, "batch_size": 4, "eval_batch_size": 8,
        "blob": {"init_std": 0.2, "epochs": 1}, "ivon": {"learning_rate": 0.1, "epochs": 1}, "tfb": {"iterations": 2},
    }
    raw.update(over)
    return BenchConfig.from_dict(raw)


class Stop(Exception):
    pass


def test_driver_runs_the_grid_resumes_after_a_stop_and_reports(tmp_path, tiny_model_dir, data_dir, monkeypatch):
    import swag_lora.benchmark.driver as driver

    config = grid(tiny_model_dir, data_dir)
    work, results = tmp_path / "work", tmp_path / "results"
    overrides = {"use_cpu": True, "dataloader_pin_memory": False}

    # First attempt: stop (as a kill would) inside the third evaluation group of seed 0.
    real = driver.evaluate_run
    calls = {"n": 0}

    def flaky(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise Stop
        return real(*args, **kw)

    monkeypatch.setattr(driver, "evaluate_run", flaky)
    first = Driver(config, work, results, log=lambda s: None, training_overrides=overrides)
    with pytest.raises(Stop):
        first.run()
    done_before = list(first.ran)
    assert "arc-easy/seed0/map" in done_before and "arc-easy/tuning" in done_before
    assert "arc-easy/seed0/swag-lr0.01" in done_before and "arc-easy/seed0/swag-lr0.03" in done_before
    records = json.loads((results / "calibration.json").read_text())
    assert {r["method"] for r in records} >= {"map", "temperature", "swag"}  # written as soon as it exists

    # status: what the stop left, in run order, with seed 1's units estimated from seed 0's times
    from swag_lora.benchmark.progress import grid_status, status_table

    status = {u.name: u for u in grid_status(first)}
    assert status["arc-easy/seed0/map"].done and status["arc-easy/tuning"].done
    groups = [n for n in status if n.startswith("arc-easy/seed0/eval/")]
    assert [status[n].done for n in groups[:3]] == [True, True, False] and not status["arc-easy/combined"].done
    timing = json.loads((work / "timing.json").read_text())
    assert not status["arc-easy/seed1/map"].done and status["arc-easy/seed1/map"].seconds == timing["arc-easy/seed0/map"]
    assert f"{sum(u.done for u in status.values())} of {len(status)} units done" in status_table(list(status.values()))

    # Resume: nothing done is redone; everything else runs.
    monkeypatch.setattr(driver, "evaluate_run", real)
    second = Driver(config, work, results, log=lambda s: None, training_overrides=overrides)
    second.run()
    assert not set(second.ran) & set(done_before)
    assert "arc-easy/seed1/map" in second.ran and "arc-easy/combined" in second.ran
    assert {"arc-easy/seed0/blob", "arc-easy/seed1/ivon", "arc-easy/seed1/eval/blob", "arc-easy/seed0/eval/tfb"} \
        <= set(second.ran)
    tuning = json.loads((work / "arc-easy" / "tuning.json").read_text())
    choice = tuning["choice"]
    lr = choice["swag_learning_rate"]
    assert lr in (1e-2, 3e-2) and choice["scale"] in (1.0, 4.0)
    assert "arc-easy/seed1/" + ("swag-lr0.01" if lr == 1e-2 else "swag-lr0.03") in second.ran
    assert not any(r.startswith("arc-easy/seed1/swag-lr") and str(lr) not in r for r in second.ran)  # one rate only
    best = min(v["nll"] for p in tuning["by_learning_rate"].values() for v in p["swag"].values())
    assert choice["validation_nll"] == best

    # A third run has nothing left to do.
    third = Driver(config, work, results, log=lambda s: None, training_overrides=overrides)
    assert third.run() == []
    assert all(u.done for u in grid_status(third)) and set(second.ran) <= {u.name for u in grid_status(third)}

    # A wider scale grid computes only the new scale on validation (the others are read back)
    # and chooses again; the old choice's values are unchanged.
    part = work / "arc-easy" / "tuning" / f"swag-lr{lr:g}.json"
    before = json.loads(part.read_text())["swag"]
    wider = grid(tiny_model_dir, data_dir, scale_grid=[1, 4, 8])
    fourth = Driver(wider, work, None, log=lambda s: None, training_overrides=overrides)
    assert fourth.tuning.tune(wider.tasks[0])["scale_grid"] == [1.0, 4.0, 8.0]
    after = json.loads(part.read_text())["swag"]
    assert set(after) == {"1", "4", "8"} and {k: after[k] for k in before} == before
    assert fourth.ran == ["arc-easy/tuning"]

    records = json.loads((results / "calibration.json").read_text())
    for r in records:
        assert set(RECORD_FIELDS) <= set(r)
        assert r["ece_bins"] == 15
    methods = {(r["method"], r["ood_task"]) for r in records}
    expected_id = {"zero-shot", "map", "swa", "swag", "swag-tuned", "mc-dropout", "temperature", "laplace", "ensemble",
                   "multiswag", "tfb", "blob", "blob-mean", "ivon", "ivon-mean"}
    tempered = {f"{m}+ts" for m in expected_id - {"zero-shot", "temperature"}}  # every method, also with a temperature
    tuned = {"multiswag-tuned", "multiswag-tuned+ts"} if choice["scale"] != config.scale else set()
    assert {m for m, ood in methods if ood is None} == expected_id | tempered | tuned
    shifted = {"map", "swag", "swag-tuned", "tfb", "blob", "blob-mean", "ivon", "ivon-mean"}
    assert {m for m, ood in methods if ood == "arc-challenge"} == shifted | {"temperature"} | {f"{m}+ts" for m in shifted}
    assert not any(r.get("split") == "validation" for r in records)  # validation serves the fits, results are test
    by_key = {(r["method"], r["ood_task"], r["seed"]): r for r in records}
    swag_ts = by_key[("swag+ts", None, 0)]
    assert swag_ts["temperature"] != 1.0 and by_key[("map+ts", None, 0)]["nll"] == by_key[("temperature", None, 0)]["nll"]
    assert all(r["aurc"] is not None for r in records)
    assert all((r["auroc_err_confidence"] is None) == (r["acc"] in (0.0, 1.0)) for r in records)  # None: nothing to rank
    assert (by_key[("swag", None, 0)]["auroc_err_mi"] is not None) and by_key[("map", None, 0)]["auroc_err_mi"] is None
    # the +ts fits used the validation predictions, saved in the work folder
    val = work / "arc-easy" / "seed0" / f"swag-lr{lr:g}" / "eval" / "arc-easy" / "validation"
    assert {p.name for p in val.iterdir()} >= {"map", "swag", "swag+ts", "temperature", "laplace+ts"}
    by = {(r["method"], r["ood_task"], r["seed"]): r for r in records}
    assert by[("swag", None, 0)]["n_samples"] == 3 and by[("swag-tuned", None, 0)]["scale"] == choice["scale"]
    assert by[("mc-dropout", None, 1)]["n_samples"] == 2
    assert by[("ensemble", None, None)]["n_samples"] == 2 and by[("multiswag", None, None)]["n_samples"] == 6
    assert by[("zero-shot", None, None)]["seed"] is None
    for seed in (0, 1):  # the field's methods: each seed's own BLoB and IVON runs, TFB on its MAP
        assert by[("blob", None, seed)]["n_samples"] == 3 and by[("blob-mean", None, seed)]["n_samples"] == 1
        assert by[("ivon", None, seed)]["n_samples"] == 3 and by[("tfb", None, seed)]["n_samples"] == 3
    blob_run = json.loads((work / "arc-easy" / "seed1" / "blob" / "run_config.json").read_text())
    assert blob_run["bayes"]["bayes_method"] == "blob" and blob_run["bayes"]["blob_init_std"] == 0.2
    ivon_run = json.loads((work / "arc-easy" / "seed0" / "ivon" / "run_config.json").read_text())
    assert ivon_run["training"]["learning_rate"] == 0.1 and ivon_run["variational"]["ess"] == 16
    ood = by[("swag", "arc-challenge", 0)]
    assert 0 <= ood["auroc_entropy"] <= 1 and 0 <= ood["auroc_mi"] <= 1
    assert by[("map", "arc-challenge", 0)]["auroc_mi"] is None  # one member: no mutual information
    assert by[("map", None, 0)]["auroc_entropy"] is None

    # The saved predictives reproduce the records' metrics.
    preds = load_predictions(results, "arc-easy", "arc-easy")
    for key in ("map|0", "temperature|1", "swag|0", "ensemble|all", "swag+ts|0", "multiswag+ts|all"):
        method, seed = key.split("|")
        r = by[(method, None, None if seed == "all" else int(seed))]
        log_p = preds[key].astype(np.float64)
        assert M.negative_log_likelihood(log_p, preds["labels"]) == pytest.approx(r["nll"], abs=1e-5)
        assert M.expected_calibration_error(np.exp(log_p), preds["labels"], 15) == pytest.approx(r["ece"], abs=1e-5)

    # The report regenerates from the results alone (no work folder).
    from swag_lora.benchmark.report import write_results_report

    out = write_results_report(config, results, tmp_path / "docs" / "results.md", work=None)
    text = out.read_text()
    assert "| map |" in text and "swag-tuned" in text and "arc-challenge" in text
    assert "| blob |" in text and "| tfb |" in text and "| swag − ivon |" in text and "BLoB, IVON" in text
    assert list((tmp_path / "docs" / "img").glob("*.png"))


def test_config_errors_name_the_problem(tiny_model_dir, data_dir):
    with pytest.raises(BenchConfigError, match="unknown config key"):
        grid(tiny_model_dir, data_dir, swag_lr=1)
    with pytest.raises(BenchConfigError, match="tune_seed 5"):
        grid(tiny_model_dir, data_dir, tune_seed=5)
    with pytest.raises(BenchConfigError, match="test must be a positive"):
        grid(tiny_model_dir, data_dir, tasks={"obqa": {"train": 4, "validation": 4, "test": 0}})
    with pytest.raises(BenchConfigError, match="unknown method"):
        grid(tiny_model_dir, data_dir, methods=["map", "swag-ultra"])
    with pytest.raises(BenchConfigError, match="blob must be a mapping with keys among"):
        grid(tiny_model_dir, data_dir, blob={"prior": 0.1})
    with pytest.raises(BenchConfigError, match="ivon: IVON ess must be > 0"):
        grid(tiny_model_dir, data_dir, ivon={"ess": -1})
    with pytest.raises(BenchConfigError, match="tfb: TFB metric must be one of"):
        grid(tiny_model_dir, data_dir, tfb={"metric": "brier"})
    with pytest.raises(BenchConfigError, match="field_ood must be true or false"):
        grid(tiny_model_dir, data_dir, field_ood="no")
    with pytest.raises(BenchConfigError, match="length_normalize must be true or false"):
        grid(tiny_model_dir, data_dir,
             tasks={"obqa": {"train": 4, "validation": 4, "test": 4, "length_normalize": "false"}})


def test_committed_config_is_valid():
    from pathlib import Path

    config = BenchConfig.load(Path(__file__).resolve().parent.parent / "bench" / "calibration.yaml")
    assert config.seeds == [0, 1, 2] and config.n_samples == 10 and config.mc_dropout_samples == 5
    assert all(t.test >= 400 for t in config.tasks)


def test_the_swag_exploration_study_compares_branches_on_validation(tmp_path, tiny_model_dir, data_dir):
    """Each study variant is a SWAG branch from the same MAP adapter, evaluated on the validation
    split with a temperature; the choice is the lowest swag+ts NLL within a point of MAP's accuracy."""
    from swag_lora.benchmark.layout import choose_variant

    study = {"tasks": ["arc-easy"], "seed": 0, "n_samples": 2,
             "variants": {"adamw": {"learning_rate": 1e-2}, "sgd-k3": {"learning_rate": 0.1, "optimizer": "sgd",
                                                                       "max_rank": 3, "collections_per_epoch": 4}}}
    config = grid(tiny_model_dir, data_dir, study=study)
    work, results = tmp_path / "work", tmp_path / "results"
    driver = Driver(config, work, results, log=lambda s: None,
                    training_overrides={"use_cpu": True, "dataloader_pin_memory": False})
    ran = driver.run(parts=("study",))
    assert ran == ["arc-easy/seed0/map", "arc-easy/study/adamw/train", "arc-easy/study/adamw",
                   "arc-easy/study/sgd-k3/train", "arc-easy/study/sgd-k3"]
    sgd_run = json.loads((work / "arc-easy" / "seed0" / "study" / "sgd-k3" / "run_config.json").read_text())
    assert sgd_run["training"]["optim"] == "sgd" and sgd_run["swag"]["swag_max_rank"] == 3
    assert sgd_run["training"]["optim_args"] == "momentum=0.9"
    runs = json.loads((results / "calibration_runs.json").read_text())["study"]["arc-easy"]
    assert set(runs["variants"]) == {"adamw", "sgd-k3"}
    assert runs["choice"] == choose_variant(runs["variants"])
    for methods in runs["variants"].values():
        assert set(methods) == {"map", "swa", "swag", "map+ts", "swa+ts", "swag+ts"}
        assert methods["swag+ts"]["nll"] <= methods["swag"]["nll"] + 1e-9  # T fitted on this very split
    records = [r for r in json.loads((results / "calibration.json").read_text()) if r.get("study")]
    assert len(records) == 12 and all(r["split"] == "validation" for r in records)
    again = Driver(config, work, results, log=lambda s: None,
                   training_overrides={"use_cpu": True, "dataloader_pin_memory": False})
    assert again.run(parts=("study",)) == []  # done units are not redone
    assert sgd_run["swag"]["swag_learning_rate"] == 0.1  # the branch's rate, held constant
    # a branch whose rate decayed (trained before the rate was held constant) is refused, not reused
    from swag_lora.benchmark.units import check_branch

    sgd_dir = work / "arc-easy" / "seed0" / "study" / "sgd-k3"
    decayed = tmp_path / "decayed"
    decayed.mkdir()
    (decayed / "run_config.json").write_text(json.dumps({**sgd_run, "swag": {**sgd_run["swag"],
                                                                              "swag_learning_rate": None}}))
    check_branch(sgd_dir, config.study_variants()["sgd-k3"])
    with pytest.raises(BenchConfigError, match="decayed to 0"):
        check_branch(decayed, config.study_variants()["sgd-k3"])
    # the rule: lowest swag+ts NLL among variants whose SWAG accuracy is within a point of MAP's
    made_up = {"a": {"map": {"acc": 0.60}, "swag": {"acc": 0.58}, "swag+ts": {"nll": 0.9}},
               "b": {"map": {"acc": 0.60}, "swag": {"acc": 0.595}, "swag+ts": {"nll": 1.0}}}
    assert choose_variant(made_up)["variant"] == "b"

    # while variants are still to run, the report calls the choice provisional and names them
    from swag_lora.benchmark.sections import study_section

    assert runs["planned"] == ["adamw", "sgd-k3"] and "Provisional" not in study_section({"arc-easy": runs})
    partial = {**runs, "variants": {"adamw": runs["variants"]["adamw"]}}
    assert "**Provisional:** 1 of 2 planned variants have run; still to run: sgd-k3." in study_section(
        {"arc-easy": partial})
    # a finished variant whose branch was trained otherwise is refused on the next run, not reused
    (sgd_dir / "run_config.json").write_text(json.dumps({**sgd_run, "swag": {**sgd_run["swag"],
                                                                               "swag_learning_rate": None}}))
    with pytest.raises(BenchConfigError, match="decayed to 0"):
        Driver(config, work, results, log=lambda s: None).run(parts=("study",))


def test_swag_start_section_pairs_each_variant_with_the_last_iterate():
    """The report's table of bench/swag_start.py: one row per run in the settings' variant order,
    the best MAP epoch read from the MAP phase only, and every other variant's swag+ts NLL
    difference to the last iterate's."""
    from swag_lora.benchmark.sections import swag_start_section

    def entry(swag_ts, branch=None):
        methods = {m: {"acc": 0.6, "nll": 1.5} for m in ("map", "swag")}
        methods.update({"map+ts": {"nll": 1.0}, "swag+ts": {"nll": swag_ts}})
        curve = [{"epoch": 1.0, "nll": 1.7, "acc": 0.6}, {"epoch": 2.0, "nll": 1.4, "acc": 0.6},
                 {"epoch": 3.0, "nll": 1.6, "acc": 0.6}, {"epoch": 4.0, "nll": 1.2, "acc": 0.6}]  # 4: SWAG phase
        return {"methods": methods, "validation_curve": curve, "branch": branch}

    data = {"settings": {"common": {"task": "arc-easy", "learning_rate": 1e-3, "swag_learning_rate": 3e-4,
                                    "n_samples": 10},
                         "recipes": {"overfit": {"train": 160, "validation": 200, "map_epochs": 3, "swag_epochs": 1}},
                         "variants": {"last": {}, "best": {"swag_from_best": True}, "sgd": {"swag_optimizer": "sgd"}}},
            "runs": {"overfit/seed0/sgd": entry(0.97), "overfit/seed0/last": entry(0.95),
                     "overfit/seed0/best": entry(0.92, {"step": 60, "from": "best validation NLL at step 40"})}}
    interval = {"seeds": [0], "swag+ts nll": {"diff": -0.03, "lo": -0.05, "hi": -0.01},
                "swag acc": {"diff": 0.005, "lo": -0.01, "hi": 0.02}}
    data["comparisons"] = {"overfit": {"best": interval, "sgd": {**interval, "swag+ts nll": {"diff": 0.02,
                                                                                             "lo": 0.0, "hi": 0.04}}}}
    text = swag_start_section(data)
    assert ("**overfit**, best − last over seeds 0 (95% paired bootstrap): swag+ts NLL -0.030 [-0.050, -0.010], "
            "SWAG accuracy +0.5 [-1.0, +2.0] points.") in text
    assert "**overfit**, sgd − last over seeds 0 (95% paired bootstrap): swag+ts NLL +0.020 [+0.000, +0.040]" in text
    rows = [line for line in text.splitlines() if line.startswith("| overfit")]
    assert len(rows) == 3
    assert "| last | last iterate | 2 of 3 |" in rows[0] and rows[0].endswith("| 0.950 |  |")
    assert "best validation NLL at step 40" in rows[1] and rows[1].endswith("| 0.920 | -0.030 |")
    assert "| sgd | last iterate |" in rows[2] and rows[2].endswith("| 0.970 | +0.020 |")
    assert swag_start_section({}) == "Not run yet.\n"

def test_field_ood_false_keeps_tfb_blob_and_ivon_in_domain(tmp_path, tiny_model_dir, data_dir, monkeypatch):
    """With ``field_ood: false`` the TFB group and the BLoB / IVON evaluations get the test and
    validation subsets only, while MAP, temperature and SWAG keep the OOD sets."""
    import swag_lora.benchmark.driver as driver_module

    for field_ood in (True, False):
        config = grid(tiny_model_dir, data_dir, field_ood=field_ood)
        driver = Driver(config, tmp_path / f"work-{field_ood}", log=lambda s: None)
        task = config.tasks[0]
        groups = {name: with_ood for name, _, _, _, with_ood in driver._groups(task, {"scale": 4.0})}
        assert groups["map-temperature-swag"] and groups["swag-tuned@4"]
        assert groups["tfb"] is field_ood
        seen = []
        monkeypatch.setattr(driver.units, "train_variational", lambda t, s, m: tmp_path / "never-read")
        monkeypatch.setattr(driver_module, "load_run", lambda path: None)
        monkeypatch.setattr(driver_module, "evaluate_run",
                            lambda run, specs, names, *a, seen=seen, **k: seen.append(specs) or [{"method": n}
                                                                                                  for n in names])
        driver.evaluate_variational(task, 0, "blob")
        splits = [(s.task, s.split, bool(s.ood)) for s in seen[0]]
        expected = [("arc-easy", "test", False), ("arc-easy", "validation", False)]
        assert splits == expected + ([("arc-challenge", "test", True)] if field_ood else [])
