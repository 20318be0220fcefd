"""Train one run: fine-tune with LoRA + SWAG (or BLoB, or IVON) and write a complete run directory.

A SWAG run collects its posterior during AdamW training. A BLoB or IVON run (``bayes_method``)
collects no SWAG moments and writes no SWA adapter; it writes its trained Gaussian to
``variational_posterior.safetensors`` (the final iterate's, as both papers use it). Every run's
``map/`` is the best-validation-NLL adapter (for BLoB and IVON: of the mean weights).

Under several processes every process trains and holds the same posterior; only the main
process writes. ``run_config.json`` is written last (see :mod:`swag_lora.runs.layout`).
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

import torch
from transformers import set_seed

from .. import distributed as D
from ..bayes.blob import BlobVariational
from ..bayes.ivon import ivon_posterior
from ..bayes.parameters import FlatParameterView
from ..errors import InvalidSettingError
from ..files import write_json
from ..lm.adapters import save_adapter_vector
from ..training.blob import BlobCallback
from ..training.checkpoints import wants_resume
from ..training.ivon import resolve_ess
from ..training.settings import SwagSettings
from ..training.trainer import SwagTrainer
from .arguments import (
    BayesArguments,
    DataArguments,
    LoraArguments,
    ModelArguments,
    RunArguments,
    SwagArguments,
)
from .config import RunConfig, RunError
from .layout import MAP_DIR, POSTERIOR_FILE, RUN_CONFIG, SWA_DIR, TRAIN_LOG, VARIATIONAL_FILE
from .lock import LOCK_FILE, run_lock
from .objectives import prepare_training
from .provenance import provenance

__all__ = ["train_run"]

NEVER = 2**62  # the SWAG start step of a run that collects no SWAG moments


def train_run(
    model_args: ModelArguments,
    data_args: DataArguments,
    lora_args: LoraArguments,
    swag_args: SwagArguments,
    training_args,
    bayes_args: BayesArguments | None = None,
    run_args: RunArguments | None = None,
) -> Path:
    """Fine-tune with LoRA and SWAG (or BLoB or IVON, ``bayes_args``) and write a complete run
    directory (``training_args.output_dir``, a ``transformers.TrainingArguments``); returns its
    path.

    The main process holds the run directory's lock (:mod:`swag_lora.runs.lock`) throughout. A
    directory that already holds files is refused unless the run resumes from one of its
    checkpoints or ``run_args.overwrite_output_dir`` (then its files are deleted first)."""
    run_args = run_args or RunArguments()
    bayes_args = bayes_args or BayesArguments()
    if bayes_args.bayes_method != "swag" and model_args.objective != "multiple-choice":
        raise InvalidSettingError(f"--bayes_method {bayes_args.bayes_method} trains multiple-choice runs only; "
                                  "generation runs train with SWAG")
    if bayes_args.bayes_method == "swag":
        swag_args.settings(training_args.num_train_epochs)  # a bad SWAG setting stops here, before any work
    run_dir = Path(training_args.output_dir)
    with run_lock(run_dir, "swag-lora train") if training_args.should_save else nullcontext():
        _prepare_output_dir(run_dir, wants_resume(training_args.resume_from_checkpoint), run_args.overwrite_output_dir,
                            training_args.should_save)
        return _train(model_args, data_args, lora_args, swag_args, training_args, bayes_args, run_args)


def _prepare_output_dir(run_dir: Path, resume: bool, overwrite: bool, main_process: bool) -> None:
    entries = sorted(e for e in os.listdir(run_dir) if e != LOCK_FILE) if run_dir.is_dir() else []
    if entries and not resume:
        if not overwrite:
            raise RunError(
                f"output directory {run_dir} is not empty: pass --resume_from_checkpoint true to continue the run "
                "in it, --overwrite_output_dir true to replace what it holds, or choose another --output_dir"
            )
        if main_process:
            for entry in entries:
                path = run_dir / entry
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    D.barrier()


def _train(model_args, data_args, lora_args, swag_args, training_args, bayes_args: BayesArguments,
           run_args: RunArguments) -> Path:
    method = bayes_args.bayes_method
    started = time.time()
    run_dir = Path(training_args.output_dir)
    set_seed(training_args.seed)
    prepared = prepare_training(model_args, data_args, lora_args, run_args.allow_base_mismatch)
    model, train_split, val_split = prepared.model, prepared.train_split, prepared.val_split
    if prepared.val_features is None:
        training_args.eval_strategy = "no"
    if prepared.best_metric == "eval_loss":
        training_args.prediction_loss_only = True  # validation needs the loss only, never the vocabulary's logits
    if not torch.cuda.is_available():
        training_args.dataloader_pin_memory = False  # nothing to pin for; avoids a warning per epoch
    swag = swag_args.settings(training_args.num_train_epochs)
    if method != "swag":
        swag = SwagSettings(swag_start_step=NEVER, max_rank=0)
    variational = _variational_kwargs(model, bayes_args, len(prepared.train_features))
    trainer = SwagTrainer(
        model=model,
        args=training_args,
        train_dataset=prepared.train_features,
        eval_dataset=prepared.val_features,
        data_collator=prepared.collator,
        compute_metrics=prepared.compute_metrics,
        processing_class=prepared.tokenizer,
        swag=swag,
        allow_base_mismatch=run_args.allow_base_mismatch,
        best_metric=prepared.best_metric,
        **variational,
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    posterior = trainer.posterior
    if method == "swag" and posterior.n_collected == 0:
        raise RunError(
            f"SWAG collected nothing: the SWAG phase starts at step {trainer.swag_callback.start_step} "
            f"but training ran {trainer.state.global_step} steps; start SWAG earlier or train longer"
        )
    map_vector, map_rule = _map_vector(trainer)  # on every process: reading may be a collective
    branch = trainer.branch_callback.branched_at if trainer.branch_callback is not None else None
    notes = [] if branch or method != "swag" else _check_map_before_swag(map_rule, trainer.swag_callback.start_step)
    writes = trainer.args.should_save  # the main process only
    if writes:
        if (run_dir / RUN_CONFIG).exists():
            (run_dir / RUN_CONFIG).unlink()  # not a finished run until rewritten below
        save_adapter_vector(model, str(run_dir / MAP_DIR), posterior.view, map_vector)
        if method == "swag":
            save_adapter_vector(model, str(run_dir / SWA_DIR), posterior.view, posterior.mean())
        else:
            _variational_posterior(trainer, bayes_args).save(run_dir / VARIATIONAL_FILE)
        posterior.save(run_dir / POSTERIOR_FILE)
        write_json(run_dir / TRAIN_LOG, trainer.state.log_history)
    config = RunConfig(
        model=model_args,
        data=data_args,
        lora=lora_args,
        swag=swag_args,
        bayes=bayes_args,
        variational=_variational_summary(trainer),
        swag_resolved=asdict(swag) if method == "swag" else None,
        training=training_args.to_dict(),
        n_slots=prepared.n_slots,
        splits={"train": train_split.to_dict(), "validation": val_split.to_dict() if val_split else None},
        map_selection=map_rule,
        swag_collected_at_steps=trainer.swag_callback.collected_at,
        swag_start_step=trainer.swag_callback.start_step,
        global_steps=trainer.state.global_step,
        resumed_from=trainer.resumed_from,
        base_model=trainer.base_fingerprint,
        world_size=training_args.world_size,
        train_seconds=time.time() - started,
        provenance=provenance(),
        warnings=notes,
        swag_branch=branch,
    )
    if writes:
        config.write(run_dir)
    trainer.accelerator.wait_for_everyone()
    return run_dir


def _check_map_before_swag(map_rule: dict, swag_start: int | None) -> list[str]:
    """A warning (issued and returned) when the best-validation MAP precedes the SWAG phase."""
    step = map_rule.get("step")
    if map_rule.get("rule") != "best validation NLL" or step is None or swag_start is None or step >= swag_start:
        return []
    message = (f"the best-validation MAP is from step {step}, before the SWAG phase began at step {swag_start}: SWA "
               "and SWAG are built from later (possibly overfit) weights than the MAP they are compared with; start "
               f"the SWAG phase earlier (--swag_start_step {step}) or train fewer epochs before it")
    warnings.warn(message, stacklevel=3)
    return [message]


def _map_vector(trainer: SwagTrainer) -> tuple[torch.Tensor, dict]:
    best = trainer.best_callback
    if best.best_vector is not None:
        return best.best_vector, {"rule": "best validation NLL", "step": best.best_step, best.metric: best.best_value}
    phase_end = trainer.swag_callback.map_phase_end_vector
    if phase_end is not None:
        return phase_end, {"rule": "last iterate before the SWAG phase (no validation pass ran; with swag_start_step 0 "
                                   "this is the init adapter)",
                           "step": trainer.swag_callback.start_step}
    return trainer.posterior.read(), {"rule": "final weights", "step": trainer.state.global_step}


def _variational_kwargs(model, bayes_args: BayesArguments, n_train: int) -> dict:
    """The SwagTrainer arguments that make it train BLoB or IVON (none for SWAG)."""
    if bayes_args.bayes_method == "blob":
        settings = bayes_args.blob()
        view = FlatParameterView.of_model(model)
        variational = BlobVariational(model, view, settings.init_std)
        return {"blob": BlobCallback(variational, settings, n_train)}
    if bayes_args.bayes_method == "ivon":
        settings = bayes_args.ivon()
        return {"ivon": settings, "ivon_ess": resolve_ess(settings, n_train)}
    return {}


def _variational_posterior(trainer: SwagTrainer, bayes_args: BayesArguments):
    """The trained Gaussian of a BLoB or IVON run, at the final iterate."""
    view = trainer.posterior.view
    if trainer.blob is not None:
        return trainer.blob.variational.posterior(view.read(), view, asdict(trainer.blob.settings))
    return ivon_posterior(trainer.ivon, view, {"learning_rate": trainer.args.learning_rate, **asdict(bayes_args.ivon())})


def _variational_summary(trainer: SwagTrainer) -> dict | None:
    if trainer.blob is not None:
        return trainer.blob.summary()
    if trainer.ivon is not None:
        return {"ess": trainer.ivon_ess, "ivon_steps": trainer.ivon.current_step}
    return None
