"""Each task's data is found on its own: a task folder of another task points to the data root
beside it, ``$SWAG_LORA_DATA`` is looked in after the folders given, ``TASK=DIR`` pairs give single
tasks their folders (in train, recorded for evaluate, and in evaluate), and a run trained with its
task's folder is evaluated on OOD tasks found beside it."""

from __future__ import annotations

import json
import shutil

import pytest

from swag_lora.cli import commands as cli
from swag_lora.errors import InvalidSettingError
from swag_lora.tasks import DataDirs, DataNotFoundError, load_task


def ids(rows) -> list[str]:
    return [row.id for row in rows]


def source_of(split) -> str:
    return split.source.removeprefix("local:")


def test_a_task_folder_of_another_task_points_to_the_root_beside_it(data_dir, monkeypatch):
    monkeypatch.delenv("SWAG_LORA_DATA", raising=False)
    found = load_task("arc-challenge", "test", data_dir / "arc-easy", limit=6)
    assert source_of(found).startswith(str(data_dir / "arc-challenge"))
    assert ids(found) == ids(load_task("arc-challenge", "test", data_dir, limit=6))
    mmlu = load_task("mmlu-anatomy", "test", data_dir / "winogrande")  # by files too: winogrande holds dev.jsonl
    assert source_of(mmlu).startswith(str(data_dir / "mmlu"))


def test_then_swag_lora_data_then_the_hub_with_one_line_saying_where_it_looked(data_dir, tmp_path, monkeypatch):
    import datasets

    cqa = tmp_path / "elsewhere" / "cqa"  # a task folder (by its files) with no other task beside it
    cqa.mkdir(parents=True)
    (cqa / "dev_rand_split.jsonl").write_text("")
    monkeypatch.setenv("SWAG_LORA_DATA", str(data_dir))
    found = load_task("arc-easy", "test", cqa, limit=5)
    assert source_of(found) == str(data_dir / "arc-easy" / "test.json")

    monkeypatch.delenv("SWAG_LORA_DATA")

    def unreachable(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'allenai/ai2_arc' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(DataNotFoundError) as info:
        load_task("arc-easy", "test", cqa)
    message = str(info.value)
    assert "\n" not in message
    assert f"{str(cqa)!r} is cqa's folder and {str(cqa.parent)!r} beside it has no folder named arc-easy" in message
    assert "$SWAG_LORA_DATA is not set" in message and "Couldn't reach" in message
    assert "--data_dir arc-easy=DIR" in message
    with pytest.raises(DataNotFoundError, match="no local copy .*is cqa's folder"):
        load_task("arc-easy", "test", cqa, source="local")


def test_a_runs_task_folder_serves_its_task_alone_whatever_its_name(data_dir, tmp_path, monkeypatch):
    """ARC-Easy's Hugging Face files (train.json, validation.json) have the names ARC-Challenge's
    layout looks for too: a run's folder is pinned to the task it was trained on."""
    mine = tmp_path / "my-questions"
    shutil.copytree(data_dir / "arc-easy", mine)
    monkeypatch.setenv("SWAG_LORA_DATA", str(data_dir))
    recorded = DataDirs.parse(str(mine)).pinned("arc-easy")
    assert recorded == DataDirs(None, (("arc-easy", str(mine)),), ((str(mine), "arc-easy"),))
    assert source_of(load_task("arc-easy", "test", recorded, limit=3)) == str(mine / "test.json")
    challenge = load_task("arc-challenge", "test", recorded)
    assert source_of(challenge) == str(data_dir / "arc-challenge" / "ARC-Challenge-Dev.jsonl")
    assert DataDirs.parse(str(data_dir)).pinned("arc-easy") == DataDirs(str(data_dir))  # a data root stays one
    assert DataDirs.parse(str(mine)).pinned("reviews.yaml") == DataDirs(str(mine))  # a custom task: unchanged


def test_a_folder_that_is_no_tasks_folder_is_still_an_error(data_dir, tmp_path):
    (tmp_path / "notes").mkdir()
    with pytest.raises(DataNotFoundError, match="holds neither the task's files .* --data_dir arc-easy=DIR"):
        load_task("arc-easy", "test", tmp_path / "notes")
    with pytest.raises(DataNotFoundError, match="cqa or commonsense_qa"):  # a root without the task
        load_task("cqa", "test", data_dir)


def test_task_dir_pairs_give_single_tasks_their_folders(data_dir, tmp_path):
    copy = tmp_path / "my-arc"
    shutil.copytree(data_dir / "arc-challenge", copy)
    dirs = [str(data_dir), f"arc-challenge={copy}"]
    assert source_of(load_task("arc-challenge", "test", dirs)) == str(copy / "ARC-Challenge-Dev.jsonl")
    assert source_of(load_task("arc-easy", "test", dirs, limit=3)).startswith(str(data_dir))  # the root serves the rest
    assert source_of(load_task("mmlu-stem", "validation", [f"mmlu={data_dir / 'mmlu'}"])).startswith(
        str(data_dir / "mmlu"))  # a folder name serves every selection of the task
    assert source_of(load_task("winogrande-s", "test", [f"winogrande={data_dir}"])).startswith(
        str(data_dir / "winogrande"))  # a pair's folder may be a root too
    with pytest.raises(DataNotFoundError, match="the folder given for it"):
        load_task("arc-easy", "test", [f"arc-easy={copy}"])


def test_data_dirs_parse_merge_and_record():
    assert DataDirs.parse("/data").to_value() == "/data"
    dirs = DataDirs.parse(["/data", "ARC_Challenge=/a", "mmlu=/m"])
    assert dirs.root == "/data" and dirs.pairs == (("arc-challenge", "/a"), ("mmlu", "/m"))
    assert dirs.to_value() == ["/data", "arc-challenge=/a", "mmlu=/m"]
    recorded = DataDirs.parse(["/run-data", "obqa=/o"])
    assert DataDirs.parse(["arc-easy=/e"]).merged_over(recorded) == DataDirs("/run-data", (("obqa", "/o"),
                                                                                          ("arc-easy", "/e")))
    assert DataDirs.parse("/new").merged_over(recorded) == DataDirs("/new")  # a folder for all replaces the record
    assert DataDirs.parse(None).merged_over("/old") == DataDirs("/old")
    with pytest.raises(InvalidSettingError, match="'arc-esay' is not a task name"):
        DataDirs.parse("arc-esay=/x")
    with pytest.raises(InvalidSettingError, match="two folders for every task"):
        DataDirs.parse(["/a", "/b"])


# --- the command line: train with the task's folder, evaluate OOD tasks beside it ----------------


@pytest.fixture(scope="module")
def run_on_task_folder(tmp_path_factory, tiny_llama_dir, data_dir):
    out = tmp_path_factory.mktemp("datadirs") / "run"
    argv = ["train", "--model_name_or_path", str(tiny_llama_dir), "--task", "arc-easy", "--data_dir",
            str(data_dir / "arc-easy"), "--train_limit", "16", "--validation_limit", "8", "--num_train_epochs", "2",
            "--swag_start_epoch", "1", "--swag_collect_every_steps", "1", "--use_cpu", "true", "--disable_tqdm", "true",
            "--save_strategy", "no", "--output_dir", str(out)]
    assert cli.main(argv) == 0
    return out


def evaluated(run, task) -> dict:
    return json.loads((run / "eval" / task / "test" / "map" / "metrics.json").read_text())


def test_a_run_trained_on_its_task_folder_finds_ood_tasks_beside_it(run_on_task_folder, data_dir, monkeypatch):
    monkeypatch.delenv("SWAG_LORA_DATA", raising=False)
    config = json.loads((run_on_task_folder / "run_config.json").read_text())
    assert config["data"]["data_dir"] == str(data_dir / "arc-easy")  # one folder is recorded as before
    assert cli.main(["evaluate", str(run_on_task_folder), "--methods", "map", "--limit", "4",
                     "--ood_tasks", "arc-challenge:test:6", "--no_progress"]) == 0
    ood = evaluated(run_on_task_folder, "arc-challenge")
    assert ood["n_examples"] == 6 and ood["ood"]
    assert ood["data"]["source"] == f"local:{data_dir / 'arc-challenge' / 'ARC-Challenge-Dev.jsonl'}"


def test_evaluate_adds_task_dir_pairs_to_the_runs_folders(run_on_task_folder, data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("SWAG_LORA_DATA", raising=False)
    copy = tmp_path / "obqa-copy"
    shutil.copytree(data_dir / "obqa", copy)
    assert cli.main(["evaluate", str(run_on_task_folder), "--methods", "map", "--limit", "4",
                     "--ood_tasks", "obqa:test:5", "--data_dir", f"obqa={copy}", "--no_progress"]) == 0
    assert evaluated(run_on_task_folder, "obqa")["data"]["source"] == f"local:{copy / 'test.jsonl'}"
    assert evaluated(run_on_task_folder, "arc-easy")["data"]["source"].startswith(f"local:{data_dir / 'arc-easy'}")


def test_train_records_task_dir_pairs_for_evaluate(tiny_llama_dir, data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("SWAG_LORA_DATA", raising=False)
    out, copy = tmp_path / "run", tmp_path / "obqa-copy"
    shutil.copytree(data_dir / "obqa", copy)
    argv = ["train", "--model_name_or_path", str(tiny_llama_dir), "--task", "arc-easy", "--data_dir",
            f"arc-easy={data_dir / 'arc-easy'}", f"obqa={copy}", "--train_limit", "8", "--validation_limit", "0",
            "--num_train_epochs", "1", "--swag_start_step", "0", "--swag_collect_every_steps", "1", "--use_cpu",
            "true", "--disable_tqdm", "true", "--save_strategy", "no", "--output_dir", str(out)]
    assert cli.main(argv) == 0
    config = json.loads((out / "run_config.json").read_text())
    assert config["data"]["data_dir"] == [f"arc-easy={data_dir / 'arc-easy'}", f"obqa={copy}"]
    assert cli.main(["evaluate", str(out), "--methods", "map", "--limit", "4", "--ood_tasks", "obqa:test:5",
                     "--no_progress"]) == 0
    assert evaluated(out, "obqa")["data"]["source"] == f"local:{copy / 'test.jsonl'}"


def test_a_bad_pair_is_one_line(capsys, tmp_path):
    assert cli.main(["train", "--task", "arc-easy", "--data_dir", "arc-esay=/x", "--output_dir",
                     str(tmp_path / "r")]) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'arc-esay' is not a task name" in err[0]
