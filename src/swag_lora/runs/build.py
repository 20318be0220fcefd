"""Build what a run's arguments describe: the model with its adapter and scorer, and its data.

:func:`build_model` loads the base model, applies fresh LoRA (or starts from a saved adapter,
refusing one made on another base model) and wraps it in a
:class:`~swag_lora.lm.multiple_choice.MultipleChoiceLM`; :func:`load_split` reads one split of
the task the data arguments name (a built-in or a custom task).
"""

from __future__ import annotations

from pathlib import Path

from peft import PeftModel

from ..files import read_json
from ..lm.adapters import AdapterMismatchError, load_adapter
from ..lm.fingerprint import base_model_fingerprint, check_same_base
from ..lm.generative import GenerativeLM
from ..lm.loading import apply_lora, load_causal_lm, resolve_model_path
from ..lm.multiple_choice import MultipleChoiceLM
from ..tasks import TaskSplit, TextSplit, load_task, load_text_task
from ..tasks.custom import task_from_arguments
from .arguments import DataArguments, LoraArguments, ModelArguments
from .layout import RUN_CONFIG

__all__ = ["GENERATION", "MULTIPLE_CHOICE", "OBJECTIVES", "build_model", "load_split", "load_text_split"]

MULTIPLE_CHOICE = "multiple-choice"
GENERATION = "generation"
OBJECTIVES = (MULTIPLE_CHOICE, GENERATION)


def build_model(model_args: ModelArguments, lora_args: LoraArguments, n_slots: int,
                allow_base_mismatch: bool = False, source: str | None = None):
    """Base LM (quantised as ``model_args`` ask) + fresh LoRA (or ``init_adapter``) + the
    multiple-choice scorer (for the generation objective:
    :class:`~swag_lora.lm.generative.GenerativeLM`, ``n_slots`` unused), and the tokenizer.
    An ``init_adapter`` of a swag-lora run made with another base model is refused (other
    weights of the same architecture: unless ``allow_base_mismatch``); ``source`` names what
    the adapter belongs to in that message (default: the adapter folder)."""
    path = resolve_model_path(model_args.model_name_or_path, model_args.gguf_file)  # a GGUF file: its cache
    lm, tokenizer = load_causal_lm(path, dtype=model_args.model_dtype, quantization=model_args.quantization(),
                                   attn_implementation=model_args.attn_implementation)
    if lora_args.init_adapter:
        run_config = Path(lora_args.init_adapter).parent / RUN_CONFIG
        if run_config.is_file():  # an adapter of a swag-lora run: same base model?
            recorded = read_json(run_config).get("base_model")
            check_same_base(recorded, base_model_fingerprint(lm), source or f"adapter {lora_args.init_adapter}",
                            allow_base_mismatch)
        try:
            peft_model = PeftModel.from_pretrained(lm, lora_args.init_adapter, is_trainable=True)
        except RuntimeError as err:
            if "size mismatch" not in str(err):
                raise
            raise AdapterMismatchError(f"adapter {lora_args.init_adapter} does not fit base model {path}: "
                                       "it was trained on another base model or LoRA rank") from err
    else:
        peft_model = apply_lora(lm, lora_args.settings())
    if model_args.objective == GENERATION:
        model = GenerativeLM(peft_model)
    else:
        model = MultipleChoiceLM(peft_model, tokenizer, mode=model_args.scoring, n_slots=n_slots,
                                 normalize=model_args.cloze_normalize)
    if lora_args.init_adapter:
        load_adapter(model, lora_args.init_adapter)  # also the letter head, if saved
    return model, tokenizer


def load_split(data_args: DataArguments, split: str, limit: int | None) -> TaskSplit:
    """One split of the task ``data_args`` names, as a seeded subset of ``limit`` questions."""
    return load_task(
        task_from_arguments(data_args), split, data_dir=data_args.data_dir, source=data_args.data_source, limit=limit,
        subset_seed=data_args.subset_seed,
    )


def load_text_split(data_args: DataArguments, split: str, limit: int | None) -> TextSplit:
    """One split of the text task ``data_args`` names (a task's generative form in
    ``data_args.prompt_form``, or ``--task custom`` text files), as a seeded subset."""
    return load_text_task(
        data_args.task, split, form=data_args.prompt_form, data_dir=data_args.data_dir, source=data_args.data_source,
        data_files=data_args.data_files, limit=limit, subset_seed=data_args.subset_seed,
    )
