"""Turn task rows into token ids, and token ids into padded batches, for both scoring modes.

``encode_rows`` tokenises once (the Trainer then only pads); ``MultipleChoiceCollator``
pads a list of encoded questions into the tensors :class:`~swag_lora.lm.multiple_choice.MultipleChoiceLM`
reads. Every batch has the same number of choice slots (the task's maximum), so logits
from different batches stack; absent choices are masked.

Cloze batches are packed (:func:`pack_cloze`): one row per question holding its
context(s) once and every choice after it, with a block mask so that each choice sees
only its context and itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from ..errors import InvalidSettingError
from ..tasks import Row, cloze_template, encode_prompt, format_cloze, format_letter

__all__ = ["CLOZE_NORMALIZATIONS", "SCORING_MODES", "MultipleChoiceCollator", "choice_text_lengths", "encode_rows",
           "letter_token_ids", "pack_cloze", "pad_sequences", "special_prefix"]

SCORING_MODES = ("cloze", "letter")
# What a cloze choice's summed log-probability is divided by: nothing, its number of tokens, or
# its text's characters or UTF-8 bytes (lm-evaluation-harness's acc_norm and acc_bytes).
CLOZE_NORMALIZATIONS = ("none", "tokens", "chars", "bytes")


def choice_text_lengths(continuation: str) -> tuple[int, int]:
    """(characters, UTF-8 bytes) of a cloze continuation's text without the whitespace that joins
    it to its context: for ``" {choice}"`` the length of the choice's text, which is what
    lm-evaluation-harness divides by for ``acc_norm`` (characters) and ``acc_bytes`` (bytes)."""
    text = continuation.lstrip()
    return len(text), len(text.encode("utf-8"))


def special_prefix(tokenizer) -> list[int]:
    """The ids a tokenizer puts before a text by default (e.g. Llama's BOS; nothing for SmolLM2)."""
    ids = tokenizer("", add_special_tokens=True)["input_ids"]
    bos = getattr(tokenizer, "bos_token_id", None)
    return [bos] if ids[:1] == [bos] and bos is not None else []


def letter_token_ids(tokenizer, letters: Sequence[str]) -> list[int]:
    """One token id per answer letter (" A", " B", ...); a clear error if a letter is not a single token."""
    ids = []
    for letter in letters:
        tokens = tokenizer(letter, add_special_tokens=False)["input_ids"]
        if len(tokens) != 1:
            raise InvalidSettingError(
                f"the tokenizer splits the answer letter {letter!r} into {len(tokens)} tokens {tokens}; "
                "letter scoring needs one token per letter: use --scoring cloze for this model"
            )
        ids.append(tokens[0])
    return ids


def encode_rows(
    rows: Iterable[Row],
    tokenizer,
    mode: str = "cloze",
    max_length: int | None = None,
    add_period: bool | None = None,
    cloze_prompt: str = "question",
) -> list[dict]:
    """Token ids of every row for ``mode`` ("cloze" or "letter").

    With ``max_length``, a prompt that is too long loses tokens from its question/passage
    only; in cloze mode the budget for the context leaves room for the longest choice.
    ``cloze_prompt`` names the cloze template (:data:`~swag_lora.tasks.prompts.CLOZE_PROMPTS`);
    cloze features also hold each choice's text length (:func:`choice_text_lengths`).
    """
    if mode not in SCORING_MODES:
        raise InvalidSettingError(f"unknown scoring mode {mode!r}; choose one of {SCORING_MODES}")
    template = cloze_template(cloze_prompt)
    prefix = special_prefix(tokenizer)
    encoded = []
    for row in rows:
        if mode == "cloze":
            prompt = format_cloze(row, template=template)
            continuations = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in prompt.continuations]
            if any(len(c) == 0 for c in continuations):
                raise InvalidSettingError(f"row {row.id!r}: a choice tokenises to no tokens")
            budget = None
            if max_length is not None:
                budget = max_length - len(prefix) - max(len(c) for c in continuations)
                if budget <= 0:
                    raise InvalidSettingError(f"row {row.id!r}: max_length={max_length} leaves no room for the question")
            contexts = [prefix + encode_prompt(tokenizer, ctx, budget) for ctx in prompt.contexts]
            chars, n_bytes = zip(*map(choice_text_lengths, prompt.continuations))
            encoded.append(
                {
                    "contexts": contexts,
                    "continuations": continuations,
                    "context_index": list(prompt.context_index),
                    "choice_chars": list(chars),
                    "choice_bytes": list(n_bytes),
                    "label": row.label,
                    "n_choices": len(row.choices),
                }
            )
        else:
            prompt = format_letter(row, add_period=add_period)
            budget = None if max_length is None else max_length - len(prefix)
            encoded.append(
                {
                    "input_ids": prefix + encode_prompt(tokenizer, prompt.prompt, budget),
                    "label": row.label,
                    "n_choices": len(row.choices),
                }
            )
    return encoded


def pad_sequences(seqs: Sequence[Sequence[int]], pad_id: int, left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, W]`` ids and attention mask of sequences padded on the right (or the left)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if not s:
            continue
        if left:
            ids[i, width - len(s) :] = torch.tensor(s)
            mask[i, width - len(s) :] = 1
        else:
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
    return ids, mask


class MultipleChoiceCollator:
    """Pads encoded questions into a batch; ``n_slots`` is the number of choice slots per question."""

    def __init__(self, pad_token_id: int | None, n_slots: int, padding_side: str = "right"):
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        self.pad_token_id = 0 if pad_token_id is None else int(pad_token_id)
        self.n_slots = int(n_slots)
        self.padding_side = padding_side

    def __call__(self, features: Sequence[dict]) -> dict[str, torch.Tensor]:
        too_many = [f["n_choices"] for f in features if f["n_choices"] > self.n_slots]
        if too_many:
            raise InvalidSettingError(f"a question has {max(too_many)} choices but the model has {self.n_slots} "
                                      "choice slots")
        batch = {
            "labels": torch.tensor([f["label"] for f in features], dtype=torch.long),
            "choice_mask": torch.arange(self.n_slots)[None, :]
            < torch.tensor([f["n_choices"] for f in features])[:, None],
        }
        if "input_ids" in features[0]:
            ids, mask = pad_sequences([f["input_ids"] for f in features], self.pad_token_id, self.padding_side == "left")
            batch.update(input_ids=ids, attention_mask=mask)
            return batch
        batch.update(pack_cloze(features, self.pad_token_id))
        return batch


def pack_cloze(features: Sequence[dict], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Pack each question's contexts and choices into one row for a single forward pass.

    Row layout: ``[context_1, ..., context_m, choice_1, ..., choice_C]``. ``segment_ids``
    number those segments (−1 for padding); ``parent_ids`` give, for a choice token, the
    segment of its context (−2 for context tokens, −1 for padding). A token may attend to
    earlier tokens of its own segment and to every token of its parent context, so each
    choice sees exactly "context + itself", as if it were its own sequence. ``position_ids``
    restart after the context for every choice.

    ``target_*`` list every choice token once: the row and position of the hidden state that
    predicts it (the context's last token for a choice's first token), its id, and the flat
    choice it belongs to; ``choice_question``/``choice_slot`` place each flat choice, and
    ``choice_chars``/``choice_bytes`` give its text length (when every feature has them).
    """
    rows = []
    target_row, target_pos, target_ids, target_choice, choice_question, choice_slot = [], [], [], [], [], []
    for q, f in enumerate(features):
        ids, seg, parent, pos = [], [], [], []
        ctx_last, ctx_len = [], []
        for s, ctx in enumerate(f["contexts"]):
            ids += ctx
            seg += [s] * len(ctx)
            parent += [-2] * len(ctx)
            pos += range(len(ctx))
            ctx_last.append(len(ids) - 1)
            ctx_len.append(len(ctx))
        n_ctx = len(f["contexts"])
        for slot, (cont, c) in enumerate(zip(f["continuations"], f["context_index"])):
            start = len(ids)
            ids += cont
            seg += [n_ctx + slot] * len(cont)
            parent += [c] * len(cont)
            pos += range(ctx_len[c], ctx_len[c] + len(cont))
            choice = len(choice_question)
            choice_question.append(q)
            choice_slot.append(slot)
            for t, token in enumerate(cont):
                target_row.append(q)
                target_pos.append(ctx_last[c] if t == 0 else start + t - 1)
                target_ids.append(token)
                target_choice.append(choice)
        rows.append((ids, seg, parent, pos))
    width = max(len(r[0]) for r in rows)
    out = {
        "input_ids": torch.full((len(rows), width), pad_token_id, dtype=torch.long),
        "segment_ids": torch.full((len(rows), width), -1, dtype=torch.long),
        "parent_ids": torch.full((len(rows), width), -1, dtype=torch.long),
        "position_ids": torch.zeros((len(rows), width), dtype=torch.long),
    }
    for i, row in enumerate(rows):
        n = len(row[0])
        for key, values in zip(("input_ids", "segment_ids", "parent_ids", "position_ids"), row):
            out[key][i, :n] = torch.tensor(values, dtype=torch.long)
    as_long = lambda v: torch.tensor(v, dtype=torch.long)  # noqa: E731
    out.update(
        target_row=as_long(target_row),
        target_pos=as_long(target_pos),
        target_ids=as_long(target_ids),
        target_choice=as_long(target_choice),
        choice_question=as_long(choice_question),
        choice_slot=as_long(choice_slot),
    )
    for key in ("choice_chars", "choice_bytes"):
        if all(key in f for f in features):
            out[key] = as_long([n for f in features for n in f[key]])
    return out

