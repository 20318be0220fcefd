"""Prediction inputs are prompted like the task the run was trained on."""

import io

import pytest

from swag_lora.lm.encoding import encode_rows
from swag_lora.prediction.inputs import input_format, read_inputs, rows_from_records
from swag_lora.tasks import CustomTask, DataFormatError, Row, TaskDefinitionError


def config_for(task, definition=None):
    """The run config of a run trained on ``task`` (as far as inputs look at it)."""
    from swag_lora.runs.config import RunConfig

    train = {"task": task}
    if definition:
        train["definition"] = definition
    return RunConfig.from_dict({"data": {"task": task}, "splits": {"train": train}})


def test_builtin_runs_read_question_and_choices_in_their_task_style():
    mapping, meta = input_format(config_for("obqa"))
    assert mapping.columns(with_answer=False) == {"question_column": "question", "choices_column": "choices"}
    assert meta == {"task": "obqa", "style": "question", "add_period": True}

    rows = rows_from_records([{"question": "Sky colour?", "choices": ["blue", "red"], "id": 7, "answer": "blue"},
                              {"question": "Grass colour?", "choices": ["green", "pink"]}], config_for("arc-easy"))
    assert [(r.id, r.label) for r in rows] == [("7", 0), ("input-1", -1)]
    assert rows[0].meta["style"] == "question"

    wino = rows_from_records([{"question": "The cup fell because _ was heavy.", "choices": ["it", "he"]}],
                             config_for("winogrande-s"))
    assert wino[0].meta["style"] == "fill-blank"
    with pytest.raises(DataFormatError, match="no blank '_'"):
        rows_from_records([{"question": "No blank here.", "choices": ["a", "b"]}], config_for("winogrande-s"))

    boolq = rows_from_records([{"question": "is it wet", "choices": ["yes", "no"], "passage": "Water is wet."}],
                              config_for("boolq"))
    assert boolq[0].meta["passage"] == "Water is wet." and boolq[0].meta["style"] == "passage"
    with pytest.raises(DataFormatError, match="field 'passage': missing"):
        rows_from_records([{"question": "is it wet", "choices": ["yes", "no"]}], config_for("boolq"))


def test_a_row_from_input_encodes_as_the_task_row(tokenizer):
    from swag_lora.tasks.errors import Where
    from swag_lora.tasks.parsing import parse_multiple_choice

    record = {"id": "x", "question": "Which is a gas?", "choices": {"text": ["iron", "helium"], "label": ["A", "B"]},
              "answerKey": "B"}
    task_row = parse_multiple_choice(record, Where("f"), task="obqa", add_period=True)
    (row,) = rows_from_records([{"id": "x", "question": "Which is a gas?", "choices": ["iron", "helium"]}],
                               config_for("obqa"))
    for mode in ("cloze", "letter"):
        a, b = encode_rows([task_row], tokenizer, mode), encode_rows([row], tokenizer, mode)
        assert {k: v for k, v in a[0].items() if k != "label"} == {k: v for k, v in b[0].items() if k != "label"}


def test_custom_runs_read_their_own_columns_from_files_and_stdin(tmp_path):
    task = CustomTask.from_options({"name": "reviews", "data_files": {"train": "reviews.csv"}, "question_column": "text",
                                    "label_words": ["negative", "positive"], "answer_column": "label"},
                                   base_dir=_reviews(tmp_path))
    config = config_for("custom", task.to_dict())
    rows = read_inputs(tmp_path / "reviews.csv", config)
    assert [(r.question, r.choices, r.label) for r in rows] == [("Great film", ("negative", "positive"), 1),
                                                                ("Awful", ("negative", "positive"), -1)]
    stdin = io.BytesIO(b'{"text": "Fine"}\n\n{"text": "Bad", "id": "b"}\n')
    rows = read_inputs("-", config, stdin=stdin)
    assert [(r.id, r.question, r.label) for r in rows] == [("input-0", "Fine", -1), ("b", "Bad", -1)]
    with pytest.raises(DataFormatError, match=r"<stdin>, line 1: syntax: invalid JSON"):
        read_inputs("-", config, stdin=io.BytesIO(b"{not json\n"))
    with pytest.raises(TaskDefinitionError, match="inputs <stdin>: the column mapping names columns the data does "
                                                  "not have: question_column 'text'; its columns are: review"):
        read_inputs("-", config, stdin=io.BytesIO(b'{"review": "Fine"}\n'))
    assert rows_from_records([Row("r", "q", ("a", "b"), 0)], config)[0].id == "r"  # rows pass through


def _reviews(folder):
    (folder / "reviews.csv").write_text("text,label\nGreat film,positive\nAwful,\n")
    return folder
