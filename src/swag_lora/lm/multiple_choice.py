"""A causal LM with LoRA adapters that scores the choices of multiple-choice questions.

Two scoring modes (docs/design.md):

* ``letter`` — the next-token logits at the last real position, restricted to the
  answer-letter tokens by a small trainable head whose rows start as the pretrained LM-head
  rows of those tokens (the tied LM head itself is never trained).
* ``cloze`` — the summed log-probability of each choice's text after its context. Each
  question is one packed row (its context once, then every choice) with a block attention
  mask, so one forward pass scores all choices; the LM head is applied only where a choice
  token is predicted. This needs an attention implementation that takes a 4D mask
  (``sdpa`` or ``eager``; not flash-attention-2). ``normalize`` divides the sum by the
  choice's number of tokens (``"tokens"``: the mean log-probability per token) or by the
  length of its text in characters (``"chars"``: lm-evaluation-harness's ``acc_norm``) or
  UTF-8 bytes (``"bytes"``: its ``acc_bytes``), which removes the sum's preference for short
  answers (OBQA's right answers are often the longer ones); ``"none"`` keeps the sum
  (lm-evaluation-harness's ``acc``).

Either way the output is a [B, n_slots] tensor of choice logits (−inf for absent
choices), trained with cross-entropy over the choices.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from ..errors import InvalidSettingError
from ..tasks.prompts import LETTERS
from .encoding import CLOZE_NORMALIZATIONS, SCORING_MODES, letter_token_ids
from .loading import base_causal_lm

__all__ = ["MultipleChoiceLM", "MultipleChoiceOutput"]


@dataclass
class MultipleChoiceOutput(ModelOutput):
    """``logits`` [B, n_slots] (−inf where a question has no such choice) and, with labels, ``loss``."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class MultipleChoiceLM(nn.Module):
    """Scores multiple-choice questions with a (LoRA-adapted) causal LM.

    ``lm`` is a ``PeftModel`` or a plain ``PreTrainedModel``; ``n_slots`` is the number of
    choice slots (the task's largest number of choices). In letter mode ``tokenizer``
    gives the letter token ids and a trainable ``answer_head`` is added. ``normalize`` is one
    of :data:`~swag_lora.lm.encoding.CLOZE_NORMALIZATIONS` (cloze only);
    ``length_normalize=True`` is the older spelling of ``normalize="tokens"``.
    """

    # The loss is a mean over questions; tell Trainer not to pass num_items_in_batch.
    accepts_loss_kwargs = False

    def __init__(self, lm: nn.Module, tokenizer, mode: str = "cloze", n_slots: int = 4,
                 length_normalize: bool = False, normalize: str = "none"):
        super().__init__()
        if mode not in SCORING_MODES:
            raise InvalidSettingError(f"unknown scoring mode {mode!r}; choose one of {SCORING_MODES}")
        if normalize not in CLOZE_NORMALIZATIONS:
            raise InvalidSettingError(f"unknown cloze normalisation {normalize!r}; choose one of "
                                      f"{', '.join(CLOZE_NORMALIZATIONS)}")
        if length_normalize and normalize not in ("none", "tokens"):
            raise InvalidSettingError(f"length_normalize (by tokens) contradicts normalize={normalize!r}")
        normalize = "tokens" if length_normalize else normalize
        if normalize != "none" and mode != "cloze":
            raise InvalidSettingError("length normalisation applies to cloze scoring only")
        self.normalize = normalize
        self.lm = lm
        self.mode = mode
        self.n_slots = int(n_slots)
        base = base_causal_lm(lm)
        # Plain attributes, not submodules: they belong to self.lm already, and registering
        # them twice would duplicate their names in state_dict().
        object.__setattr__(self, "decoder", base.get_decoder())
        object.__setattr__(self, "lm_head", base.get_output_embeddings())
        attn = getattr(base.config, "_attn_implementation", None)
        if mode == "cloze" and attn is not None and "flash" in str(attn):
            raise InvalidSettingError(
                f"cloze scoring packs choices with a 4D attention mask, which {attn!r} does not take; "
                "load the model with attn_implementation='sdpa' or 'eager'"
            )
        self.letters = None
        self.letter_ids = None
        if mode == "letter":
            self.letters = [" " + letter for letter in LETTERS[: self.n_slots]]
            ids = letter_token_ids(tokenizer, self.letters)
            self.letter_ids = ids
            weight = self.lm_head.weight.detach()[ids].clone().float()
            self.answer_head = nn.Linear(weight.shape[1], len(ids), bias=False)
            with torch.no_grad():
                self.answer_head.weight.copy_(weight)
            self.answer_head.to(device=self.lm_head.weight.device)

    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    @property
    def length_normalize(self) -> bool:
        """Whether cloze scores are divided by the choice's number of tokens (``normalize="tokens"``)."""
        return self.normalize == "tokens"

    # ------------------------------------------------------------------ activation checkpointing
    def activation_checkpointing_enable(self, activation_checkpointing_kwargs=None, **kwargs) -> None:
        """Recompute the base model's layer activations in the backward pass instead of keeping
        them (what ``TrainingArguments(gradient_checkpointing=True)`` asks of the model); the
        gradients are the same. The embeddings' output is made to require gradients, so that
        re-entrant checkpointing also reaches the LoRA weights when every base weight is frozen."""
        base = base_causal_lm(self.lm)
        enable = getattr(base, "activation_checkpointing_enable", None)
        if enable is not None:
            enable(activation_checkpointing_kwargs=activation_checkpointing_kwargs, **kwargs)
        else:  # transformers before 5
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs=activation_checkpointing_kwargs)
        base.enable_input_require_grads()

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs=None, **kwargs) -> None:
        """:meth:`activation_checkpointing_enable` under the name transformers before 5 call."""
        self.activation_checkpointing_enable(gradient_checkpointing_kwargs, **kwargs)

    def forward(self, labels: torch.Tensor | None = None, choice_mask: torch.Tensor | None = None, **inputs):
        """Choice logits [B, C] and, with ``labels``, the cross-entropy. C is the width of
        ``choice_mask`` [B, C] (the collator's number of choice slots) when given, else
        ``n_slots``; in letter mode it must be the number of answer letters."""
        n_slots = choice_mask.shape[1] if choice_mask is not None else self.n_slots
        if self.mode == "letter":
            if n_slots != self.n_slots:
                raise InvalidSettingError(f"this letter-mode model has {self.n_slots} answer letters; the batch has "
                                          f"{n_slots} choice slots")
            logits = self._letter_logits(inputs["input_ids"], inputs["attention_mask"])
        else:
            logits = self._cloze_logits(n_slots=n_slots, **inputs)
        if choice_mask is not None:
            logits = logits.masked_fill(~choice_mask.bool(), float("-inf"))
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return MultipleChoiceOutput(loss=loss, logits=logits)

    # ------------------------------------------------------------------ letter
    def _letter_logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        last = (attention_mask * positions).argmax(dim=1)  # last real token, left or right padding
        h = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        return self.answer_head(h.to(self.answer_head.weight.dtype)).float()

    # ------------------------------------------------------------------- cloze
    def _cloze_logits(
        self,
        n_slots,
        input_ids,
        segment_ids,
        parent_ids,
        position_ids,
        target_row,
        target_pos,
        target_ids,
        target_choice,
        choice_question,
        choice_slot,
        choice_chars=None,
        choice_bytes=None,
    ) -> torch.Tensor:
        # Block mask of the packed rows (encoding.pack_cloze): earlier tokens of the same
        # segment, plus every token of the parent context.
        width = segment_ids.shape[1]
        causal = torch.ones(width, width, dtype=torch.bool, device=segment_ids.device).tril()
        allowed = (segment_ids[:, None, :] == segment_ids[:, :, None]) & causal
        allowed |= segment_ids[:, None, :] == parent_ids[:, :, None]
        dtype = self.lm_head.weight.dtype
        mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
        mask = mask.masked_fill(~allowed, torch.finfo(dtype).min)[:, None, :, :]
        hidden = self.decoder(input_ids=input_ids, attention_mask=mask, position_ids=position_ids,
                              use_cache=False).last_hidden_state
        # LM head only at the positions that predict a choice token
        logits = self.lm_head(hidden[target_row, target_pos]).float()
        token_logp = logits.log_softmax(dim=-1).gather(1, target_ids[:, None])[:, 0]
        per_choice = torch.zeros(choice_question.shape[0], dtype=token_logp.dtype, device=token_logp.device)
        per_choice = per_choice.index_add(0, target_choice, token_logp)
        if self.normalize != "none":
            per_choice = per_choice / self._choice_lengths(per_choice, target_choice, choice_chars, choice_bytes)
        n_questions = input_ids.shape[0]
        scores = torch.full(
            (n_questions, n_slots), float("-inf"), dtype=per_choice.dtype, device=per_choice.device
        )
        return scores.index_put((choice_question, choice_slot), per_choice)

    def _choice_lengths(self, per_choice, target_choice, choice_chars, choice_bytes) -> torch.Tensor:
        """What each flat choice's summed log-probability is divided by (``self.normalize``)."""
        if self.normalize == "tokens":
            ones = torch.ones_like(target_choice, dtype=per_choice.dtype)
            return torch.zeros_like(per_choice).index_add(0, target_choice, ones).clamp(min=1)
        lengths = choice_chars if self.normalize == "chars" else choice_bytes
        if lengths is None:
            raise InvalidSettingError(f"normalize={self.normalize!r} needs the choices' text lengths in the batch "
                                      "(features from encode_rows carry them)")
        return lengths.to(device=per_choice.device, dtype=per_choice.dtype).clamp(min=1)
