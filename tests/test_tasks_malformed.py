"""Property tests of bad input: every malformed row or file raises DataFormatError naming the
file, the line (or record) and the field, and nothing else escapes.

Rows are generated valid and then broken in one way that is invalid by construction (a field
removed, given a wrong type or an empty text, an answer that names no choice, too few or
duplicate choices, a broken JSON/CSV line); the test knows which field must be named.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from swag_lora.tasks import DataFormatError, load_task
from swag_lora.tasks.errors import Where
from swag_lora.tasks.parsing import (
    parse_boolq,
    parse_mmlu_csv,
    parse_mmlu_record,
    parse_multiple_choice,
    parse_winogrande,
)

SETTINGS = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10).filter(
    str.strip
)
CSV_TEXT = st.text(alphabet='abcXYZ019 ,"\n\u00e9\u4e2d', min_size=1, max_size=12).filter(str.strip)
BLANK = st.text(alphabet=" \t\n", max_size=3)
NOT_STR = st.one_of(
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
NOT_STR_OR_OBJECT = st.one_of(st.integers(), st.booleans(), st.none(), st.lists(st.integers(), max_size=2))
NOT_RECORD = st.one_of(st.integers(), st.text(max_size=5), st.none(), st.lists(st.integers(), max_size=3))


def _not_str_or_blank(draw):
    return draw(st.one_of(NOT_STR, BLANK))


@st.composite
def labelled_choices(draw):
    n = draw(st.integers(2, 5))
    labels = list(draw(st.sampled_from(["ABCDE", "12345"]))[:n])
    texts = draw(st.lists(TEXT, min_size=n, max_size=n))
    return texts, labels, draw(st.sampled_from(labels))


@st.composite
def ai2_record(draw):
    texts, labels, answer = draw(labelled_choices())
    choices = [{"text": t, "label": lab} for t, lab in zip(texts, labels, strict=True)]
    return {"id": draw(TEXT), "question": {"stem": draw(TEXT), "choices": choices}, "answerKey": answer}


@st.composite
def hf_record(draw, stem_key="question"):
    texts, labels, answer = draw(labelled_choices())
    return {
        "id": draw(TEXT),
        stem_key: draw(TEXT),
        "choices": {"text": texts, "label": labels},
        "answerKey": answer,
    }


@st.composite
def wino_record(draw):
    sentence = draw(TEXT) + " _ " + draw(TEXT)
    return {
        "qID": draw(TEXT),
        "sentence": sentence,
        "option1": draw(TEXT),
        "option2": draw(TEXT),
        "answer": draw(st.sampled_from(["1", "2"])),
    }


@st.composite
def boolq_record(draw):
    record = {"idx": draw(st.integers(0, 10**6)), "question": draw(TEXT), "passage": draw(TEXT)}
    record[draw(st.sampled_from(["answer", "label"]))] = draw(st.booleans())
    return record


@st.composite
def mmlu_fields(draw):
    return [*draw(st.lists(CSV_TEXT, min_size=5, max_size=5)), draw(st.sampled_from("ABCD"))]


@st.composite
def mmlu_record(draw):
    choices = draw(st.lists(TEXT, min_size=4, max_size=4))
    answer = draw(st.one_of(st.integers(0, 3), st.sampled_from("ABCD")))
    return {"question": draw(TEXT), "subject": "anatomy", "choices": choices, "answer": answer}


def _unknown_label(labels):
    return TEXT.filter(lambda s: s.strip() not in labels)


# Each breaker takes (draw, record) and breaks the record in place, returning the field that
# the error must name. ``in_files`` is False for breaks that a loader legitimately repairs
# (a WinoGrande row without qID gets a positional id).


@st.composite
def broken_ai2(draw, in_files=False):
    record = draw(ai2_record())
    choices = record["question"]["choices"]
    i = draw(st.integers(0, len(choices) - 1))
    labels = [c["label"] for c in choices]
    how = draw(
        st.sampled_from(
            [
                "drop",
                "drop-inner",
                "id",
                "question",
                "stem",
                "choices",
                "choice",
                "text",
                "label",
                "answer",
                "empty",
                "single",
                "duplicate",
                "unknown",
                "record",
            ]
        )
    )
    if how == "drop":
        key = draw(st.sampled_from(["id", "question", "answerKey"]))
        del record[key]
        return record, key
    if how == "drop-inner":
        key = draw(st.sampled_from(["stem", "choices"]))
        del record["question"][key]
        return record, f"question.{key}"
    if how in ("id", "answer"):
        key = "id" if how == "id" else "answerKey"
        record[key] = _not_str_or_blank(draw)
        return record, key
    if how == "question":
        record["question"] = draw(NOT_STR_OR_OBJECT)
        return record, "question"
    if how == "stem":
        record["question"]["stem"] = _not_str_or_blank(draw)
        return record, "question.stem"
    if how == "choices":
        record["question"]["choices"] = draw(
            st.one_of(
                st.integers(),
                st.text(max_size=3),
                st.none(),
                st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
            )
        )
        return record, "question.choices"
    if how == "choice":
        choices[i] = draw(
            st.one_of(st.integers(), st.text(max_size=3), st.none(), st.lists(st.integers(), max_size=2))
        )
        return record, f"question.choices[{i}]"
    if how in ("text", "label"):
        if draw(st.booleans()):
            del choices[i][how]
        else:
            choices[i][how] = _not_str_or_blank(draw)
        return record, f"question.choices[{i}].{how}"
    if how == "empty":
        record["question"]["choices"] = []
        return record, "question.choices"
    if how == "single":
        record["question"]["choices"] = choices[:1]
        return record, "question.choices"
    if how == "duplicate":
        j = (i + 1) % len(choices)
        choices[j]["label"] = choices[i]["label"]
        return record, "question.choices"
    if how == "unknown":
        record["answerKey"] = draw(_unknown_label(labels))
        return record, "answerKey"
    return draw(NOT_RECORD), "<record>"


@st.composite
def broken_hf(draw, in_files=False):
    stem_key = "question" if in_files else draw(st.sampled_from(["question", "question_stem"]))
    record = draw(hf_record(stem_key))
    texts, labels = record["choices"]["text"], record["choices"]["label"]
    i = draw(st.integers(0, len(texts) - 1))
    how = draw(
        st.sampled_from(
            [
                "stem",
                "drop-choices",
                "choices",
                "drop-list",
                "list",
                "item",
                "mismatch",
                "single",
                "duplicate",
                "unknown",
                "id",
            ]
        )
    )
    if how == "stem":
        record[stem_key] = draw(NOT_STR_OR_OBJECT) if stem_key == "question" else _not_str_or_blank(draw)
        return record, stem_key
    if how == "drop-choices":
        del record["choices"]
        return record, "choices"
    if how == "choices":
        record["choices"] = draw(
            st.one_of(st.integers(), st.text(max_size=3), st.none(), st.lists(st.integers(), max_size=2))
        )
        return record, "choices"
    if how in ("drop-list", "list"):
        key = draw(st.sampled_from(["text", "label"]))
        if how == "drop-list":
            del record["choices"][key]
        else:
            record["choices"][key] = draw(st.one_of(st.integers(), st.text(max_size=3), st.none()))
        return record, f"choices.{key}"
    if how == "item":
        key = draw(st.sampled_from(["text", "label"]))
        record["choices"][key][i] = _not_str_or_blank(draw)
        return record, f"choices.{key}[{i}]"
    if how == "mismatch":
        record["choices"]["label"] = labels[:-1]
        return record, "choices"
    if how == "single":
        record["choices"] = {"text": texts[:1], "label": labels[:1]}
        return record, "choices"
    if how == "duplicate":
        labels[(i + 1) % len(labels)] = labels[i]
        return record, "choices"
    if how == "unknown":
        record["answerKey"] = draw(_unknown_label(labels))
        return record, "answerKey"
    if draw(st.booleans()):
        del record["id"]
    else:
        record["id"] = _not_str_or_blank(draw)
    return record, "id"


@st.composite
def broken_wino(draw, in_files=False):
    record = draw(wino_record())
    keys = ["sentence", "option1", "option2", "answer"] + ([] if in_files else ["qID"])
    how = draw(st.sampled_from(["drop", "type", "no-blank", "answer", "record"]))
    if how == "drop":
        key = draw(st.sampled_from(keys))
        del record[key]
        return record, key
    if how == "type":
        key = draw(st.sampled_from(keys))
        record[key] = (
            _not_str_or_blank(draw)
            if key != "answer"
            else draw(st.one_of(st.none(), st.just(""), st.booleans()))
        )
        return record, key
    if how == "no-blank":
        record["sentence"] = draw(TEXT.filter(lambda s: "_" not in s))
        return record, "sentence"
    if how == "answer":
        record["answer"] = draw(
            st.one_of(
                TEXT.filter(lambda s: s.strip() not in ("1", "2")),
                st.integers().filter(lambda x: x not in (1, 2)),
                st.floats(allow_nan=False, allow_infinity=False),
                st.lists(st.integers(), max_size=2),
            )
        )
        return record, "answer"
    return draw(NOT_RECORD), "<record>"


@st.composite
def broken_boolq(draw, in_files=False):
    record = draw(boolq_record())
    answer_key = "answer" if "answer" in record else "label"
    how = draw(st.sampled_from(["drop", "type", "answer", "idx"] + ([] if in_files else ["record"])))
    if how == "drop":
        key = draw(st.sampled_from(["question", "passage", answer_key]))
        del record[key]
        return record, "answer" if key == answer_key else key
    if how == "type":
        key = draw(st.sampled_from(["question", "passage"]))
        record[key] = _not_str_or_blank(draw)
        return record, key
    if how == "answer":
        record[answer_key] = draw(
            st.one_of(st.integers(), st.text(max_size=5), st.none(), st.floats(allow_nan=False))
        )
        return record, answer_key
    if how == "idx":
        record["idx"] = draw(
            st.one_of(st.text(max_size=3), st.booleans(), st.none(), st.floats(allow_nan=False))
        )
        return record, "idx"
    return draw(NOT_RECORD), "<record>"


@st.composite
def broken_mmlu_fields(draw, in_files=False):
    fields = draw(mmlu_fields())
    how = draw(st.sampled_from(["count", "blank", "answer"]))
    if how == "count":
        n = draw(st.one_of(st.integers(1, 5), st.integers(7, 9)))
        return (fields + draw(st.lists(CSV_TEXT, min_size=3, max_size=3)))[:n], "<row>"
    if how == "blank":
        i = draw(st.integers(0, 4))
        fields[i] = draw(BLANK)
        return fields, ("question", "A", "B", "C", "D")[i]
    fields[5] = draw(st.one_of(BLANK, CSV_TEXT.filter(lambda s: s.strip() not in ("A", "B", "C", "D"))))
    return fields, "answer"


@st.composite
def broken_mmlu_record(draw, in_files=False):
    record = draw(mmlu_record())
    how = draw(st.sampled_from(["question", "drop-choices", "choices", "item", "few", "answer"]))
    if how == "question":
        if draw(st.booleans()):
            del record["question"]
        else:
            record["question"] = _not_str_or_blank(draw)
        return record, "question"
    if how == "drop-choices":
        del record["choices"]
        return record, "choices"
    if how == "choices":
        record["choices"] = draw(st.one_of(st.integers(), st.text(max_size=3), st.none()))
        return record, "choices"
    if how == "item":
        i = draw(st.integers(0, 3))
        record["choices"][i] = _not_str_or_blank(draw)
        return record, f"choices[{i}]"
    if how == "few":
        record["choices"] = record["choices"][: draw(st.integers(0, 1))]
        record["answer"] = 0
        return record, "choices"
    record["answer"] = draw(
        st.one_of(
            st.integers().filter(lambda x: not 0 <= x < 4),
            st.booleans(),
            st.none(),
            st.floats(allow_nan=False),
            TEXT.filter(lambda s: s.strip() not in ("A", "B", "C", "D")),
        )
    )
    return record, "answer"


PARSERS = {
    "ai2": (broken_ai2, lambda r, w: parse_multiple_choice(r, w, task="t")),
    "hf": (broken_hf, lambda r, w: parse_multiple_choice(r, w, task="t")),
    "winogrande": (broken_wino, lambda r, w: parse_winogrande(r, w, task="t")),
    "boolq": (broken_boolq, lambda r, w: parse_boolq(r, w, task="t")),
    "mmlu-csv": (broken_mmlu_fields, lambda r, w: parse_mmlu_csv(r, w, task="t", subject="s", row_id="s/0")),
    "mmlu-hf": (
        broken_mmlu_record,
        lambda r, w: parse_mmlu_record(r, w, task="t", subject="s", row_id="s/0"),
    ),
}


@pytest.mark.parametrize("kind", sorted(PARSERS))
@settings(max_examples=200, **SETTINGS)  # 6 formats x 200 = 1,200 malformed rows
@given(data=st.data(), line=st.integers(1, 10**6))
def test_every_malformed_row_names_file_line_and_field(kind, data, line):
    record, field = data.draw(PARSERS[kind][0]())
    event(f"{kind}: {field}")
    with pytest.raises(DataFormatError) as info:
        PARSERS[kind][1](record, Where("rows.jsonl", line=line))
    error = info.value
    assert error.field == field
    assert str(error).startswith(f"rows.jsonl, line {line}: field {field!r}: ")
    assert isinstance(error, ValueError)


@pytest.mark.parametrize("kind", sorted(PARSERS))
def test_the_generated_rows_are_valid_before_they_are_broken(kind):
    valid = {
        "ai2": ai2_record(),
        "hf": hf_record(),
        "winogrande": wino_record(),
        "boolq": boolq_record(),
        "mmlu-csv": mmlu_fields(),
        "mmlu-hf": mmlu_record(),
    }[kind]

    @settings(max_examples=30, **SETTINGS)
    @given(record=valid)
    def check(record):
        row = PARSERS[kind][1](record, Where("rows.jsonl", line=1))
        assert 0 <= row.label < len(row.choices)

    check()


# --- whole files ----------------------------------------------------------------------------

# kind -> (task, path of the test split's file under the data root, row generator, breaker)
FILES = {
    "obqa-jsonl": ("obqa", "obqa/test.jsonl", ai2_record, broken_ai2),
    "arc-ai2-jsonl": ("arc-challenge", "arc-challenge/ARC-Challenge-Dev.jsonl", ai2_record, broken_ai2),
    "cqa-jsonl": ("cqa", "cqa/dev_rand_split.jsonl", ai2_record, broken_ai2),
    "arc-hf-jsonl": ("arc-easy", "arc-easy/test.jsonl", hf_record, broken_hf),
    "arc-hf-array": ("arc-easy", "arc-easy/test.json", hf_record, broken_hf),
    "winogrande-jsonl": ("winogrande-s", "winogrande/dev.jsonl", wino_record, broken_wino),
    "boolq-jsonl": ("boolq", "boolq/dev.jsonl", boolq_record, broken_boolq),
    "boolq-parquet": ("boolq", "boolq/validation.parquet", boolq_record, None),
    "mmlu-csv": ("mmlu-anatomy", "mmlu/test/anatomy_test.csv", mmlu_fields, broken_mmlu_fields),
}
ID_KEY = {
    "obqa-jsonl": "id",
    "arc-ai2-jsonl": "id",
    "cqa-jsonl": "id",
    "arc-hf-jsonl": "id",
    "arc-hf-array": "id",
    "winogrande-jsonl": "qID",
    "boolq-jsonl": "idx",
    "boolq-parquet": "idx",
}
JSON_SYNTAX = [
    lambda text: text[:-1],
    lambda text: text + "}",
    lambda text: "{" + text,
    lambda text: text.replace('"', "", 1),
    lambda text: "[" + text,
]
ARRAY_SYNTAX = ['{"id": ,}', "nonsense", '{"a" 1}', "{'single': 'quotes'}", '{"a": 1,}']


@st.composite
def bad_file(draw, kind):
    task, relpath, valid, breaker = FILES[kind]
    rows = draw(st.lists(valid(), min_size=1, max_size=6))
    if kind in ID_KEY:
        for i, row in enumerate(rows):
            row[ID_KEY[kind]] = i if ID_KEY[kind] == "idx" else f"row{i}"
    bad_at = draw(st.integers(0, len(rows)))
    syntax = draw(st.integers(0, 2)) == 0
    if kind == "boolq-parquet":
        record = copy.deepcopy(rows[0])
        record["idx"] = len(rows)
        key = draw(st.sampled_from(["question", "passage", "answer" if "answer" in record else "label"]))
        record[key] = None if key not in ("question", "passage") or draw(st.booleans()) else draw(BLANK)
        bad, field = record, key
    elif syntax:
        bad, field = draw(st.integers(0, 10**6)), None  # replaced by the writer
    else:
        bad, field = draw(breaker(in_files=True))
    return {
        "kind": kind,
        "task": task,
        "relpath": relpath,
        "rows": rows,
        "bad_at": bad_at,
        "bad": bad,
        "field": field,
        "syntax": syntax,
        "variant": draw(st.integers(0, 100)),
        "blank_lines": draw(st.lists(st.booleans(), min_size=8, max_size=8)),
        "final_newline": draw(st.booleans()),
    }


def _write(case, path: Path) -> dict:
    """Write the file; return where the error must point (line / record) and whether it is fatal."""
    rows, k, kind = case["rows"], case["bad_at"], case["kind"]
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "boolq-parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        if case["syntax"]:
            path.write_bytes(b"PAR1 this is not parquet")
            return {"line": None, "record": None, "fatal": True}
        records = rows[:k] + [case["bad"]] + rows[k:]
        answer = "answer" if "answer" in case["bad"] else "label"
        for r in records:  # one schema for every record
            r.pop("label" if answer == "answer" else "answer", None)
            r.setdefault(answer, True)
        pq.write_table(pa.Table.from_pylist(records), path)
        return {"line": None, "record": k, "fatal": False}
    if kind == "mmlu-csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        text, line = "", None
        for i in range(len(rows) + 1):
            if i == k:
                line = text.count("\n") + 1
                if case["syntax"]:
                    text += '"ab"c,A,B,C,D,A\n'
                    continue
                writer.writerow(case["bad"])
            else:
                writer.writerow(rows[i if i < k else i - 1])
            text += out.getvalue()
            out.seek(0)
            out.truncate()
        if not case["final_newline"]:
            text = text[:-1]
        path.write_text(text, encoding="utf-8")
        return {"line": line, "record": None, "fatal": case["syntax"]}
    if kind == "arc-hf-array":
        lines, line_of = ["["], None
        for i in range(len(rows) + 1):
            if i == k:
                line_of = len(lines) + 1
                body = (
                    ARRAY_SYNTAX[case["variant"] % len(ARRAY_SYNTAX)]
                    if case["syntax"]
                    else json.dumps(case["bad"], indent=2)
                )
            else:
                body = json.dumps(rows[i if i < k else i - 1], indent=2)
            pieces = ("  " + body.replace("\n", "\n  ")).split("\n")
            if i < len(rows):
                pieces[-1] += ","
            lines += pieces
        lines.append("]")
        path.write_text("\n".join(lines), encoding="utf-8")
        return {"line": line_of, "record": None if case["syntax"] else k, "fatal": case["syntax"]}
    # jsonl
    lines: list[bytes] = []
    line_of = None
    for i in range(len(rows) + 1):
        if case["blank_lines"][i % 8]:
            lines.append(b"")
        if i == k:
            line_of = len(lines) + 1
            if not case["syntax"]:
                lines.append(json.dumps(case["bad"]).encode())
            elif case["variant"] % 6 == 5:
                lines.append(b'{"id": "\xff"}')  # not UTF-8
            else:
                lines.append(JSON_SYNTAX[case["variant"] % 6](json.dumps(rows[0])).encode())
        else:
            lines.append(json.dumps(rows[i if i < k else i - 1]).encode())
    path.write_bytes(b"\n".join(lines) + (b"\n" if case["final_newline"] else b""))
    return {"line": line_of, "record": None, "fatal": False}


@pytest.mark.parametrize("kind", sorted(FILES))
@settings(max_examples=12, **SETTINGS)  # 9 layouts x 12 = 108 malformed files
@given(data=st.data())
def test_every_malformed_file_names_file_line_and_field(kind, data):
    case = data.draw(bad_file(kind))
    event(f"{case['kind']}: {'syntax' if case['syntax'] else case['field']}")
    with tempfile.TemporaryDirectory() as root:
        path = Path(root) / case["relpath"]
        expect = _write(case, path)
        with pytest.raises(DataFormatError) as info:
            load_task(case["task"], "test", root)
        error = info.value
        assert error.path == str(path) and str(error).startswith(str(path))
        assert error.line == expect["line"]
        if expect["record"] is not None:
            assert error.record == expect["record"]
        if expect["line"] is not None:
            assert f"line {expect['line']}" in str(error)
        if case["syntax"]:
            assert error.field is None
        else:
            assert error.field == case["field"] and f"field {case['field']!r}" in str(error)
        if expect["fatal"]:
            with pytest.raises(DataFormatError):
                load_task(case["task"], "test", root, skip_bad_rows=True)
        else:
            with pytest.warns(UserWarning, match="skipped 1 bad rows"):
                loaded = load_task(case["task"], "test", root, skip_bad_rows=True)
            assert loaded.skipped == 1 and loaded.size == len(case["rows"])
