"""Record parsers: one decoded record of a release format in, one :class:`Row` out.

Each parser checks every field it reads and raises :class:`DataFormatError` naming the field
(as a dotted path, e.g. ``question.choices[2].label``) for a missing field, a wrong type, an
empty text, an empty or one-item choice list, or an answer that names no choice.

Row ``meta`` keys set here: ``task``; ``style`` (``"question"``, ``"fill-blank"`` for
WinoGrande, ``"passage"`` for BoolQ), read by prompt formatting; ``add_period`` (the paper
ends OBQA and MMLU choices with "."); ``choice_labels`` (the labels as released);
``subject`` (MMLU); ``passage`` and ``title`` (BoolQ); ``concept`` (CommonsenseQA).
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence

from .base import Row
from .errors import Where

__all__ = [
    "BOOLQ_CHOICES",
    "MMLU_LETTERS",
    "kind_of",
    "parse_boolq",
    "parse_mmlu_csv",
    "parse_mmlu_record",
    "parse_multiple_choice",
    "parse_winogrande",
]


MMLU_LETTERS = ("A", "B", "C", "D")
BOOLQ_CHOICES = ("yes", "no")

def _object(record: object, where: Where) -> Mapping:
    if not isinstance(record, Mapping):
        raise where.fail("<record>", f"expected a JSON object, found {kind_of(record)}")
    return record


def kind_of(value: object) -> str:
    """How an error message names the JSON kind of ``value`` ("a string", "a list", "null", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def _field(record: Mapping, key: str, where: Where, path: str | None = None) -> object:
    if key not in record:
        raise where.fail(path or key, "missing")
    return record[key]


def _text(value: object, where: Where, path: str) -> str:
    if not isinstance(value, str):
        raise where.fail(path, f"expected a string, found {kind_of(value)}")
    if not value.strip():
        raise where.fail(path, "empty text")
    return value.strip()


def _list(value: object, where: Where, path: str) -> Sequence:
    if not isinstance(value, (list, tuple)):
        raise where.fail(path, f"expected a list, found {kind_of(value)}")
    return value


def _id(record: Mapping, key: str, where: Where, fallback: str | None) -> str:
    if key not in record:
        if fallback is None:
            raise where.fail(key, "missing")
        return fallback
    return _text(record[key], where, key)


def _label_index(answer: str, labels: Sequence[str], where: Where, path: str) -> int:
    try:
        return list(labels).index(answer)
    except ValueError:
        raise where.fail(
            path, f"unknown answer label {answer!r}; the choices are labelled {list(labels)}"
        ) from None


def _check_choices(texts: Sequence[str], labels: Sequence[str], where: Where, path: str) -> None:
    if len(texts) < 2:
        raise where.fail(path, f"needs at least 2 choices, found {len(texts)}")
    seen: set[str] = set()
    for label in labels:
        if label in seen:
            raise where.fail(path, f"choice label {label!r} appears twice")
        seen.add(label)


def parse_multiple_choice(
    record: object, where: Where, *, task: str, add_period: bool = False, fallback_id: str | None = None
) -> Row:
    """OBQA, ARC and CommonsenseQA in either release layout.

    AI2 jsonl: ``{"id", "question": {"stem", "choices": [{"text", "label"}, ...]}, "answerKey"}``;
    Hugging Face: ``{"id", "question" (or OBQA's "question_stem"), "choices": {"text": [...],
    "label": [...]}, "answerKey"}``. Labels may be letters or digits; the answer is found by label.
    """
    rec = _object(record, where)
    row_id = _id(rec, "id", where, fallback_id)
    meta: dict = {"task": task, "style": "question", "add_period": add_period}
    if "question" not in rec and "question_stem" in rec:
        question = _text(rec["question_stem"], where, "question_stem")
        texts, labels = _hf_choices(rec, where)
    else:
        raw = _field(rec, "question", where)
        if isinstance(raw, Mapping):
            question = _text(_field(raw, "stem", where, "question.stem"), where, "question.stem")
            choices = _list(_field(raw, "choices", where, "question.choices"), where, "question.choices")
            texts, labels = [], []
            for i, choice in enumerate(choices):
                path = f"question.choices[{i}]"
                if not isinstance(choice, Mapping):
                    raise where.fail(
                        path, f"expected an object with 'text' and 'label', found {kind_of(choice)}"
                    )
                texts.append(_text(_field(choice, "text", where, path + ".text"), where, path + ".text"))
                labels.append(_text(_field(choice, "label", where, path + ".label"), where, path + ".label"))
            _check_choices(texts, labels, where, "question.choices")
            if "question_concept" in raw and isinstance(raw["question_concept"], str):
                meta["concept"] = raw["question_concept"]
        elif isinstance(raw, str):
            question = _text(raw, where, "question")
            texts, labels = _hf_choices(rec, where)
        else:
            raise where.fail("question", f"expected a string or an object with 'stem', found {kind_of(raw)}")
    if isinstance(rec.get("question_concept"), str):
        meta["concept"] = rec["question_concept"]
    answer = _text(_field(rec, "answerKey", where), where, "answerKey")
    label = _label_index(answer, labels, where, "answerKey")
    meta["choice_labels"] = tuple(labels)
    return Row(id=row_id, question=question, choices=tuple(texts), label=label, meta=meta)


def _hf_choices(rec: Mapping, where: Where) -> tuple[list[str], list[str]]:
    choices = _field(rec, "choices", where)
    if not isinstance(choices, Mapping):
        raise where.fail(
            "choices", f"expected an object with 'text' and 'label' lists, found {kind_of(choices)}"
        )
    raw_texts = _list(_field(choices, "text", where, "choices.text"), where, "choices.text")
    raw_labels = _list(_field(choices, "label", where, "choices.label"), where, "choices.label")
    texts = [_text(t, where, f"choices.text[{i}]") for i, t in enumerate(raw_texts)]
    labels = [_text(t, where, f"choices.label[{i}]") for i, t in enumerate(raw_labels)]
    if len(texts) != len(labels):
        raise where.fail("choices", f"{len(texts)} texts but {len(labels)} labels")
    _check_choices(texts, labels, where, "choices")
    return texts, labels


def parse_winogrande(record: object, where: Where, *, task: str, fallback_id: str | None = None) -> Row:
    """WinoGrande: ``{"qID", "sentence" (with one "_"), "option1", "option2", "answer": "1"|"2"}``.

    The row's question is the sentence with its blank; choices are the two options.
    """
    rec = _object(record, where)
    row_id = _id(rec, "qID", where, fallback_id)
    sentence = _text(_field(rec, "sentence", where), where, "sentence")
    if "_" not in sentence:
        raise where.fail("sentence", "has no blank '_' to fill")
    options = tuple(_text(_field(rec, key, where), where, key) for key in ("option1", "option2"))
    answer = _field(rec, "answer", where)
    if isinstance(answer, str) and answer.strip() in ("1", "2"):
        label = int(answer.strip()) - 1
    elif isinstance(answer, int) and not isinstance(answer, bool) and answer in (1, 2):
        label = answer - 1
    else:
        reason = "no answer (an unlabelled test split?)" if answer in ("", None) else "expected '1' or '2'"
        raise where.fail("answer", f"{reason}, found {answer!r}")
    meta = {"task": task, "style": "fill-blank", "add_period": False, "choice_labels": ("1", "2")}
    return Row(id=row_id, question=sentence, choices=options, label=label, meta=meta)


def parse_boolq(record: object, where: Where, *, task: str, fallback_id: str | None = None) -> Row:
    """BoolQ: ``{"question", "passage", "answer": true|false}`` (SuperGLUE's ``"label"`` and
    ``"idx"`` are read too). Choices are "yes" and "no" (A/B); the passage goes to ``meta``."""
    rec = _object(record, where)
    if "id" in rec:
        row_id = _text(rec["id"], where, "id")
    elif "idx" in rec:
        idx = rec["idx"]
        if not isinstance(idx, int) or isinstance(idx, bool):
            raise where.fail("idx", f"expected an integer, found {kind_of(idx)}")
        row_id = str(idx)
    elif fallback_id is not None:
        row_id = fallback_id
    else:
        raise where.fail("id", "missing")
    question = _text(_field(rec, "question", where), where, "question")
    passage = _text(_field(rec, "passage", where), where, "passage")
    key = "answer" if "answer" in rec or "label" not in rec else "label"
    answer = _field(rec, key, where)
    if not isinstance(answer, bool):
        raise where.fail(key, f"expected true or false, found {answer!r}")
    meta = {"task": task, "style": "passage", "add_period": False, "passage": passage}
    if isinstance(rec.get("title"), str):
        meta["title"] = rec["title"]
    return Row(id=row_id, question=question, choices=BOOLQ_CHOICES, label=0 if answer else 1, meta=meta)


def parse_mmlu_csv(fields: object, where: Where, *, task: str, subject: str, row_id: str) -> Row:
    """One row of MMLU's headerless CSV: question, A, B, C, D, answer letter."""
    names = ("question", *MMLU_LETTERS, "answer")
    if not isinstance(fields, (list, tuple)):
        raise where.fail("<row>", f"expected CSV fields, found {kind_of(fields)}")
    if len(fields) != len(names):
        raise where.fail("<row>", f"expected 6 fields (question, A, B, C, D, answer), found {len(fields)}")
    question = _text(fields[0], where, "question")
    choices = tuple(_text(fields[i + 1], where, letter) for i, letter in enumerate(MMLU_LETTERS))
    answer = _text(fields[5], where, "answer")
    label = _label_index(answer, MMLU_LETTERS, where, "answer")
    meta = {
        "task": task,
        "style": "question",
        "add_period": True,
        "subject": subject,
        "choice_labels": MMLU_LETTERS,
    }
    return Row(id=row_id, question=question, choices=choices, label=label, meta=meta)


def parse_mmlu_record(record: object, where: Where, *, task: str, subject: str, row_id: str) -> Row:
    """MMLU as on the hub: ``{"question", "subject", "choices": [...], "answer": 0-3 or "A"-"D"}``."""
    rec = _object(record, where)
    question = _text(_field(rec, "question", where), where, "question")
    raw = _list(_field(rec, "choices", where), where, "choices")
    choices = tuple(_text(c, where, f"choices[{i}]") for i, c in enumerate(raw))
    letters = tuple(string.ascii_uppercase[: len(choices)])
    _check_choices(choices, letters, where, "choices")
    answer = _field(rec, "answer", where)
    if isinstance(answer, int) and not isinstance(answer, bool):
        if not 0 <= answer < len(choices):
            raise where.fail("answer", f"index {answer} is outside 0..{len(choices) - 1}")
        label = answer
    elif isinstance(answer, str):
        label = _label_index(answer.strip(), letters, where, "answer")
    else:
        raise where.fail("answer", f"expected an index or a letter, found {kind_of(answer)}")
    if "subject" in rec and rec["subject"] not in (None, ""):
        subject = _text(rec["subject"], where, "subject")
    meta = {
        "task": task,
        "style": "question",
        "add_period": True,
        "subject": subject,
        "choice_labels": letters,
    }
    return Row(id=row_id, question=question, choices=choices, label=label, meta=meta)
