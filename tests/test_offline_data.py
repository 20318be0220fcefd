"""Complete on a fresh machine: the demo's ARC-Easy questions ship in the package and give the
draws the full data gives; hub failures end in one line naming the local options (at once under
HF_HUB_OFFLINE=1); the test fixtures in tests/data stand in for shared/data."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from argparse import Namespace
from fnmatch import fnmatch
from pathlib import Path

import pytest

from swag_lora.cli import demo
from swag_lora.tasks import DataNotFoundError, load_task
from swag_lora.tasks.slices import SLICE_FILE, packaged_data_dir, read_slice
from tests.conftest import FIXTURES, REPO, benchmark_data

PACKAGED = packaged_data_dir()
DEMO_LIMITS = {"train": demo.DEMO_DEFAULTS["train_limit"], "validation": demo.DEMO_DEFAULTS["validation_limit"],
               "test": demo.DEMO_DEFAULTS["test_limit"]}


def ids(rows) -> list[str]:
    return [row.id for row in rows]


# --- item 9: the packaged demo slice -----------------------------------------------------------


def test_the_packaged_slice_records_the_demos_default_draw():
    record = read_slice(PACKAGED / "arc-easy")
    assert record["task"] == "arc-easy" and record["subset_seed"] == 0
    for split, limit in DEMO_LIMITS.items():
        held = record["splits"][split]
        assert held["rows"] == held["limit"] == limit, split  # the demo's defaults, nothing more
        rows = json.loads((PACKAGED / "arc-easy" / held["file"]).read_text())
        assert len(rows) == limit and len({r["id"] for r in rows}) == limit
    notice = (PACKAGED / "arc-easy" / "README.md").read_text()
    assert "CC BY-SA 4.0" in notice and "Clark et al. 2018" in notice


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_demo_draws_are_the_same_from_the_packaged_slice_and_the_data(split, data_dir):
    """The demo's loads (its default sizes and smaller ones, as `demo --help` allows) give the same
    questions, in the same order, from the packaged slice as from the data (the full release, or
    the fixtures, which hold the release's top-ranked questions and more)."""
    for limit in (DEMO_LIMITS[split], DEMO_LIMITS[split] // 4, 1):
        full = load_task("arc-easy", split, data_dir, limit=limit)
        packaged = load_task("arc-easy", split, PACKAGED, limit=limit)
        assert len(full) == limit
        assert ids(packaged) == ids(full), (split, limit)
        assert [(r.question, r.choices, r.label) for r in packaged] == [(r.question, r.choices, r.label) for r in full]
        assert packaged.available == {"train": 2251, "validation": 570, "test": 2376}[split]  # the release's
        assert "a slice" in packaged.rule


@pytest.mark.parametrize("kwargs, problem", [
    ({}, "all 2,251 train questions were asked for"),
    ({"limit": 241}, "a subset of 241 was asked for"),
    ({"limit": 10, "subset_seed": 1}, "subset seed 1 was asked for"),
])
def test_the_packaged_slice_never_stands_in_for_the_full_data(kwargs, problem):
    with pytest.raises(DataNotFoundError, match=problem) as info:
        load_task("arc-easy", "train", PACKAGED, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "--data_dir" in message and "$SWAG_LORA_DATA" in message


def test_a_slice_of_a_carved_split_is_refused(tmp_path):
    folder = tmp_path / "arc-challenge"
    folder.mkdir()
    (folder / "ARC-Challenge-Train.jsonl").write_text(
        (FIXTURES / "arc-challenge" / "ARC-Challenge-Train.jsonl").read_text())
    (folder / SLICE_FILE).write_text(json.dumps(
        {"task": "arc-challenge", "subset_seed": 0,
         "splits": {"validation": {"file": "ARC-Challenge-Train.jsonl", "rows": 5, "release_rows": 112}}}))
    with pytest.raises(DataNotFoundError, match="carved from another file"):
        load_task("arc-challenge", "validation", tmp_path, limit=2)
    with pytest.raises(DataNotFoundError, match="no train split"):
        load_task("arc-challenge", "train", tmp_path, limit=2)


def test_the_packaged_slice_is_package_data():
    line = re.search(r'^"swag_lora.tasks" = (\[.*\])$', (REPO / "pyproject.toml").read_text(), re.M)
    globs = {"swag_lora.tasks": json.loads(line.group(1))}  # [tool.setuptools.package-data]
    files = [p.relative_to(PACKAGED.parent).as_posix() for p in PACKAGED.rglob("*") if p.is_file()]
    assert {"packaged/arc-easy/train.json", f"packaged/arc-easy/{SLICE_FILE}", "packaged/arc-easy/README.md"} <= set(files)
    assert all(any(fnmatch(f, g) for g in globs["swag_lora.tasks"]) for f in files), files


def test_demo_data_order_is_flag_env_shared_then_packaged(monkeypatch, tmp_path):
    monkeypatch.setenv("SWAG_LORA_DATA", str(tmp_path / "env"))
    assert demo.demo_data_dir("given", "arc-easy") == ("given", "--data_dir")
    assert demo.demo_data_dir(None, "arc-easy") == (str(tmp_path / "env"), "$SWAG_LORA_DATA")
    monkeypatch.delenv("SWAG_LORA_DATA")
    monkeypatch.setattr(demo, "find_local_data", lambda: str(tmp_path / "shared"))
    assert demo.demo_data_dir(None, "arc-easy") == (str(tmp_path / "shared"), "a shared/data folder")
    monkeypatch.setattr(demo, "find_local_data", lambda: None)
    folder, origin = demo.demo_data_dir(None, "ARC_Easy")
    assert folder == str(PACKAGED) and "packaged" in origin
    assert demo.demo_data_dir(None, "obqa")[0] is None  # no packaged copy: the hub


def demo_args(model, out, data_dir=None, **sizes) -> Namespace:
    args = demo.parser().parse_args(["--model", str(model), "--output_dir", str(out), "--map_epochs", "1",
                                     "--swag_epochs", "1", "--collections_per_epoch", "2", "--n_samples", "2",
                                     "--scales", "1"] + (["--data_dir", data_dir] if data_dir else []))
    args.train_limit, args.validation_limit, args.test_limit = sizes.get("train", 16), 8, sizes.get("test", 8)
    return args


def test_the_demo_runs_offline_on_the_packaged_slice_with_the_datas_results(tiny_llama_dir, tmp_path, monkeypatch, capsys, data_dir):
    monkeypatch.delenv("SWAG_LORA_DATA", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(demo, "find_local_data", lambda: None)  # as on a clone with no shared/ beside it

    def no_hub(*args, **kwargs):
        raise AssertionError("the demo went to the hub")

    monkeypatch.setattr("swag_lora.tasks.loading.hub_dataset", no_hub)
    report = demo.run_demo(demo_args(tiny_llama_dir, tmp_path / "demo"))
    out = capsys.readouterr().out
    assert f"data {PACKAGED} (the ARC-Easy questions packaged with swag-lora" in out
    assert report.is_file()
    config = json.loads((tmp_path / "demo" / "run" / "run_config.json").read_text())
    assert config["splits"]["train"]["source"] == f"local:{PACKAGED / 'arc-easy' / 'train.json'}"
    assert config["splits"]["train"]["available"] == 2251
    evaluated = json.loads((tmp_path / "demo" / "run" / "eval" / "arc-easy" / "test" / "map" / "ids.json").read_text())
    assert evaluated == ids(load_task("arc-easy", "test", data_dir, limit=8))  # the questions the data gives

    demo.run_demo(demo_args(tiny_llama_dir, tmp_path / "again", data_dir=str(data_dir)))  # the same from the data
    for method in ("map", "swa", "swag"):
        ours, theirs = (json.loads((tmp_path / out / "run" / "eval" / "arc-easy" / "test" / method / "metrics.json")
                                   .read_text()) for out in ("demo", "again"))
        assert {k: ours[k] for k in ("acc", "nll", "ece", "brier")} == {k: theirs[k] for k in ("acc", "nll", "ece",
                                                                                               "brier")}, method


def test_the_demo_refuses_sizes_the_packaged_slice_cannot_serve_before_training(tiny_llama_dir, tmp_path,
                                                                               monkeypatch):
    monkeypatch.delenv("SWAG_LORA_DATA", raising=False)
    monkeypatch.setattr(demo, "find_local_data", lambda: None)
    started = time.time()
    with pytest.raises(DataNotFoundError, match="a subset of 300 was asked for"):
        demo.run_demo(demo_args(tiny_llama_dir, tmp_path / "demo", test=300))
    assert not (tmp_path / "demo" / "run").exists() and time.time() - started < 30


# --- item 9: hub failures -----------------------------------------------------------------------


def test_a_hub_failure_is_one_line_naming_the_local_options(monkeypatch):
    import datasets

    def unreachable(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'allenai/ai2_arc' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    monkeypatch.delenv("SWAG_LORA_DATA", raising=False)
    with pytest.raises(DataNotFoundError) as info:
        load_task("arc-easy", "test")
    message = str(info.value)
    assert "\n" not in message and message.startswith("task arc-easy: no local copy ($SWAG_LORA_DATA is not set)")
    assert "Couldn't reach 'allenai/ai2_arc'" in message
    assert "--data_dir DIR" in message and "--data_dir arc-easy=DIR" in message and "set $SWAG_LORA_DATA" in message


def test_a_custom_tasks_hub_failure_names_its_local_option(monkeypatch):
    import datasets

    from swag_lora.tasks import CustomTask

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'someone/sentiment' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    task = CustomTask.from_options({"hub_dataset": "someone/sentiment", "question_column": "sentence",
                                    "label_words": ["negative", "positive"], "answer_column": "label"})
    with pytest.raises(DataNotFoundError) as info:
        load_task(task, "test")
    message = str(info.value)
    assert "\n" not in message and "OfflineModeIsEnabled" in message and "--data_files SPLIT=FILE" in message


def test_offline_the_command_line_fails_at_once_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SWAG_LORA_DATA", "SWAG_LORA_DEBUG")}
    env.update(HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore")
    started = time.time()
    proc = subprocess.run([sys.executable, "-m", "swag_lora.cli", "train", "--task", "obqa", "--output_dir",
                           str(tmp_path / "run")], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Retrying" not in proc.stderr, proc.stderr
    assert "HF_HUB_OFFLINE is set" in lines[0] and "--data_dir" in lines[0] and "$SWAG_LORA_DATA" in lines[0]
    assert time.time() - started < 120  # no retry loop (each retry round waits 1+2+4+8+8 s)


# --- item 10: the fixtures ----------------------------------------------------------------------


def test_the_fixtures_mirror_the_release_files():
    manifest = json.loads((FIXTURES / "MANIFEST.json").read_text())["files"]
    assert {name.split("/")[0] for name in manifest} == {"arc-easy", "arc-challenge", "obqa", "winogrande", "mmlu"}
    assert sum(name.startswith("mmlu/test/") for name in manifest) == 57
    for name, counts in manifest.items():
        assert (FIXTURES / name).is_file(), name
        assert 0 < counts["rows"] < counts["release_rows"] or name.startswith("mmlu/dev/"), name
    readme = (FIXTURES / "README.md").read_text()
    for licence in ("CC BY-SA 4.0", "Apache-2.0", "CC-BY", "MIT"):
        assert licence in readme
    full, is_full = benchmark_data()
    if is_full:  # the fixtures and the packaged slice are what tools/cut_data.py cuts from this data
        proc = subprocess.run([sys.executable, str(REPO / "tools" / "cut_data.py"), "check", "--data", str(full)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_data_fixture_falls_back_to_the_fixtures(monkeypatch):
    monkeypatch.setenv("SWAG_LORA_FORCE_FIXTURES", "1")
    assert benchmark_data() == (FIXTURES, False)
    monkeypatch.delenv("SWAG_LORA_FORCE_FIXTURES")
    monkeypatch.setenv("SWAG_LORA_DATA", str(Path("/nonexistent")))
    found, is_full = benchmark_data()
    assert is_full == (REPO.parent / "shared" / "data" / "arc-easy").is_dir()
    assert found == (REPO.parent / "shared" / "data" if is_full else FIXTURES)
