"""What a training objective needs: its data splits, the model, encoded features, the collator
and how validation picks the MAP.

- ``multiple-choice``: the task's rows, a :class:`~swag_lora.lm.multiple_choice.MultipleChoiceLM`
  with as many choice slots as the largest question has, cross-entropy over the choices; MAP =
  lowest validation ``eval_nll`` of the choices.
- ``generation``: the task's text rows (:func:`~swag_lora.runs.build.load_text_split`), a
  :class:`~swag_lora.lm.generative.GenerativeLM`, cross-entropy over the answer tokens only; MAP =
  lowest validation ``eval_loss`` (the answer-token NLL), evaluated without gathering logits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..lm.encoding import MultipleChoiceCollator, encode_rows
from ..lm.text_encoding import AnswerOnlyCollator, encode_text_rows
from ..tasks import TaskSplit
from ..training.trainer import compute_eval_metrics
from .arguments import DataArguments, LoraArguments, ModelArguments
from .build import GENERATION, OBJECTIVES, build_model, load_split, load_text_split
from .config import RunError

__all__ = ["Prepared", "prepare_training"]


@dataclass
class Prepared:
    """The model and data of one training run."""

    model: object
    tokenizer: object
    train_split: TaskSplit
    val_split: TaskSplit | None
    n_slots: int
    train_features: list[dict]
    val_features: list[dict] | None
    collator: Callable
    compute_metrics: Callable | None
    best_metric: str


def prepare_training(model_args: ModelArguments, data_args: DataArguments, lora_args: LoraArguments,
                     allow_base_mismatch: bool = False) -> Prepared:
    """Load the splits, build the model and encode the features for ``model_args.objective``."""
    if model_args.objective not in OBJECTIVES:
        raise RunError(f"unknown objective {model_args.objective!r}; choose from {', '.join(OBJECTIVES)}")
    generation = model_args.objective == GENERATION
    load = load_text_split if generation else load_split
    train_split = load(data_args, "train", data_args.train_limit)
    val_split = load(data_args, "validation", data_args.validation_limit) if data_args.validation_limit != 0 else None
    if generation:
        model, tokenizer = build_model(model_args, lora_args, 0, allow_base_mismatch)
        encode = lambda split: encode_text_rows(split, tokenizer, model_args.max_length)  # noqa: E731
        collator, metrics, best_metric, n_slots = AnswerOnlyCollator(tokenizer.pad_token_id), None, "eval_loss", 0
    else:
        rows = list(train_split) + (list(val_split) if val_split is not None else [])
        n_slots = max(len(r.choices) for r in rows)
        model, tokenizer = build_model(model_args, lora_args, n_slots, allow_base_mismatch)
        encode = lambda split: encode_rows(split, tokenizer, model_args.scoring, model_args.max_length,  # noqa: E731
                                           cloze_prompt=model_args.cloze_prompt)
        collator, metrics, best_metric = MultipleChoiceCollator(tokenizer.pad_token_id, n_slots), compute_eval_metrics, \
            "eval_nll"
    val_features = encode(val_split) if val_split is not None else None
    return Prepared(model, tokenizer, train_split, val_split, n_slots, encode(train_split), val_features, collator,
                    metrics if val_features is not None else None, best_metric)
