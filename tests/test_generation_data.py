"""Text tasks: the generative forms of the multiple-choice tasks, your own {prompt, answers} files
with located errors, prompt records for `generate`, and how prompts and answers are tokenised."""

from __future__ import annotations

import io
import json

import pytest

from swag_lora.generation.inputs import read_prompts, rows_from_records
from swag_lora.lm.text_encoding import answer_ids, encode_prompts, encode_text_rows
from swag_lora.tasks import (
    DataFormatError,
    DataNotFoundError,
    TaskDefinitionError,
    TextRow,
    load_task,
    load_text_task,
)


def test_generative_forms_of_a_multiple_choice_task(data_dir):
    mc = load_task("arc-easy", "test", data_dir=data_dir, limit=5)
    choices = load_text_task("arc-easy", "test", form="choices", data_dir=data_dir, limit=5)
    open_form = load_text_task("arc-easy", "test", form="open", data_dir=data_dir, limit=5)
    assert [r.id for r in choices] == [r.id for r in mc] == [r.id for r in open_form]  # the same questions
    for row, c, o in zip(mc, choices, open_form):
        lettered = "".join(f"\n{letter}. {text}" for letter, text in zip("ABCDE", row.choices))
        assert c.prompt == f"Question: {row.question}{lettered}\nAnswer:"
        assert o.prompt == f"Question: {row.question}\nAnswer:"
        assert c.answers == o.answers == (row.choices[row.label],)
    record = choices.to_dict()
    assert record["form"] == "choices" and record["size"] == 5 and "generative form 'choices'" in record["rule"]
    with pytest.raises(TaskDefinitionError, match="prompt form"):
        load_text_task("arc-easy", "test", form="letters", data_dir=data_dir, limit=5)
    with pytest.raises(TaskDefinitionError, match="no generative form"):
        load_text_task("winogrande-s", "validation", data_dir=data_dir, limit=2)


def write_jsonl(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def test_custom_text_files_with_a_carved_validation_split(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train = write_jsonl(tmp_path / "train.jsonl",
                        [{"prompt": f"Q{i}\nAnswer:", "answers": [f"a{i}", f"b{i}"]} for i in range(20)])
    write_jsonl(tmp_path / "test.jsonl", [{"id": "t1", "prompt": "Q?\nAnswer:", "answers": ["x"]}])
    files = ["train=train.jsonl", "test=test.jsonl"]
    rest = load_text_task("custom", "train", data_files=files)
    carved = load_text_task("custom", "validation", data_files=files)
    test = load_text_task("custom", "test", data_files=files)
    assert len(rest) == 18 and len(carved) == 2 and {r.id for r in rest}.isdisjoint({r.id for r in carved})
    assert [(r.id, r.answers) for r in test] == [("t1", ("x",))]
    assert rest[0].answers == ("a0", "b0") and rest[0].id == "train-0"
    assert "carved 10%" in carved.rule and rest.to_dict()["files"]["train"] == [str(train)]
    assert len(load_text_task("custom", "train", data_files=files, limit=5)) == 5
    with pytest.raises(DataNotFoundError, match="no test data"):
        load_text_task("custom", "test", data_files=["train=train.jsonl"])
    with pytest.raises(TaskDefinitionError, match="needs --data_files"):
        load_text_task("custom", "train")
    with pytest.raises(TaskDefinitionError, match="built in"):
        load_text_task("obqa", "train", data_files=files)


@pytest.mark.parametrize("record, field, reason", [
    ({"answers": ["x"]}, "prompt", "missing"),
    ({"prompt": "", "answers": ["x"]}, "prompt", "non-empty string"),
    ({"prompt": 3, "answers": ["x"]}, "prompt", "non-empty string"),
    ({"prompt": "p"}, "answers", "missing"),
    ({"prompt": "p", "answers": "x"}, "answers", "list of strings"),
    ({"prompt": "p", "answers": []}, "answers", "at least one"),
    ({"prompt": "p", "answers": ["ok", " "]}, "answers[1]", "non-empty string"),
    ({"prompt": "p", "answers": ["x"], "id": [1]}, "id", "string or an integer"),
    ("[1, 2]", None, "JSON object"),
    ("{not json", None, "invalid JSON"),
])
def test_a_bad_record_names_the_file_line_and_field(tmp_path, monkeypatch, record, field, reason):
    monkeypatch.chdir(tmp_path)
    good = {"prompt": "Q\nAnswer:", "answers": ["a"]}
    write_jsonl(tmp_path / "train.jsonl", [good, good, record])
    with pytest.raises(DataFormatError, match=reason) as info:
        load_text_task("custom", "train", data_files=["train=train.jsonl", "validation=train.jsonl"])
    assert info.value.line == 3 and info.value.field == field and info.value.path.endswith("train.jsonl")


def test_duplicate_ids_are_refused_and_bad_rows_can_be_skipped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "train.jsonl", [{"id": "a", "prompt": "p", "answers": ["x"]},
                                           {"id": "a", "prompt": "q", "answers": ["y"]}])
    with pytest.raises(DataFormatError, match="duplicate id 'a' \\(first at .*line 1\\)"):
        load_text_task("custom", "train", data_files=["train=train.jsonl", "validation=train.jsonl"])
    split = load_text_task("custom", "train", data_files=["train=train.jsonl", "validation=train.jsonl"],
                           skip_bad_rows=True)
    assert len(split) == 1 and split.skipped == 1


def test_prompts_for_generate_from_a_file_stdin_and_records(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"prompt": "Say hi\nAnswer:"},
                                               {"question": "Which is a liquid?", "choices": ["ice", "water"],
                                                "answers": ["water"], "id": "q2"}])
    rows = read_prompts(path)
    assert rows[0] == TextRow("input-0", "Say hi\nAnswer:", ())
    assert rows[1].prompt == "Question: Which is a liquid?\nA. ice\nB. water\nAnswer:" and rows[1].answers == ("water",)
    assert read_prompts(path, "open")[1].prompt == "Question: Which is a liquid?\nAnswer:"
    stdin = io.BytesIO(path.read_bytes())
    assert read_prompts("-", stdin=stdin) == rows
    with pytest.raises(DataFormatError, match="<stdin>, line 2: field 'question'"):
        read_prompts("-", stdin=io.BytesIO(b'{"prompt": "ok"}\n{"question": ""}\n'))
    with pytest.raises(DataFormatError, match="field 'prompt': missing"):
        rows_from_records([{"text": "no prompt"}])
    with pytest.raises(FileNotFoundError):
        read_prompts(tmp_path / "missing.jsonl")


def test_answer_tokens_are_those_generated_after_the_prompt(tokenizer, data_dir):
    rows = list(load_text_task("obqa", "test", data_dir=data_dir, limit=20))
    for row, feature, prompt in zip(rows, encode_text_rows(rows, tokenizer), encode_prompts(rows, tokenizer)):
        answer = answer_ids(tokenizer, row.prompt, row.answers[0])
        assert feature["input_ids"] == prompt + answer + [tokenizer.eos_token_id]
        assert tokenizer.decode(answer) == " " + row.answers[0]
        # for these prompts ("...Answer:" + " text") the joint tokenisation agrees at the boundary
        assert tokenizer(row.prompt + " " + row.answers[0], add_special_tokens=False)["input_ids"] == prompt + answer
    assert answer_ids(tokenizer, "Answer: ", "Paris") == tokenizer("Paris", add_special_tokens=False)["input_ids"]
    # max_length shortens the prompt from its start, never the answer
    short = encode_text_rows(rows[:1], tokenizer, max_length=12)[0]
    answer = answer_ids(tokenizer, rows[0].prompt, rows[0].answers[0]) + [tokenizer.eos_token_id]
    assert len(short["input_ids"]) == 12 and short["input_ids"][-len(answer):] == answer
