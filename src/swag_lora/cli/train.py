"""``swag-lora train``: fine-tune with LoRA and collect a SWAG posterior (or train BLoB or IVON,
``--bayes_method``); writes a run directory.

Flags are parsed with ``transformers.HfArgumentParser`` over the model, data, LoRA and SWAG
arguments and the full ``TrainingArguments``, so every Trainer flag works; a YAML or JSON file
given first (or as ``--config FILE``) supplies values that later flags override.
"""

from __future__ import annotations

from transformers import HfArgumentParser, TrainingArguments

from ..errors import UsageError
from ..runs.arguments import (
    TRAINING_DEFAULTS,
    BayesArguments,
    DataArguments,
    LoraArguments,
    ModelArguments,
    RunArguments,
    SwagArguments,
    config_to_argv,
    load_config_file,
)
from ..runs.train import train_run

__all__ = ["parser", "run"]


def parser() -> HfArgumentParser:
    p = HfArgumentParser(
        (ModelArguments, DataArguments, LoraArguments, SwagArguments, BayesArguments, RunArguments, TrainingArguments),
        prog="swag-lora train",
        description="Fine-tune with LoRA and collect a SWAG posterior (or train BLoB or IVON: --bayes_method); "
                    "writes a run directory (--output_dir).",
    )
    p.set_defaults(**TRAINING_DEFAULTS)
    return p


def _expand_config_files(argv: list[str]) -> list[str]:
    """A config file given first, or as ``--config FILE``, becomes flags before the others."""
    argv = list(argv)
    if argv and not argv[0].startswith("-") and argv[0].endswith((".yaml", ".yml", ".json")):
        argv = config_to_argv(load_config_file(argv[0])) + argv[1:]
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            raise UsageError("--config needs a file path")
        argv = config_to_argv(load_config_file(argv[i + 1])) + argv[:i] + argv[i + 2 :]
    return argv


def run(argv: list[str]) -> int:
    argv = _expand_config_files(argv)
    try:
        model_args, data_args, lora_args, swag_args, bayes_args, run_args, training_args = \
            parser().parse_args_into_dataclasses(argv)
    except ValueError as err:  # TrainingArguments' own validation
        raise UsageError(str(err)) from err
    if training_args.remove_unused_columns:
        training_args.remove_unused_columns = False  # batches carry fields the model's signature does not name
    # --resume_from_checkpoint true: SwagTrainer.train picks the newest *complete* checkpoint
    run_dir = train_run(model_args, data_args, lora_args, swag_args, training_args, bayes_args, run_args)
    print(f"run written to {run_dir}")
    return 0
