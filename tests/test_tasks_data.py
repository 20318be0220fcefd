"""Task loading: counts and labels from the real local copies (or the fixtures cut from them,
tests/data, whose sizes MANIFEST.json lists), split rules, carve-outs, subsets, provenance,
folder resolution, the hub path (with a stand-in for ``datasets.load_dataset``) and the
Hugging Face folder layout."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from swag_lora.tasks import (
    ENV_VAR,
    DataFormatError,
    DataNotFoundError,
    Row,
    TaskSplit,
    UnknownTaskError,
    list_tasks,
    load_task,
)
from swag_lora.tasks.mmlu import GROUPS, SUBJECTS
from swag_lora.tasks.registry import get_task
from swag_lora.tasks.splits import carve, carve_size, draw_subset
from tests.conftest import benchmark_data, fixture_rows

DATA, FULL = benchmark_data()  # the full local copies, else the fixtures cut from them

# (task, split) -> the release files that serve it (MMLU: one per subject)
_FILES = {
    ("obqa", "train"): ["obqa/train.jsonl"],
    ("obqa", "test"): ["obqa/test.jsonl"],
    **{("arc-easy", s): [f"arc-easy/{s}.json"] for s in ("train", "validation", "test")},
    ("arc-challenge", "train"): ["arc-challenge/ARC-Challenge-Train.jsonl"],
    ("arc-challenge", "test"): ["arc-challenge/ARC-Challenge-Dev.jsonl"],
}


def release_files(task: str, split: str) -> list[str]:
    if task.startswith("mmlu"):
        folder = {"train": "dev", "validation": "val", "test": "test"}[split]
        return [f"mmlu/{folder}/{s}_{folder}.csv" for s in get_task(task).subjects]
    if task.startswith("winogrande"):
        return ["winogrande/dev.jsonl" if split == "test" else f"winogrande/train_{task.split('-')[1]}.jsonl"]
    return _FILES[(task, split)]


def size(task: str, split: str, release: int) -> int:
    """``release`` (the count in the release) on the full data; the fixture's rows otherwise."""
    return release if FULL else sum(fixture_rows(f) for f in release_files(task, split))


def ids(rows) -> list[str]:
    return [row.id for row in rows]


# --- counts and labels from the real data --------------------------------------------------


@pytest.mark.parametrize(
    ("task", "split", "release"),
    [
        ("obqa", "test", 500),
        ("arc-easy", "train", 2251),
        ("arc-easy", "validation", 570),
        ("arc-easy", "test", 2376),
        ("arc-challenge", "test", 299),
        ("winogrande-xs", "test", 1267),
        ("winogrande-s", "test", 1267),
        ("winogrande-m", "test", 1267),
        ("winogrande-l", "test", 1267),
        ("mmlu", "train", 285),
        ("mmlu", "validation", 1531),
        ("mmlu", "test", 14042),
        ("mmlu-stem", "test", 3018),
        ("mmlu-humanities", "test", 4705),
        ("mmlu-social-sciences", "test", 3077),
        ("mmlu-other", "test", 3242),
    ],
)
def test_split_sizes_match_the_release(task, split, release):
    expected = size(task, split, release)
    loaded = load_task(task, split, DATA)
    assert loaded.size == len(loaded) == expected
    assert loaded.source.startswith("local:")
    assert len(set(ids(loaded))) == expected


@pytest.mark.parametrize(
    ("task", "total", "carved"),
    [
        ("obqa", 4957, 496),
        ("arc-challenge", 1119, 112),
        ("winogrande-xs", 160, 16),
        ("winogrande-s", 640, 64),
        ("winogrande-m", 2558, 256),
        ("winogrande-l", 10234, 1023),
    ],
)
def test_validation_is_carved_from_train_disjointly_and_deterministically(task, total, carved):
    if not FULL:
        total = size(task, "train", total)
        carved = carve_size(total, 0.1)
    train = load_task(task, "train", DATA)
    validation = load_task(task, "validation", DATA)
    assert validation.size == carved and train.size == total - carved
    assert not set(ids(train)) & set(ids(validation))
    assert "carved 10%" in validation.rule and "seed 0" in validation.rule
    assert "less the 10% validation carve" in train.rule
    again = load_task(task, "validation", DATA)
    assert ids(again) == ids(validation)


def test_mmlu_has_57_subjects_in_four_categories():
    on_disk = sorted(p.name[: -len("_test.csv")] for p in (DATA / "mmlu" / "test").glob("*_test.csv"))
    assert on_disk == list(SUBJECTS) and len(SUBJECTS) == 57
    assert sum(len(members) for members in GROUPS.values()) == 57
    test = load_task("mmlu", "test", DATA)
    assert {row.meta["subject"] for row in test} == set(SUBJECTS)
    assert "57 subjects" in test.rule


def test_mmlu_subject_names_and_lists():
    single = load_task("mmlu-high-school-physics", "test", DATA)
    assert single.task == "mmlu-high_school_physics"
    assert ids(single) == ids(load_task("MMLU-high_school_physics", "test", DATA))
    anatomy, virology = load_task("mmlu-anatomy", "test", DATA), load_task("mmlu-virology", "test", DATA)
    both = load_task("mmlu-anatomy+virology", "test", DATA)
    assert ids(both) == ids(anatomy) + ids(virology)
    mixed = load_task("mmlu-stem+anatomy", "validation", DATA)
    assert {row.meta["subject"] for row in mixed} == set(GROUPS["stem"]) | {"anatomy"}


def test_mmlu_csv_labels_and_files_without_final_newline():
    # abstract_algebra_test.csv: first row "Find the degree ... over Q.",0,4,2,6,B
    row = load_task("mmlu-abstract_algebra", "test", DATA)[0]
    assert row.question.startswith("Find the degree for the given field extension")
    assert row.choices == ("0", "4", "2", "6") and row.label == 1
    # Several dev files lack a final newline: their last row is still read.
    lacking = [p for p in (DATA / "mmlu" / "dev").glob("*_dev.csv") if not p.read_bytes().endswith(b"\n")]
    assert lacking
    subject = lacking[0].name[: -len("_dev.csv")]
    assert load_task(f"mmlu-{subject}", "train", DATA).size == 5


def test_label_mapping_spot_checks():
    obqa = {
        row.id: row for row in [*load_task("obqa", "train", DATA), *load_task("obqa", "validation", DATA)]
    }
    row = obqa["7-980"]  # answerKey D
    assert row.label == 3 and row.choices[row.label] == "plants sprouting, blooming and wilting"
    assert row.question == "The sun is responsible for"

    easy = {row.id: row for row in load_task("arc-easy", "test", DATA)}
    assert (
        easy["NYSEDREGENTS_2015_8_28"].choices[easy["NYSEDREGENTS_2015_8_28"].label] == "elements"
    )  # key "2"
    p4 = easy["TIMSS_1995_8_P4"]  # five choices, key E
    assert len(p4.choices) == 5 and p4.label == 4
    assert p4.choices[4] == "It is using less energy than when it is active."
    first = load_task("arc-easy", "train", DATA)[0]  # Mercury_7220990, key B
    assert first.id == "Mercury_7220990" and first.label == 1
    assert first.choices[1] == "a bacterial population in the bloodstream"

    challenge = {row.id: row for row in load_task("arc-challenge", "test", DATA)}
    assert challenge["NYSEDREGENTS_2014_8_20"].label == 1  # labels 1-4, key "2"
    assert challenge["NYSEDREGENTS_2014_8_20"].meta["choice_labels"] == ("1", "2", "3", "4")
    assert (
        len(challenge["NYSEDREGENTS_2014_4_4"].choices) == 3 and challenge["NYSEDREGENTS_2014_4_4"].label == 0
    )
    assert len(challenge["TIMSS_2003_8_pg29"].choices) == 5 and challenge["TIMSS_2003_8_pg29"].label == 4

    wino = load_task("winogrande-s", "test", DATA)[0]
    assert wino.id == "3FCO4VKOZ4BJQ6IFC0VAIBK4KTWE7U-2"
    assert wino.choices == ("Sarah", "Maria") and wino.label == 1
    assert wino.question == "Sarah was a much better surgeon than Maria so _ always got the easier cases."


def test_arc_keeps_every_question_whatever_its_number_of_choices():
    train = [*load_task("arc-challenge", "train", DATA), *load_task("arc-challenge", "validation", DATA)]
    assert len(train) == size("arc-challenge", "train", 1119)
    assert {len(row.choices) for row in train} == {3, 4, 5}
    easy = load_task("arc-easy", "train", DATA)
    assert easy.max_choices == 5 and easy.to_dict()["max_choices"] == 5


# --- provenance, subsets --------------------------------------------------------------------


def test_provenance_is_recorded_without_rows():
    test = load_task("arc-challenge", "test", DATA)
    record = test.to_dict()
    assert record["task"] == "arc-challenge" and record["split"] == "test"
    assert record["size"] == size("arc-challenge", "test", 299)
    assert record["source"] == f"local:{DATA / 'arc-challenge' / 'ARC-Challenge-Dev.jsonl'}"
    assert "ARC-Challenge-Dev.jsonl" in record["rule"] and "used as test" in record["rule"]
    assert json.loads(json.dumps(record)) == record  # plain data for a run config
    assert "rows" not in record and len(json.dumps(record)) < 1000
    assert isinstance(test, TaskSplit) and isinstance(test[0], Row)
    assert isinstance(test[0].choices, tuple) and isinstance(test[0].label, int)


def test_subset_depends_only_on_subset_seed():
    full = load_task("arc-easy", "test", DATA)
    a = load_task("arc-easy", "test", DATA, limit=100, subset_seed=0)
    b = load_task("arc-easy", "test", DATA, limit=100, subset_seed=0)
    c = load_task("arc-easy", "test", DATA, limit=100, subset_seed=1)
    assert a.size == 100 and ids(a) == ids(b) and ids(a) != ids(c)
    position = {row_id: i for i, row_id in enumerate(ids(full))}
    assert [position[i] for i in ids(a)] == sorted(position[i] for i in ids(a))  # file order
    assert set(ids(load_task("arc-easy", "test", DATA, limit=40, subset_seed=0))) <= set(ids(a))
    n = size("arc-easy", "test", 2376)
    assert n > 200 and a.to_dict()["available"] == n and a.to_dict()["limit"] == 100
    assert load_task("arc-easy", "test", DATA, limit=10_000).size == n


def _row(i: int) -> Row:
    return Row(id=f"r{i}", question=f"question {i}", choices=(f"a{i}", f"b{i}"), label=i % 2)


def test_carve_is_order_independent_seeded_and_complete():
    rows = [_row(i) for i in range(200)]
    rest, carved = carve(rows, 0.1, seed=0)
    assert len(carved) == 20 and len(rest) == 180
    assert set(ids(rest)) | set(ids(carved)) == set(ids(rows)) and not set(ids(rest)) & set(ids(carved))
    shuffled = rows[:]
    random.Random(5).shuffle(shuffled)
    assert set(ids(carve(shuffled, 0.1, seed=0)[1])) == set(ids(carved))
    assert set(ids(carve(rows, 0.1, seed=1)[1])) != set(ids(carved))
    assert ids(carved) == sorted(ids(carved), key=lambda r: int(r[1:]))  # original order kept


def test_subset_draw_is_nested_and_order_independent():
    rows = [_row(i) for i in range(300)]
    small, large = draw_subset(rows, 30, seed=3), draw_subset(rows, 90, seed=3)
    assert set(ids(small)) <= set(ids(large))
    assert set(ids(draw_subset(rows[::-1], 30, seed=3))) == set(ids(small))


# --- names, folders, errors -------------------------------------------------------------------


def test_registry_lists_the_required_tasks():
    names = list_tasks()
    for name in [
        "obqa",
        "arc-easy",
        "arc-challenge",
        "cqa",
        "mmlu",
        "mmlu-stem",
        "mmlu-humanities",
        "mmlu-social-sciences",
        "mmlu-other",
        "winogrande-xs",
        "winogrande-s",
        "winogrande-m",
        "winogrande-l",
        "boolq",
    ]:
        assert name in names
    assert "mmlu-anatomy" in list_tasks(include_mmlu_subjects=True)


def test_unknown_task_and_split_are_clear_errors():
    with pytest.raises(UnknownTaskError, match="known tasks: obqa, arc-easy") as info:
        load_task("obqa-typo", "test")
    assert isinstance(info.value, ValueError)
    with pytest.raises(UnknownTaskError):
        load_task("mmlu-not_a_subject", "test")
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        load_task("obqa", "dev")
    with pytest.raises(ValueError, match="unknown source"):
        load_task("obqa", "test", source="web")


def test_missing_folders_say_what_was_looked_for(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(DataNotFoundError, match=ENV_VAR) as info:
        load_task("obqa", "test", source="local")
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(DataNotFoundError, match="is not a folder"):
        load_task("obqa", "test", tmp_path / "absent")
    with pytest.raises(DataNotFoundError, match="test.jsonl.*obqa or openbookqa"):
        load_task("obqa", "test", tmp_path)


def test_data_dir_may_be_the_root_or_the_task_folder_and_env_sets_the_default(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    by_root = load_task("winogrande-s", "train", DATA)
    by_folder = load_task("winogrande-s", "train", DATA / "winogrande")
    monkeypatch.setenv(ENV_VAR, str(DATA))
    by_env = load_task("winogrande-s", "train", source="local")
    assert ids(by_root) == ids(by_folder) == ids(by_env)
    with pytest.raises(DataNotFoundError, match="train_xl.jsonl"):
        load_task("winogrande-xl", "train")
    with pytest.raises(DataNotFoundError, match="cqa or commonsense_qa"):
        load_task("cqa", "test", DATA)


# --- the hub path, with a stand-in for datasets.load_dataset ---------------------------------


class FakeHub:
    """Serves in-memory splits in the hub's schemas; records what was asked for."""

    def __init__(self, splits: dict[tuple, list[dict]]):
        self.splits = splits
        self.calls: list[tuple] = []

    def __call__(self, name, config=None, split=None, **kwargs):
        self.calls.append((name, config, split))
        return list(self.splits[(name, config, split)])


def _ai2_to_hf(record: dict) -> dict:
    choices = record["question"]["choices"]
    return {
        "id": record["id"],
        "question": record["question"]["stem"],
        "choices": {"text": [c["text"] for c in choices], "label": [c["label"] for c in choices]},
        "answerKey": record["answerKey"],
    }


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_hub_and_local_copy_serve_the_same_questions(monkeypatch):
    import datasets

    folder = DATA / "arc-challenge"
    hub = FakeHub(
        {
            ("allenai/ai2_arc", "ARC-Challenge", "train"): [
                _ai2_to_hf(r)
                for r in _jsonl(folder / "ARC-Challenge-Train.jsonl")[::-1]  # another order
            ],
            ("allenai/ai2_arc", "ARC-Challenge", "validation"): [
                _ai2_to_hf(r) for r in _jsonl(folder / "ARC-Challenge-Dev.jsonl")
            ],
        }
    )
    monkeypatch.setattr(datasets, "load_dataset", hub)
    for split in ("train", "validation", "test"):
        remote = load_task("arc-challenge", split, source="hub")
        local = load_task("arc-challenge", split, DATA)
        assert set(ids(remote)) == set(ids(local)), split
        assert [r.label for r in sorted(remote, key=lambda r: r.id)] == [
            r.label for r in sorted(local, key=lambda r: r.id)
        ]
    test = load_task("arc-challenge", "test", source="hub")
    assert test.source == "hub:allenai/ai2_arc/ARC-Challenge/validation"
    assert test.size == size("arc-challenge", "test", 299)
    assert (
        load_task("arc-challenge", "validation", source="hub").source
        == "hub:allenai/ai2_arc/ARC-Challenge/train"
    )
    assert ("allenai/ai2_arc", "ARC-Challenge", "test") not in hub.calls


def test_hub_schemas_of_every_task(monkeypatch):
    import datasets

    obqa = [
        {
            "id": f"o{i}",
            "question_stem": f"stem {i}",
            "choices": {"text": ["w", "x", "y", "z"], "label": list("ABCD")},
            "answerKey": "C",
        }
        for i in range(20)
    ]
    cqa = [
        {
            "id": f"c{i}",
            "question": f"q {i}",
            "question_concept": "thing",
            "choices": {"label": list("ABCDE"), "text": ["v", "w", "x", "y", "z"]},
            "answerKey": "E",
        }
        for i in range(20)
    ]
    wino = [
        {"sentence": f"Tom {i} beat Ann so _ won.", "option1": "Tom", "option2": "Ann", "answer": "1"}
        for i in range(20)
    ]
    boolq = [{"question": f"is it {i}", "answer": i % 2 == 0, "passage": f"passage {i}"} for i in range(20)]
    mmlu = [
        {"question": f"m {i}", "subject": "anatomy", "choices": ["a", "b", "c", "d"], "answer": 2}
        for i in range(7)
    ]
    hub = FakeHub(
        {
            ("allenai/openbookqa", "main", "test"): obqa,
            ("tau/commonsense_qa", None, "validation"): cqa,
            ("tau/commonsense_qa", None, "train"): cqa,
            ("allenai/winogrande", "winogrande_m", "validation"): wino,
            ("google/boolq", None, "validation"): boolq,
            ("google/boolq", None, "train"): boolq,
            ("cais/mmlu", "anatomy", "test"): mmlu,
        }
    )
    monkeypatch.setattr(datasets, "load_dataset", hub)
    monkeypatch.delenv(ENV_VAR, raising=False)

    test = load_task("obqa", "test")  # auto: no local folder, so the hub
    assert test.source == "hub:allenai/openbookqa/main/test" and test.rule == "hub split test"
    assert test[0].label == 2 and test[0].question == "stem 0" and test[0].meta["add_period"]

    cqa_test = load_task("cqa", "test", source="hub")
    assert cqa_test.source == "hub:tau/commonsense_qa/default/validation" and len(cqa_test[0].choices) == 5
    assert cqa_test[0].label == 4 and cqa_test[0].meta["concept"] == "thing"
    cqa_val = load_task("cqa", "validation", source="hub")
    assert cqa_val.size == 2 and "carved 10% (2 of 20) from hub split train" in cqa_val.rule

    wino_test = load_task("winogrande-m", "test", source="hub")
    assert wino_test[3].id == "dev-3" and wino_test[3].choices == ("Tom", "Ann") and wino_test[3].label == 0

    boolq_test = load_task("boolq", "test", source="hub")
    assert boolq_test.size == 20 and "no test split" in boolq_test.rule
    assert boolq_test[0].choices == ("yes", "no") and boolq_test[0].label == 0 and boolq_test[1].label == 1
    assert boolq_test[1].meta["passage"] == "passage 1"

    anatomy = load_task("mmlu-anatomy", "test", source="hub")
    assert (
        anatomy.source == "hub:cais/mmlu/anatomy/test"
        and anatomy[0].label == 2
        and anatomy[0].id == "anatomy/test/0"
    )


def test_hub_rows_are_validated_too(monkeypatch):
    import datasets

    bad = [{"sentence": "A _ b.", "option1": "x", "option2": "y", "answer": ""}]  # unlabelled test rows
    monkeypatch.setattr(
        datasets, "load_dataset", FakeHub({("allenai/winogrande", "winogrande_s", "validation"): bad})
    )
    with pytest.raises(
        DataFormatError, match=r"hub:allenai/winogrande/winogrande_s/validation, record 0: field 'answer'"
    ):
        load_task("winogrande-s", "test", source="hub")


# --- the Hugging Face folder layout and the other release formats ----------------------------


def test_hugging_face_layout_reads_as_the_release_files(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = DATA / "arc-challenge"
    target = tmp_path / "arc-challenge" / "ARC-Challenge"
    target.mkdir(parents=True)
    train = [_ai2_to_hf(r) for r in _jsonl(folder / "ARC-Challenge-Train.jsonl")]
    half = len(train) // 2
    pq.write_table(pa.Table.from_pylist(train[:half]), target / "train-00000-of-00002.parquet")
    pq.write_table(pa.Table.from_pylist(train[half:]), target / "train-00001-of-00002.parquet")
    with open(target / "validation.jsonl", "w") as f:
        for record in _jsonl(folder / "ARC-Challenge-Dev.jsonl"):
            f.write(json.dumps(_ai2_to_hf(record)) + "\n")
    for split in ("train", "validation", "test"):
        hf = load_task("arc-challenge", split, tmp_path)
        release = load_task("arc-challenge", split, DATA)
        assert ids(hf) == ids(release) and [r.label for r in hf] == [r.label for r in release]
    assert "train-00000-of-00002.parquet" in load_task("arc-challenge", "train", tmp_path).rule


def test_commonsenseqa_and_boolq_release_files(tmp_path):
    cqa = tmp_path / "cqa"
    cqa.mkdir()
    with open(cqa / "dev_rand_split.jsonl", "w") as f:
        for i in range(4):
            choices = [{"label": lab, "text": f"t{i}{lab}"} for lab in "ABCDE"]
            question = {"question_concept": "c", "choices": choices, "stem": f"stem {i}"}
            f.write(json.dumps({"answerKey": "ABCDE"[i], "id": f"id{i}", "question": question}) + "\n")
    test = load_task("cqa", "test", tmp_path)
    assert [r.label for r in test] == [0, 1, 2, 3] and test[2].choices[2] == "t2C"
    assert test.rule.startswith("local file dev_rand_split.jsonl")

    boolq = tmp_path / "boolq"
    boolq.mkdir()
    rows = [
        {"question": "does it rain", "title": "Rain", "answer": flag, "passage": "It rains."}
        for flag in (True, False)
    ]
    (boolq / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    test = load_task("boolq", "test", tmp_path)
    assert [r.label for r in test] == [0, 1] and [r.id for r in test] == ["dev-0", "dev-1"]
    assert test[0].meta["title"] == "Rain"


def test_skip_bad_rows_counts_what_it_left_out(tmp_path):
    folder = tmp_path / "winogrande"
    folder.mkdir()
    good = {"qID": "q", "sentence": "A _ b.", "option1": "x", "option2": "y", "answer": "2"}
    lines = [json.dumps({**good, "qID": f"q{i}"}) for i in range(6)]
    lines[2] = "{broken"
    lines[4] = json.dumps({**good, "qID": "q4", "answer": "3"})
    (folder / "dev.jsonl").write_text("\n".join(lines))
    with pytest.raises(DataFormatError) as info:
        load_task("winogrande-s", "test", tmp_path)
    assert info.value.line == 3 and info.value.path.endswith("dev.jsonl")
    with pytest.warns(UserWarning, match="skipped 2 bad rows"):
        loaded = load_task("winogrande-s", "test", tmp_path, skip_bad_rows=True)
    assert loaded.size == 4 and loaded.skipped == 2 and loaded.to_dict()["skipped"] == 2
    assert "line 3" in loaded.problems[0] and "line 5: field 'answer'" in loaded.problems[1]


def test_duplicate_ids_are_reported(tmp_path):
    record = {"qID": "same", "sentence": "A _ b.", "option1": "x", "option2": "y", "answer": "1"}
    (tmp_path / "dev.jsonl").write_text(
        json.dumps(record) + "\n" + json.dumps({**record, "option1": "z"}) + "\n"
    )
    with pytest.raises(
        DataFormatError, match=r"line 2: field 'qID': duplicate id 'same' \(first at .*line 1\)"
    ):
        load_task("winogrande-m", "test", tmp_path)


def test_hugging_face_layouts_of_mmlu_and_winogrande(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    anatomy = tmp_path / "mmlu" / "anatomy"
    anatomy.mkdir(parents=True)
    records = [
        {"question": f"q{i}", "subject": "anatomy", "choices": ["a", "b", "c", "d"], "answer": i % 4}
        for i in range(6)
    ]
    pq.write_table(pa.Table.from_pylist(records), anatomy / "test-00000-of-00001.parquet")
    test = load_task("mmlu-anatomy", "test", tmp_path)
    assert [r.label for r in test] == [0, 1, 2, 3, 0, 1] and test[5].id == "anatomy/test/5"
    assert test.rule.startswith("local files <subject>/test-*.parquet")

    config = tmp_path / "winogrande" / "winogrande_m"
    config.mkdir(parents=True)
    rows = [{"sentence": f"A{i} _ b.", "option1": "x", "option2": "y", "answer": "2"} for i in range(30)]
    pq.write_table(pa.Table.from_pylist(rows), config / "train-00000-of-00001.parquet")
    train, validation = (
        load_task("winogrande-m", "train", tmp_path),
        load_task("winogrande-m", "validation", tmp_path),
    )
    assert train.size == 27 and validation.size == 3 and train[0].label == 1
    assert not set(ids(train)) & set(ids(validation))


def test_the_split_table_command_lists_sizes_and_rules():
    from swag_lora.tasks.__main__ import split_table

    lines = split_table(["arc-challenge", "cqa"], DATA, source="local")
    assert any(f"| arc-challenge | test | {size('arc-challenge', 'test', 299):,} |" in line for line in lines)
    assert any(line.startswith("| cqa | test | - | not loaded | DataNotFoundError") for line in lines)
