"""``SwagTrainer``: the Hugging Face ``Trainer`` with SWAG collection, the SWAG learning-rate
schedule, best-validation MAP tracking, and adapter-only checkpoints.

The schedule is :mod:`swag_lora.training.schedule`'s and the collection points
:class:`~swag_lora.training.settings.SwagSettings`'.

Checkpoints and resume. Every Trainer checkpoint also holds the posterior and the SWAG
trainer state (collection steps, the MAP candidates) and is declared complete by a marker
written last (:mod:`swag_lora.training.checkpoints`). ``train(resume_from_checkpoint=True)`` resumes
from the newest complete checkpoint and restores all of it, so a resumed run ends with the
posterior of an uninterrupted one.

Several processes. Every process collects the same posterior (reading parameters that FSDP
or ZeRO-3 shard through :mod:`swag_lora.distributed`); only the main process writes files.

SGD for the SWAG phase. With ``SwagSettings(optimizer="sgd")`` the first phase runs on the
Trainer's optimizer and the SWAG phase on SGD with momentum
(:class:`~swag_lora.training.sgd_phase.SwitchToSgd`); a checkpoint records the switch, and a
run resumed after it rebuilds SGD for the optimizer state it loads.

BLoB and IVON. With a :class:`~swag_lora.training.blob.BlobCallback` the LoRA A outputs carry
flipout noise in training passes and a KL step follows every optimizer step; with
:class:`~swag_lora.training.settings.IvonSettings` the optimizer is IVON over the tracked
parameters and every training pass runs at one of its posterior samples. Their state (BLoB's
variance parameters, IVON's step count) is part of every checkpoint; IVON's moments are in the
Trainer's optimizer state.

Guards. A non-finite training loss (on any process) or non-finite tracked parameters stop
training with :class:`TrainingDivergedError`; nothing is collected or saved after it, so the
last checkpoint and its posterior stay as they were.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch
from transformers import Trainer

from .. import distributed as D
from .. import metrics as M
from ..bayes.posterior import POSTERIOR_FILE, PosteriorFileError, SwagPosterior
from ..errors import InvalidSettingError
from ..files import ArtifactWriteError, atomic_write, is_io_error, write_error
from ..lm.adapters import ADAPTER_FILE, adapter_vector, save_adapter, save_adapter_vector
from ..lm.fingerprint import base_model_fingerprint, check_same_base
from . import checkpoints
from .blob import BlobCallback
from .callbacks import (
    BestValidationCallback,
    BranchFromBest,
    CheckpointAfterEpochEvaluation,
    LossGuard,
    SwagCallback,
    TrainingDivergedError,
)
from .ivon import make_ivon
from .schedule import BASE_SCHEDULES, swag_lr_scheduler
from .settings import IvonSettings, SwagSettings
from .sgd_phase import SwitchToSgd, sgd_like

__all__ = ["SwagTrainer", "TrainingDivergedError", "compute_eval_metrics", "logits_metrics"]


def logits_metrics(logits, labels, n_bins: int = M.DEFAULT_ECE_BINS) -> dict[str, float]:
    """Accuracy, NLL and ECE of single-model choice logits (−inf for absent choices)."""
    logits = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    log_probs = torch.log_softmax(logits, dim=-1).numpy()[:, None, :]
    summary = M.summarise(log_probs, np.asarray(labels), n_bins)
    return {k: summary[k] for k in ("acc", "nll", "ece", "brier")}


def compute_eval_metrics(eval_prediction) -> dict[str, float]:
    """``compute_metrics`` for the Trainer: validation accuracy, NLL, ECE and Brier."""
    logits = eval_prediction.predictions
    if isinstance(logits, tuple):
        logits = logits[0]
    return logits_metrics(logits, eval_prediction.label_ids)


class SwagTrainer(Trainer):
    """``Trainer`` for a :class:`~swag_lora.lm.multiple_choice.MultipleChoiceLM` (or a
    :class:`~swag_lora.lm.generative.GenerativeLM`) with SWAG.

    Adds the SWAG schedule and callbacks, saves only the adapter (PEFT format) and answer
    head in checkpoints, never the frozen base weights, and tracks the best-validation
    parameters as the MAP estimate: lowest ``best_metric`` (``eval_nll`` of the choices; the
    answer-token NLL ``eval_loss`` for generation). Checkpoints are written by the main process only, each
    file atomically, and marked complete last; ``train(resume_from_checkpoint=True)``
    resumes from the newest complete one with the SWAG state restored.
    """

    def __init__(self, *args, swag: SwagSettings, posterior: SwagPosterior | None = None,
                 blob: BlobCallback | None = None, ivon: IvonSettings | None = None, ivon_ess: float | None = None,
                 allow_base_mismatch: bool = False, best_metric: str = "eval_nll", **kwargs):
        super().__init__(*args, **kwargs)
        self.swag = swag
        self.allow_base_mismatch = allow_base_mismatch
        # taken once, before any wrapper shards the model
        self.base_fingerprint = base_model_fingerprint(self.model)
        self.posterior = posterior or SwagPosterior(self.model, max_rank=swag.max_rank)
        self.swag_callback = SwagCallback(self.posterior, swag)
        self.best_callback = BestValidationCallback(self.posterior, metric=best_metric)
        self._nonfinite_loss: torch.Tensor | None = None
        self.resumed_from: str | None = None  # the checkpoint the last train() call resumed from
        self.blob, self.ivon_settings, self.ivon_ess = blob, ivon, ivon_ess
        self.ivon = None  # the IVON optimizer itself, once created
        self._ivon_step = 0
        self._check_variational()
        self.add_callback(LossGuard(self))
        self.add_callback(self.swag_callback)
        self.add_callback(self.best_callback)
        if blob is not None:
            self.add_callback(blob)
        self.add_callback(CheckpointAfterEpochEvaluation())
        self.branch_callback = BranchFromBest(self.swag_callback, self.best_callback, self) if swag.branch_from_best else None
        if self.branch_callback is not None:
            self.add_callback(self.branch_callback)
        self.sgd_phase = SwitchToSgd(self.swag_callback, self, swag.momentum) if swag.optimizer == "sgd" else None
        if self.sgd_phase is not None:
            self._check_sgd_phase()
            self.add_callback(self.sgd_phase)

    def _check_sgd_phase(self) -> None:
        if self.blob is not None or self.ivon_settings is not None:
            raise InvalidSettingError("a SWAG phase on SGD applies to SWAG training, not to BLoB or IVON")
        if self.is_fsdp_enabled or self.is_deepspeed_enabled:
            raise InvalidSettingError("the switch to SGD for the SWAG phase does not run under FSDP or DeepSpeed, "
                                      "which own the optimizer; run the SWAG phase as its own run instead "
                                      "(--init_adapter MAP_RUN/map --optim sgd, README)")

    def _check_variational(self) -> None:
        if self.blob is None and self.ivon_settings is None:
            return
        if self.blob is not None and self.ivon_settings is not None:
            raise InvalidSettingError("train with BLoB or with IVON, not both")
        if self.is_fsdp_enabled or self.is_deepspeed_enabled:
            raise InvalidSettingError("BLoB and IVON training do not run under FSDP or DeepSpeed")
        if self.ivon_settings is not None and self.args.world_size > 1:
            raise InvalidSettingError("IVON training runs on one process here: each process would draw its own "
                                      "weight noise while DDP averages the gradients, and the Hessian estimates "
                                      "would part ways")
        if self.ivon_settings is not None and self.args.gradient_accumulation_steps != 1:
            raise InvalidSettingError("IVON draws one posterior sample per optimizer step and records the gradient "
                                      "of that sample: use gradient_accumulation_steps 1 (a larger batch instead)")

    def create_optimizer(self, model=None):
        if self.ivon_settings is None:
            resumed_on_sgd = self.optimizer is None and self.sgd_phase is not None \
                and self.sgd_phase.switched_at is not None
            optimizer = super().create_optimizer(model)
            if resumed_on_sgd:  # the checkpoint holds SGD's state: rebuild SGD, not the first optimizer
                self.optimizer = optimizer = sgd_like(optimizer, self.sgd_phase.momentum)
            return optimizer
        if self.optimizer is None:
            self.ivon = make_ivon(self.posterior.view.params, self.ivon_settings, self.args.learning_rate,
                                  self.ivon_ess)
            self.ivon.current_step = self._ivon_step  # a resumed run continues IVON's bias correction
            self.optimizer = self.ivon
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.lr_scheduler is None:
            schedule = str(getattr(self.args.lr_scheduler_type, "value", self.args.lr_scheduler_type))
            if schedule not in BASE_SCHEDULES:
                raise InvalidSettingError(f"lr_scheduler_type {schedule} is not supported with SWAG's schedule; use "
                                          f"{', '.join(BASE_SCHEDULES)} (the SWAG phase's own rate: "
                                          "--swag_learning_rate)")
            start = self.swag.start_step(num_training_steps, self.args.num_train_epochs)
            warmup = self.args.get_warmup_steps(min(start, num_training_steps))
            self.lr_scheduler = swag_lr_scheduler(optimizer or self.optimizer, self.swag, num_training_steps,
                                                  self.args.num_train_epochs, self.args.learning_rate, warmup,
                                                  schedule)
            self._created_lr_scheduler = True
        return self.lr_scheduler

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.ivon is not None:
            with self.ivon.sampled_params(train=True):  # the pass at one sample; its gradient recorded on exit
                loss = super().training_step(model, inputs, num_items_in_batch)
        else:
            loss = super().training_step(model, inputs, num_items_in_batch)
        bad = ~torch.isfinite(loss.detach()).all()  # stays on the device: no synchronisation here
        self._nonfinite_loss = bad if self._nonfinite_loss is None else (self._nonfinite_loss | bad)
        return loss

    # ------------------------------------------------------------------ resume
    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        """``Trainer.train``; ``resume_from_checkpoint=True`` picks the newest *complete*
        checkpoint of ``output_dir``, and any checkpoint given must be complete
        (:class:`~swag_lora.training.checkpoints.CheckpointError` otherwise). The posterior and the
        SWAG trainer state are restored with the weights."""
        if not checkpoints.wants_resume(resume_from_checkpoint):
            resume_from_checkpoint = None
        else:
            resume_from_checkpoint = checkpoints.resolve_resume(self.args.output_dir, resume_from_checkpoint)
            if self.args.should_log:
                print(f"swag-lora: {checkpoints.describe_resume(resume_from_checkpoint)}", file=sys.stderr, flush=True)
            self._restore_swag_state(resume_from_checkpoint)
        self.resumed_from = resume_from_checkpoint
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def _restore_swag_state(self, folder: str) -> None:
        meta, tensors = checkpoints.read_trainer_state(os.path.join(folder, checkpoints.TRAINER_STATE_FILE))
        check_same_base(meta["base_model"], self.base_fingerprint, f"checkpoint {folder}", self.allow_base_mismatch)
        if meta["n_collected"] > 0:
            self.posterior.restore(os.path.join(folder, POSTERIOR_FILE))
            if self.posterior.n_collected != meta["n_collected"]:
                raise PosteriorFileError(f"{folder}: the posterior holds {self.posterior.n_collected} collections, "
                                         f"the SWAG state {meta['n_collected']}")
        self.swag_callback.load_state_dict(meta["swag"], {k[5:]: v for k, v in tensors.items() if k[:5] == "swag."})
        self.best_callback.load_state_dict(meta["best"], {k[5:]: v for k, v in tensors.items() if k[:5] == "best."})
        if (self.blob is not None) != ("blob" in meta):
            raise checkpoints.CheckpointError(f"checkpoint {folder} was {'' if 'blob' in meta else 'not '}trained with "
                                              "BLoB; resume with the bayes_method of the original run")
        if self.blob is not None:
            self.blob.load_state_dict(meta["blob"], {k[5:]: v for k, v in tensors.items() if k[:5] == "blob."})
        self._ivon_step = int(meta.get("ivon_step", 0))
        if self.branch_callback is not None:
            self.branch_callback.branched_at = meta.get("branched_at")
        switched = meta.get("sgd_from_step")
        if switched is not None and self.sgd_phase is None:
            raise checkpoints.CheckpointError(f"checkpoint {folder} was taken after the SWAG phase switched to SGD "
                                              f"(step {switched}); resume with the original run's --swag_optimizer "
                                              "sgd")
        if self.sgd_phase is not None:
            self.sgd_phase.switched_at = switched

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        if not os.path.isfile(os.path.join(resume_from_checkpoint, ADAPTER_FILE)):
            return super()._load_from_checkpoint(resume_from_checkpoint, model)  # e.g. FSDP sharded state
        vector = adapter_vector(self.accelerator.unwrap_model(self.model), resume_from_checkpoint, self.posterior.view)
        if model is not None:  # called after FSDP wrapped the model: write through its shards
            self.posterior.set_gather(D.parameter_gather(model, self.posterior.names, self.posterior.shapes))
        self.posterior.write(vector)

    # ------------------------------------------------------------------- saving
    def _save_checkpoint(self, model, trial):
        run_dir = self._get_output_dir(trial=trial)
        folder = os.path.join(run_dir, f"checkpoint-{self.state.global_step}")
        if self.args.should_save:
            checkpoints.invalidate(folder)
        limit, self.args.save_total_limit = self.args.save_total_limit, None  # rotate once complete
        try:
            super()._save_checkpoint(model, trial)
        except ArtifactWriteError:
            raise
        except Exception as err:
            if isinstance(err, OSError) or is_io_error(err):
                raise write_error(folder, err) from err
            raise
        finally:
            self.args.save_total_limit = limit
        self.accelerator.wait_for_everyone()  # every process's shards are on disk
        if self.args.should_save:
            self._save_swag_state(folder)
            checkpoints.mark_complete(folder, step=self.state.global_step, world_size=self.args.world_size)
            checkpoints.rotate(run_dir, limit, protect=(self.state.best_model_checkpoint,))

    def _save_swag_state(self, folder: str) -> None:
        if self.posterior.n_collected > 0:
            self.posterior.save(os.path.join(folder, POSTERIOR_FILE))
        swag_meta, swag_tensors = self.swag_callback.state_dict()
        best_meta, best_tensors = self.best_callback.state_dict()
        meta = {
            "global_step": self.state.global_step,
            "n_collected": self.posterior.n_collected,
            "base_model": self.base_fingerprint,
            "swag": swag_meta,
            "best": best_meta,
            "branched_at": self.branch_callback.branched_at if self.branch_callback is not None else None,
            "sgd_from_step": self.sgd_phase.switched_at if self.sgd_phase is not None else None,
        }
        tensors = {**{f"swag.{k}": v for k, v in swag_tensors.items()}, **{f"best.{k}": v for k, v in best_tensors.items()}}
        if self.blob is not None:
            meta["blob"], blob_tensors = self.blob.state_dict()
            tensors.update({f"blob.{k}": v for k, v in blob_tensors.items()})
        if self.ivon is not None:
            meta["ivon_step"] = self.ivon.current_step
        checkpoints.write_trainer_state(os.path.join(folder, checkpoints.TRAINER_STATE_FILE), meta, tensors)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False):
        """Write the adapter (and tokenizer) to ``output_dir``. Under FSDP and DeepSpeed the
        tracked parameters alone are gathered (a collective, through the posterior's gather),
        instead of the Trainer's gathering of the whole model's state dict."""
        if not (self.is_fsdp_enabled or self.is_deepspeed_enabled):
            return super().save_model(output_dir, _internal_call)
        vector = self.posterior.read()
        if self.args.should_save:
            output_dir = output_dir or self.args.output_dir
            save_adapter_vector(self.accelerator.unwrap_model(self.model), output_dir, self.posterior.view, vector)
            self._save_extras(output_dir)

    def _save(self, output_dir: str | None = None, state_dict=None):
        if not self.args.should_save:
            return
        output_dir = output_dir or self.args.output_dir
        model = self.accelerator.unwrap_model(self.model)
        save_adapter(model, output_dir, state_dict=state_dict)
        self._save_extras(output_dir)

    def _save_extras(self, output_dir: str) -> None:
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        atomic_write(os.path.join(output_dir, "training_args.bin"), lambda tmp: torch.save(self.args, tmp))
