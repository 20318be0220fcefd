"""Custom tasks: data files plus a column mapping, in every format, with clear errors."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from swag_lora.tasks import (
    ColumnMapping,
    CustomTask,
    DataFormatError,
    DataNotFoundError,
    TaskDefinitionError,
    load_task,
)
from swag_lora.tasks.custom import resolve_task, run_task

QUESTIONS = [
    ("q1", "Which planet is known as the red planet?", ["Venus", "Mars", "Jupiter", "Saturn"], 1),
    ("q2", "What do bees make?", ["milk", "silk", "honey", "wax paper"], 2),
    ("q3", "Water freezes at what temperature in Celsius?", ["0", "10", "50", "100"], 0),
    ("q4", "Which is a mammal?", ["shark", "trout", "eel", "whale"], 3),
]


def write_csv(path, header, rows):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def mc_csv(path, answer=lambda q: "ABCD"[q[3]]):
    return write_csv(path, ["id", "question", "A", "B", "C", "D", "answer"],
                     [[q[0], q[1], *q[2], answer(q)] for q in QUESTIONS])


def expected_rows():
    return [(q[0], q[1], tuple(q[2]), q[3]) for q in QUESTIONS]


def as_tuples(split):
    return [(r.id, r.question, r.choices, r.label) for r in split]


MC = dict(id_column="id", choices_columns=("A", "B", "C", "D"))


def test_the_same_questions_from_csv_jsonl_json_and_parquet(tmp_path):
    csv_task = CustomTask(name="quiz", data_files={"test": (str(mc_csv(tmp_path / "q.csv")),)}, mapping=ColumnMapping(**MC))
    assert as_tuples(load_task(csv_task, "test")) == expected_rows()

    # JSON lines: a list of choices, a 0-based index as the answer
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text("".join(json.dumps({"id": q[0], "question": q[1], "choices": q[2], "answer": q[3]}) + "\n"
                             for q in QUESTIONS))
    task = CustomTask(name="quiz", data_files={"test": (str(jsonl),)}, mapping=ColumnMapping(id_column="id"))
    assert as_tuples(load_task(task, "test")) == expected_rows()

    # a JSON array: the answer as its text, the question under another name
    array = tmp_path / "q.json"
    array.write_text(json.dumps([{"key": q[0], "prompt": q[1], "options": q[2], "gold": q[2][q[3]]} for q in QUESTIONS]))
    mapping = ColumnMapping(question_column="prompt", choices_column="options", answer_column="gold", id_column="key")
    assert as_tuples(load_task(CustomTask(name="quiz", data_files={"test": (str(array),)}, mapping=mapping), "test")) \
        == expected_rows()

    # parquet with hub-style choice objects; letters found by label
    table = pa.Table.from_pylist([{"id": q[0], "question": q[1],
                                   "choices": {"text": q[2], "label": ["1", "2", "3", "4"]},
                                   "answerKey": str(q[3] + 1)} for q in QUESTIONS])
    pq.write_table(table, tmp_path / "q.parquet")
    mapping = ColumnMapping(answer_column="answerKey", answer_format="letter", id_column="id")
    rows = load_task(CustomTask(name="quiz", data_files={"test": (str(tmp_path / "q.parquet"),)}, mapping=mapping), "test")
    assert as_tuples(rows) == expected_rows()
    assert rows[0].meta["choice_labels"] == ("1", "2", "3", "4")


def test_label_words_and_answer_formats(tmp_path):
    path = tmp_path / "reviews.tsv"
    path.write_text("text\tlabel\tstars\nLoved it\t1\t5\nHated it\t0\t1\nGreat\tpositive\t4\nBad\tNEGATIVE\t2\n")
    task = CustomTask(name="reviews", data_files={"test": (str(path),)},
                      mapping=ColumnMapping(question_template="Review: {text} ({stars} stars)",
                                            label_words=("negative", "positive"), answer_column="label"))
    rows = load_task(task, "test")
    assert [r.label for r in rows] == [1, 0, 1, 0]  # index, index, text, text in another case
    assert rows[0].question == "Review: Loved it (5 stars)" and rows[0].choices == ("negative", "positive")
    assert [r.id for r in rows] == ["test-0", "test-1", "test-2", "test-3"]  # positional ids

    one_based = write_csv(tmp_path / "b.csv", ["question", "A", "B", "answer"], [["x?", "yes", "no", "2"]])
    mapping = ColumnMapping(choices_columns=("A", "B"), answer_format="index1")
    assert load_task(CustomTask(name="b", data_files={"test": (str(one_based),)}, mapping=mapping), "test")[0].label == 1


def test_missing_splits_are_carved_from_train_and_recorded(tmp_path):
    rows = [[f"Question number {i}?", "yes", "no", "A" if i % 3 else "B"] for i in range(40)]
    path = write_csv(tmp_path / "train.csv", ["question", "A", "B", "answer"], rows)
    task = CustomTask(name="yesno", data_files={"train": (str(path),)}, mapping=ColumnMapping(choices_columns=("A", "B")))
    splits = {s: load_task(task, s) for s in ("train", "validation", "test")}
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [32, 4, 4]
    questions = {s: {r.question for r in rows} for s, rows in splits.items()}
    assert not questions["train"] & questions["validation"] and not questions["train"] & questions["test"]
    assert not questions["validation"] & questions["test"]
    assert len(questions["train"] | questions["validation"] | questions["test"]) == 40
    assert "carved 10% (4 of 40)" in splits["test"].rule and "seed 0" in splits["test"].rule
    assert "less the 10% test carve" in splits["train"].rule and "validation carve" in splits["train"].rule
    # the record re-creates the task, and the same carve comes back
    record = splits["test"].to_dict()
    assert record["definition"]["data_files"] == {"train": [str(path)]}
    again = load_task(CustomTask.from_dict(record["definition"]), "test")
    assert as_tuples(again) == as_tuples(splits["test"])
    assert [r.question for r in load_task(task, "test", limit=2)] == [r.question for r in load_task(task, "test", limit=2)]

    # with its own validation file, only test is carved (from the whole of train)
    val = write_csv(tmp_path / "val.csv", ["question", "A", "B", "answer"], [["Own?", "yes", "no", "A"]])
    both = CustomTask(name="yesno", data_files={"train": (str(path),), "validation": (str(val),)},
                      mapping=ColumnMapping(choices_columns=("A", "B")))
    assert len(load_task(both, "validation")) == 1 and len(load_task(both, "train")) == 36
    only_test = CustomTask(name="yesno", data_files={"test": (str(val),)}, mapping=ColumnMapping(choices_columns=("A", "B")))
    with pytest.raises(DataNotFoundError, match="no train data.*data_files train=FILE"):
        load_task(only_test, "train")


def test_task_file_with_relative_paths(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    mc_csv(folder / "quiz.csv")
    (folder / "science_quiz.yaml").write_text(
        "data_files:\n  train: quiz.csv\n  test: [quiz.csv]\nid_column: id\nchoices_columns: [A, B, C, D]\nadd_period: true\n"
    )
    monkeypatch.chdir(tmp_path)  # paths are read from the task file's folder, not the current one
    test = load_task("project/science_quiz.yaml", "test")
    assert test.task == "science_quiz" and as_tuples(test) == expected_rows()
    assert test[0].meta["add_period"] is True
    assert test.definition["data_files"]["test"] == [str(folder / "quiz.csv")]
    # options given with the file win over it
    renamed = resolve_task("project/science_quiz.yaml", {"name": "renamed", "question_column": None})
    assert renamed.name == "renamed"


def test_resolving_task_arguments(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mc_csv(tmp_path / "quiz.csv")
    task = resolve_task("custom", {"data_files": ["train=quiz.csv", "test=quiz.csv"], "choices_columns": ["A", "B", "C", "D"],
                                   "id_column": "id", "label_words": None})
    assert task.data_files["train"] == (str(tmp_path / "quiz.csv"),)
    assert resolve_task("arc-easy", {"question_column": None, "label_words": []}) == "arc-easy"
    with pytest.raises(TaskDefinitionError, match="question_column define a custom task; task 'arc-easy' is built in"):
        resolve_task("arc-easy", {"question_column": "text"})
    with pytest.raises(TaskDefinitionError, match="task 'custom' needs data: --data_files"):
        resolve_task("custom", {})
    with pytest.raises(TaskDefinitionError, match="task 'custom' needs its definition"):
        load_task("custom", "test")
    definition = task.to_dict()
    assert run_task("custom", definition, "custom") == task and run_task("arc-easy", definition, "custom") == "arc-easy"
    assert run_task("custom", None, "arc-easy") == "custom"  # a run of a built-in task has no custom task


@pytest.mark.parametrize(
    "options,message",
    [
        ({"choices_columns": ("A", "B"), "label_words": ("x", "y")}, "give one of choices_columns, choices_column and "
                                                                     "label_words, not choices_columns and label_words"),
        ({"choices_columns": ("A",)}, "choices_columns needs at least 2 columns"),
        ({"label_words": ("Yes", "yes")}, "label_words must differ"),
        ({"answer_format": "roman"}, "answer_format must be one of auto, index, index1, letter, text"),
        ({"choices_columns": ("A", "answer")}, "column 'answer' is named twice: by choices_columns[1] and by answer_column"),
        ({"question_column": "q", "question_template": "{q}"}, "not both"),
        ({"question_template": "Just text"}, "names no column"),
        ({"question_column": ""}, "question_column must name a column"),
    ],
)
def test_impossible_mappings_are_refused_at_once(options, message):
    with pytest.raises(TaskDefinitionError) as err:
        ColumnMapping(**options)
    assert message in str(err.value)


def test_columns_the_data_lacks_are_named_with_the_columns_it_has(tmp_path):
    path = mc_csv(tmp_path / "quiz.csv")
    task = CustomTask(name="quiz", data_files={"test": (str(path),)},
                      mapping=ColumnMapping(question_column="text", choices_columns=("A", "B", "C", "E"), answer_column="gold"))
    with pytest.raises(TaskDefinitionError) as err:
        load_task(task, "test")
    text = str(err.value)
    assert str(path) in text
    assert "question_column 'text'; choices_columns[3] 'E'; answer_column 'gold'" in text
    assert "its columns are: id, question, A, B, C, D, answer" in text
    # a task file: unknown options, bad splits, missing files
    bad = tmp_path / "bad.yaml"
    bad.write_text("data_files: {train: quiz.csv}\nquestion_colum: text\n")
    with pytest.raises(TaskDefinitionError, match=r"bad.yaml: unknown custom task option\(s\) question_colum"):
        load_task(bad, "train")
    bad.write_text("data_files: {training: quiz.csv}\n")
    with pytest.raises(TaskDefinitionError, match="unknown split 'training'"):
        load_task(bad, "train")
    bad.write_text("data_files: {train: nowhere.csv}\n")
    with pytest.raises(DataNotFoundError, match="data file for split train not found: .*nowhere.csv"):
        load_task(bad, "train")
    bad.write_text("data_files: {train: quiz.txt}\n")
    with pytest.raises(TaskDefinitionError, match="no reader for .txt"):
        load_task(bad, "train")
    bad.write_text("name: arc-easy\ndata_files: {train: quiz.csv}\n")
    with pytest.raises(TaskDefinitionError, match="'arc-easy' is a built-in task's"):
        load_task(bad, "train")
    with pytest.raises(DataNotFoundError, match="task file not found"):
        load_task(tmp_path / "missing.yaml", "train")


def test_bad_rows_name_file_line_and_field(tmp_path):
    rows = [["q1", "Fine?", "a", "b", "A"],
            ["q2", "Letter out of range?", "a", "b", "C"],
            ["q3", "Ambiguous?", "B", "A", "A"],
            ["q4", "", "a", "b", "A"],
            ["q1", "Duplicate id?", "a", "b", "B"],
            ["q6", "Too few fields", "a"]]
    path = write_csv(tmp_path / "rows.csv", ["id", "question", "A", "B", "answer"], rows)
    task = CustomTask(name="rows", data_files={"test": (str(path),)},
                      mapping=ColumnMapping(id_column="id", choices_columns=("A", "B")))
    with pytest.raises(DataFormatError) as err:
        load_task(task, "test")
    assert str(err.value).startswith(f"{path}, line 3: field 'answer': answer 'C' is not a choice's text, a label (A, B)")
    with pytest.warns(UserWarning, match="skipped 5 bad rows"):
        split = load_task(task, "test", skip_bad_rows=True)
    assert [r.id for r in split] == ["q1"] and split.skipped == 5
    problems = "\n".join(split.problems)
    assert "line 4: field 'answer': answer 'A' is ambiguous (the text of choice 1, the label of choice 0)" in problems
    assert "line 5: field 'question': empty text" in problems
    assert "line 6: field 'id': duplicate id 'q1' (first at " in problems
    assert "line 7: field '<row>': expected 5 fields (id, question, A, B, answer), found 3" in problems

    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text(json.dumps({"question": "Q?", "choices": ["a", "b"], "answer": 5}) + "\n"
                     + json.dumps({"question": "Q?", "choices": "not a list", "answer": 0}) + "\n")
    task = CustomTask(name="rows", data_files={"test": (str(jsonl),)})
    with pytest.raises(DataFormatError, match=r"rows.jsonl, line 1: field 'answer': index 5 is outside 0..1"):
        load_task(task, "test")


def test_hub_dataset_with_a_stand_in(monkeypatch):
    import datasets

    records = {"train": [{"sentence": f"text {i}", "label": i % 2} for i in range(20)],
               "test": [{"sentence": "held out", "label": 1}]}
    calls = []

    def fake_load(name, config=None, split=None):
        calls.append((name, config, split))
        return datasets.Dataset.from_list(records[split])

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    task = CustomTask.from_options({"hub_dataset": "someone/sentiment", "question_column": "sentence",
                                    "label_words": ["negative", "positive"], "answer_column": "label"})
    assert task.data_files == {"train": ("train",), "test": ("test",)}
    test = load_task(task, "test")
    assert test.source == "hub:someone/sentiment/default/test" and test[0].label == 1
    assert len(load_task(task, "validation")) == 2 and len(load_task(task, "train")) == 18
    bad = CustomTask.from_options({"hub_dataset": "someone/sentiment", "question_column": "text",
                                   "label_words": ["negative", "positive"], "answer_column": "label"})
    with pytest.raises(TaskDefinitionError, match="question_column 'text'; its columns are: sentence, label"):
        load_task(bad, "test")


def test_the_readme_example_task_loads():
    from pathlib import Path

    task_file = Path(__file__).resolve().parents[1] / "examples" / "reviews" / "reviews.yaml"
    sizes = {s: len(load_task(task_file, s)) for s in ("train", "validation", "test")}
    assert sizes == {"train": 72, "validation": 8, "test": 40}
    row = load_task(task_file, "test")[0]
    assert row.choices == ("negative", "positive") and row.question.startswith("Review: ")
    assert row.question.endswith("\nIs this review positive or negative?")

