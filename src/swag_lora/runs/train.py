"""Train one run: fine-tune with LoRA + SWAG and write a complete run directory.

Under several processes every process trains and holds the same posterior; only the main
process writes. ``run_config.json`` is written last (see :mod:`swag_lora.runs.layout`).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import torch
from transformers import set_seed

from ..files import write_json
from ..lm.adapters import save_adapter_vector
from ..lm.encoding import MultipleChoiceCollator, encode_rows
from ..lm.fingerprint import base_model_fingerprint
from ..training.trainer import SwagTrainer, compute_eval_metrics
from .arguments import DataArguments, LoraArguments, ModelArguments, SwagArguments
from .build import build_model, load_split
from .config import RunConfig, RunError
from .layout import MAP_DIR, POSTERIOR_FILE, RUN_CONFIG, SWA_DIR, TRAIN_LOG
from .provenance import provenance

__all__ = ["train_run"]


def train_run(
    model_args: ModelArguments,
    data_args: DataArguments,
    lora_args: LoraArguments,
    swag_args: SwagArguments,
    training_args,
) -> Path:
    """Fine-tune with LoRA + SWAG and write a complete run directory (``training_args.output_dir``,
    a ``transformers.TrainingArguments``); returns its path."""
    started = time.time()
    run_dir = Path(training_args.output_dir)
    set_seed(training_args.seed)
    train_split = load_split(data_args, "train", data_args.train_limit)
    val_split = None
    if data_args.validation_limit != 0:
        val_split = load_split(data_args, "validation", data_args.validation_limit)
    rows = list(train_split) + (list(val_split) if val_split is not None else [])
    n_slots = max(len(r.choices) for r in rows)
    model, tokenizer = build_model(model_args, lora_args, n_slots)
    encode = lambda split: encode_rows(split, tokenizer, model_args.scoring, model_args.max_length,  # noqa: E731
                                       cloze_prompt=model_args.cloze_prompt)
    train_features = encode(train_split)
    val_features = encode(val_split) if val_split is not None else None
    if val_features is None:
        training_args.eval_strategy = "no"
    if not torch.cuda.is_available():
        training_args.dataloader_pin_memory = False  # nothing to pin for; avoids a warning per epoch
    swag = swag_args.settings(training_args.num_train_epochs)
    trainer = SwagTrainer(
        model=model,
        args=training_args,
        train_dataset=train_features,
        eval_dataset=val_features,
        data_collator=MultipleChoiceCollator(tokenizer.pad_token_id, n_slots),
        compute_metrics=compute_eval_metrics if val_features is not None else None,
        processing_class=tokenizer,
        swag=swag,
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    posterior = trainer.posterior
    if posterior.n_collected == 0:
        raise RunError(
            f"SWAG collected nothing: the SWAG phase starts at step {trainer.swag_callback.start_step} "
            f"but training ran {trainer.state.global_step} steps; start SWAG earlier or train longer"
        )
    map_vector, map_rule = _map_vector(trainer)  # on every process: reading may be a collective
    writes = trainer.args.should_save  # the main process only
    if writes:
        if (run_dir / RUN_CONFIG).exists():
            (run_dir / RUN_CONFIG).unlink()  # not a finished run until rewritten below
        save_adapter_vector(model, str(run_dir / MAP_DIR), posterior.view, map_vector)
        save_adapter_vector(model, str(run_dir / SWA_DIR), posterior.view, posterior.mean())
        posterior.save(run_dir / POSTERIOR_FILE)
        write_json(run_dir / TRAIN_LOG, trainer.state.log_history)
    config = RunConfig(
        model=model_args,
        data=data_args,
        lora=lora_args,
        swag=swag_args,
        swag_resolved=asdict(swag),
        training=training_args.to_dict(),
        n_slots=n_slots,
        splits={"train": train_split.to_dict(), "validation": val_split.to_dict() if val_split else None},
        map_selection=map_rule,
        swag_collected_at_steps=trainer.swag_callback.collected_at,
        swag_start_step=trainer.swag_callback.start_step,
        global_steps=trainer.state.global_step,
        resumed_from=trainer.resumed_from,
        base_model=base_model_fingerprint(model),
        world_size=training_args.world_size,
        train_seconds=time.time() - started,
        provenance=provenance(),
    )
    if writes:
        config.write(run_dir)
    trainer.accelerator.wait_for_everyone()
    return run_dir


def _map_vector(trainer: SwagTrainer) -> tuple[torch.Tensor, dict]:
    best = trainer.best_callback
    if best.best_vector is not None:
        return best.best_vector, {"rule": "best validation NLL", "step": best.best_step, "eval_nll": best.best_value}
    phase_end = trainer.swag_callback.map_phase_end_vector
    if phase_end is not None:
        return phase_end, {"rule": "last iterate before the SWAG phase (no validation pass ran; with swag_start_step 0 "
                                   "this is the init adapter)",
                           "step": trainer.swag_callback.start_step}
    return trainer.posterior.read(), {"rule": "final weights", "step": trainer.state.global_step}
