"""A causal LM with LoRA adapters trained to write answers: the loss is on the answer tokens only.

:class:`GenerativeLM` wraps a ``PeftModel`` (as :class:`~swag_lora.lm.multiple_choice.MultipleChoiceLM`
does, so adapters, checkpoints, fingerprints and the SWAG posterior see the same ``lm.``
parameter names). Its loss is the mean cross-entropy over the tokens whose label is not −100
(the answer and its end-of-sequence token; :mod:`swag_lora.lm.text_encoding`); the LM head runs
only at the positions that predict those tokens, not over every prompt position. Generation uses
``model.lm`` directly (:mod:`swag_lora.generation`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from .loading import base_causal_lm

__all__ = ["IGNORE_INDEX", "GenerativeLM", "GenerativeOutput"]

IGNORE_INDEX = -100  # label of a token that is not trained on (prompt, padding)


@dataclass
class GenerativeOutput(ModelOutput):
    """``loss``: mean answer-token cross-entropy (with labels); ``n_tokens``: how many tokens it averages."""

    loss: torch.Tensor | None = None
    n_tokens: torch.Tensor | None = None


class GenerativeLM(nn.Module):
    """A (LoRA-adapted) causal LM whose loss counts the answer tokens only."""

    # The loss is a mean over this batch's answer tokens; the Trainer must not rescale it.
    accepts_loss_kwargs = False

    def __init__(self, lm: nn.Module):
        super().__init__()
        self.lm = lm
        base = base_causal_lm(lm)
        object.__setattr__(self, "decoder", base.get_decoder())  # plain attributes: they belong to self.lm
        object.__setattr__(self, "lm_head", base.get_output_embeddings())

    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor | None = None,
                **kwargs) -> GenerativeOutput:
        """With ``labels`` ([B, T], −100 where not trained), the mean cross-entropy of the labelled
        tokens given everything before them (right-padded batches)."""
        if labels is None:
            return GenerativeOutput()
        hidden = self.decoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        targets = labels[:, 1:]
        where = targets != IGNORE_INDEX
        logits = self.lm_head(hidden[:, :-1][where]).float()
        n_tokens = where.sum()
        loss = F.cross_entropy(logits, targets[where], reduction="sum") / n_tokens.clamp(min=1)
        return GenerativeOutput(loss=loss, n_tokens=n_tokens)
