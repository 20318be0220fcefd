"""Training with the Hugging Face ``Trainer``: SWAG collection, the SWAG learning-rate
schedule, best-validation MAP tracking, and adapter-only checkpoints.

Schedule (DESIGN.md). Before SWAG starts: the usual linear warm-up and linear decay over
the whole run. From the SWAG start step: an SWALR-style linear anneal from the rate the
schedule had reached to ``swag_learning_rate`` over ``swag_anneal_steps``, then constant.

Collection points. With ``collect_every_steps = N > 0``: after optimizer steps
``start + N, start + 2N, ...``. With ``N = 0``: after the last optimizer step of every epoch
that ends after the SWAG start (the paper's once-per-epoch collection), and after the final
step of a run that stops mid-epoch.

Checkpoints and resume. Every Trainer checkpoint also holds the posterior and the SWAG
trainer state (collection steps, the MAP candidates) and is declared complete by a marker
written last (:mod:`swag_lora.checkpoints`). ``train(resume_from_checkpoint=True)`` resumes
from the newest complete checkpoint and restores all of it, so a resumed run ends with the
posterior of an uninterrupted one.

Several processes. Every process collects the same posterior (reading parameters that FSDP
or ZeRO-3 shard through :mod:`swag_lora.distributed`); only the main process writes files.

Guards. A non-finite training loss (on any process) or non-finite tracked parameters stop
training with :class:`TrainingDivergedError`; nothing is collected or saved after it, so the
last checkpoint and its posterior stay as they were.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import numpy as np
import torch
from transformers import Trainer, TrainerCallback

from . import checkpoints
from . import distributed as D
from . import metrics as M
from .io import ArtifactWriteError, atomic_folder_write, atomic_write, is_io_error, write_error
from .posterior import PosteriorFileError, SwagPosterior

POSTERIOR_FILE = "swag_posterior.safetensors"
ANSWER_HEAD_FILE = "answer_head.safetensors"
ADAPTER_FILE = "adapter_model.safetensors"
TRAINER_STATE_FILE = "swag_trainer_state.safetensors"
TRAINER_STATE_FORMAT = "swag-lora/trainer-state"


class TrainingDivergedError(FloatingPointError):
    """Training produced a non-finite loss or non-finite parameters and was stopped."""


class BaseModelMismatchError(ValueError):
    """Saved weights or state were made with another base model than the one loaded now."""


class AdapterMismatchError(ValueError):
    """A saved adapter does not fit the model (other LoRA settings or another base model)."""


@dataclass
class SwagSettings:
    """When and how SWAG collects.

    Give the start as ``swag_start_epoch`` (fractional epochs allowed) or
    ``swag_start_step``; ``swag_learning_rate=None`` keeps the base schedule unchanged.
    """

    swag_start_epoch: float | None = None
    swag_start_step: int | None = None
    collect_every_steps: int = 0
    swag_learning_rate: float | None = None
    swag_anneal_steps: int = 0
    max_rank: int = 5

    def __post_init__(self):
        if self.swag_start_epoch is not None and self.swag_start_step is not None:
            raise ValueError("give the SWAG start as swag_start_epoch or swag_start_step, not both")
        if self.swag_start_epoch is None and self.swag_start_step is None:
            raise ValueError("the SWAG start is missing: set swag_start_epoch or swag_start_step")
        if self.collect_every_steps < 0:
            raise ValueError(f"collect_every_steps must be >= 0, got {self.collect_every_steps}")
        if self.max_rank < 0:
            raise ValueError(f"max_rank must be >= 0, got {self.max_rank}")
        if self.swag_learning_rate is not None and self.swag_learning_rate < 0:
            raise ValueError(f"swag_learning_rate must be >= 0, got {self.swag_learning_rate}")

    def start_step(self, max_steps: int, num_train_epochs: float) -> int:
        """The optimizer step at which the SWAG phase begins, for a run of ``max_steps`` steps."""
        if self.swag_start_step is not None:
            return int(self.swag_start_step)
        steps_per_epoch = max_steps / max(num_train_epochs, 1e-12)
        return int(round(self.swag_start_epoch * steps_per_epoch))


def swag_lr_multiplier(
    step: int,
    *,
    warmup_steps: int,
    total_steps: int,
    swag_start_step: int,
    anneal_steps: int,
    swag_lr_ratio: float | None,
) -> float:
    """Learning rate at ``step`` as a fraction of the base rate.

    Linear warm-up to 1 over ``warmup_steps``, linear decay toward 0 at ``total_steps``;
    from ``swag_start_step`` a linear anneal to ``swag_lr_ratio`` over ``anneal_steps``,
    then constant. ``swag_lr_ratio=None`` leaves the warm-up/decay schedule as it is.
    """

    def base(t: int) -> float:
        if t < warmup_steps:
            return t / max(1, warmup_steps)
        return max(0.0, (total_steps - t) / max(1, total_steps - warmup_steps))

    if swag_lr_ratio is None or step < swag_start_step:
        return base(step)
    start_value = base(swag_start_step)
    if anneal_steps > 0 and step < swag_start_step + anneal_steps:
        frac = (step - swag_start_step) / anneal_steps
        return start_value + frac * (swag_lr_ratio - start_value)
    return swag_lr_ratio


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


class SwagCallback(TrainerCallback):
    """Collects SWAG moments at the configured points, on every process.

    ``collected_at`` records the global step of every collection; ``map_phase_end_vector``
    holds the trainable parameters as they were when the SWAG phase began. Both are part of
    :meth:`state_dict`, which checkpoints store so that a resumed run continues exactly.
    """

    def __init__(self, posterior: SwagPosterior, settings: SwagSettings):
        self.posterior = posterior
        self.settings = settings
        self.start_step: int | None = None
        self.collected_at: list[int] = []
        self.map_phase_end_vector: torch.Tensor | None = None
        self._restored_start_step: int | None = None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.start_step = self.settings.start_step(state.max_steps, args.num_train_epochs)
        if self._restored_start_step is not None and self._restored_start_step != self.start_step:
            raise checkpoints.CheckpointError(
                f"the checkpoint's SWAG phase starts at step {self._restored_start_step}, but the settings now "
                f"give step {self.start_step}: resume with the SWAG and epoch settings of the original run"
            )
        if model is not None:  # the model as the Trainer prepared it (FSDP/ZeRO-3 may shard it)
            self.posterior.set_gather(D.parameter_gather(model, self.posterior.names, self.posterior.shapes))
        if state.global_step == self.start_step and self.map_phase_end_vector is None:
            self.map_phase_end_vector = self.posterior.read()

    def _collect(self, state) -> None:
        try:
            self.posterior.collect(check_finite=True)
        except FloatingPointError as err:
            raise TrainingDivergedError(
                f"non-finite values in the trainable parameters at step {state.global_step}; training stopped "
                "before collecting them (the last checkpoint and its posterior are unchanged)"
            ) from err
        self.collected_at.append(state.global_step)

    def _collection_due(self, state) -> bool:
        if state.global_step <= self.start_step:
            return False
        every = self.settings.collect_every_steps
        if every > 0:
            return (state.global_step - self.start_step) % every == 0
        at_epoch_end = state.epoch is not None and abs(state.epoch - round(state.epoch)) < 1e-9
        return at_epoch_end or state.global_step >= state.max_steps

    def on_step_end(self, args, state, control, **kwargs):
        # Per-epoch collection happens here too (at the epoch's last step, before that step's
        # checkpoint), so that every checkpoint holds the collections made up to its step.
        if state.global_step == self.start_step:
            self.map_phase_end_vector = self.posterior.read()
        if self._collection_due(state):
            self._collect(state)

    def state_dict(self) -> tuple[dict, dict[str, torch.Tensor]]:
        """What a checkpoint must hold to continue: (JSON-able values, tensors)."""
        meta = {"start_step": self.start_step, "collected_at": list(self.collected_at)}
        tensors = {} if self.map_phase_end_vector is None else {"map_phase_end": self.map_phase_end_vector}
        return meta, tensors

    def load_state_dict(self, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        self._restored_start_step = meta["start_step"]
        self.collected_at = list(meta["collected_at"])
        vector = tensors.get("map_phase_end")
        self.map_phase_end_vector = None if vector is None else vector.to(self.posterior.device)


class BestValidationCallback(TrainerCallback):
    """Keeps (in memory, on every process) the trainable-parameter vector with the lowest
    validation NLL seen; part of the checkpointed SWAG trainer state."""

    def __init__(self, posterior: SwagPosterior, metric: str = "eval_nll"):
        self.posterior = posterior
        self.metric = metric
        self.best_value = math.inf
        self.best_step: int | None = None
        self.best_vector: torch.Tensor | None = None

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        value = (metrics or {}).get(self.metric)
        if value is not None and math.isfinite(value) and value < self.best_value:
            self.best_value = float(value)
            self.best_step = state.global_step
            self.best_vector = self.posterior.read()

    def state_dict(self) -> tuple[dict, dict[str, torch.Tensor]]:
        meta = {"metric": self.metric, "best_value": self.best_value if self.best_vector is not None else None,
                "best_step": self.best_step}
        return meta, ({} if self.best_vector is None else {"best": self.best_vector})

    def load_state_dict(self, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        if meta["metric"] != self.metric:
            raise checkpoints.CheckpointError(f"the checkpoint tracked {meta['metric']}, this run tracks {self.metric}")
        vector = tensors.get("best")
        self.best_vector = None if vector is None else vector.to(self.posterior.device)
        self.best_value = math.inf if meta["best_value"] is None else float(meta["best_value"])
        self.best_step = meta["best_step"]


class _LossGuard(TrainerCallback):
    """Stops training before the optimizer step when any process saw a non-finite loss."""

    def __init__(self, trainer: SwagTrainer):
        self.trainer = trainer

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        flag, self.trainer._nonfinite_loss = self.trainer._nonfinite_loss, None
        if D.any_across_processes(flag if flag is not None else False):
            raise TrainingDivergedError(
                f"non-finite training loss (NaN or inf) at step {state.global_step + 1} (epoch {state.epoch or 0:.2f}); "
                "training stopped before the optimizer step, nothing more was collected or saved (the last "
                "checkpoint and its posterior are unchanged); lower the learning rate or check the data"
            )


class SwagTrainer(Trainer):
    """``Trainer`` for a :class:`~swag_lora.model.MultipleChoiceLM` with SWAG.

    Adds the SWAG schedule and callbacks, saves only the adapter (PEFT format) and answer
    head in checkpoints, never the frozen base weights, and tracks the best-validation
    parameters as the MAP estimate. Checkpoints are written by the main process only, each
    file atomically, and marked complete last; ``train(resume_from_checkpoint=True)``
    resumes from the newest complete one with the SWAG state restored.
    """

    def __init__(self, *args, swag: SwagSettings, posterior: SwagPosterior | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.swag = swag
        self.posterior = posterior or SwagPosterior(self.model, max_rank=swag.max_rank)
        self.swag_callback = SwagCallback(self.posterior, swag)
        self.best_callback = BestValidationCallback(self.posterior)
        self._nonfinite_loss: torch.Tensor | None = None
        self.resumed_from: str | None = None  # the checkpoint the last train() call resumed from
        self.add_callback(_LossGuard(self))
        self.add_callback(self.swag_callback)
        self.add_callback(self.best_callback)

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.lr_scheduler is None:
            optimizer = optimizer or self.optimizer
            start = self.swag.start_step(num_training_steps, self.args.num_train_epochs)
            warmup = self.args.get_warmup_steps(min(start, num_training_steps))
            ratio = None
            if self.swag.swag_learning_rate is not None:
                ratio = self.swag.swag_learning_rate / self.args.learning_rate
            lr_lambda = _LrLambda(warmup, num_training_steps, start, self.swag.swag_anneal_steps, ratio)
            self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
            self._created_lr_scheduler = True
        return self.lr_scheduler

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        bad = ~torch.isfinite(loss.detach()).all()  # stays on the device: no synchronisation here
        self._nonfinite_loss = bad if self._nonfinite_loss is None else (self._nonfinite_loss | bad)
        return loss

    # ------------------------------------------------------------------ resume
    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        """``Trainer.train``; ``resume_from_checkpoint=True`` picks the newest *complete*
        checkpoint of ``output_dir``, and any checkpoint given must be complete
        (:class:`~swag_lora.checkpoints.CheckpointError` otherwise). The posterior and the
        SWAG trainer state are restored with the weights."""
        if resume_from_checkpoint in (None, False) or (
            isinstance(resume_from_checkpoint, str) and resume_from_checkpoint.lower() in ("", "false", "0", "no")
        ):
            resume_from_checkpoint = None
        else:
            resume_from_checkpoint = checkpoints.resolve_resume(self.args.output_dir, resume_from_checkpoint)
            self._restore_swag_state(resume_from_checkpoint)
        self.resumed_from = resume_from_checkpoint
        return super().train(resume_from_checkpoint, *args, **kwargs)

    def _restore_swag_state(self, folder: str) -> None:
        meta, tensors = read_trainer_state(os.path.join(folder, TRAINER_STATE_FILE))
        check_same_base(meta["base_model"], base_model_fingerprint(self.model), f"checkpoint {folder}")
        if meta["n_collected"] > 0:
            loaded = SwagPosterior.load(os.path.join(folder, POSTERIOR_FILE), self.model)
            if loaded.n_collected != meta["n_collected"]:
                raise PosteriorFileError(f"{folder}: the posterior holds {loaded.n_collected} collections, "
                                         f"the SWAG state {meta['n_collected']}")
            _copy_state(loaded, self.posterior)
        self.swag_callback.load_state_dict(meta["swag"], {k[5:]: v for k, v in tensors.items() if k[:5] == "swag."})
        self.best_callback.load_state_dict(meta["best"], {k[5:]: v for k, v in tensors.items() if k[:5] == "best."})

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        if not os.path.isfile(os.path.join(resume_from_checkpoint, ADAPTER_FILE)):
            return super()._load_from_checkpoint(resume_from_checkpoint, model)  # e.g. FSDP sharded state
        vector = adapter_vector(self.accelerator.unwrap_model(self.model), resume_from_checkpoint, self.posterior)
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
            "base_model": base_model_fingerprint(self.model),
            "swag": swag_meta,
            "best": best_meta,
        }
        tensors = {**{f"swag.{k}": v for k, v in swag_tensors.items()}, **{f"best.{k}": v for k, v in best_tensors.items()}}
        write_trainer_state(os.path.join(folder, TRAINER_STATE_FILE), meta, tensors)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False):
        """Write the adapter (and tokenizer) to ``output_dir``. Under FSDP and DeepSpeed the
        tracked parameters alone are gathered (a collective, through the posterior's gather),
        instead of the Trainer's gathering of the whole model's state dict."""
        if not (self.is_fsdp_enabled or self.is_deepspeed_enabled):
            return super().save_model(output_dir, _internal_call)
        vector = self.posterior.read()
        if self.args.should_save:
            output_dir = output_dir or self.args.output_dir
            save_adapter_vector(self.accelerator.unwrap_model(self.model), output_dir, self.posterior, vector)
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


class _LrLambda:
    """Picklable multiplier for ``LambdaLR`` (checkpoints pickle the scheduler state)."""

    def __init__(self, warmup, total, start, anneal, ratio):
        self.kw = dict(
            warmup_steps=warmup, total_steps=total, swag_start_step=start, anneal_steps=anneal, swag_lr_ratio=ratio
        )

    def __call__(self, step: int) -> float:
        return swag_lr_multiplier(step, **self.kw)


def _copy_state(src: SwagPosterior, dst: SwagPosterior) -> None:
    dst._mean.copy_(src._mean)
    dst._m2.copy_(src._m2)
    dst._dev.copy_(src._dev)
    dst.n_collected = src.n_collected
    dst._next_slot = src._next_slot


# ------------------------------------------------------------------ SWAG trainer state
def write_trainer_state(path: str, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
    """The SWAG trainer state of a checkpoint: JSON values as metadata, vectors as tensors."""
    from safetensors.torch import save_file

    cpu = {k: v.detach().float().contiguous().cpu() for k, v in tensors.items()}
    metadata = {"format": TRAINER_STATE_FORMAT, "state": json.dumps(meta)}
    atomic_write(path, lambda tmp: save_file(cpu, tmp, metadata=metadata))


def read_trainer_state(path: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read what :func:`write_trainer_state` wrote; a missing or damaged file raises
    :class:`~swag_lora.checkpoints.CheckpointError`."""
    from safetensors import SafetensorError, safe_open

    if not os.path.isfile(path):
        raise checkpoints.CheckpointError(f"{path} is missing: the checkpoint has no SWAG trainer state")
    try:
        with safe_open(path, framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise checkpoints.CheckpointError(f"cannot read {path}: {err} (truncated or corrupted?)") from err
    if metadata.get("format") != TRAINER_STATE_FORMAT:
        raise checkpoints.CheckpointError(f"{path} is not a swag-lora trainer state")
    return json.loads(metadata["state"]), tensors


# ------------------------------------------------------------------------ base model
FINGERPRINT_KEYS = ("model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                    "num_attention_heads", "num_key_value_heads")


def base_model_fingerprint(model) -> dict:
    """What identifies the frozen base model's architecture (from its config), and its name."""
    model = getattr(model, "module", model)
    lm = getattr(model, "lm", model)
    base = lm.get_base_model() if hasattr(lm, "get_base_model") else lm
    config = base.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    fingerprint = {key: getattr(text, key, None) for key in FINGERPRINT_KEYS}
    fingerprint["name_or_path"] = getattr(config, "_name_or_path", None)
    return fingerprint


def check_same_base(recorded: dict | None, current: dict, what: str) -> None:
    """Raise :class:`BaseModelMismatchError` if ``what`` (a run, a checkpoint) was made with a
    base model of another architecture than ``current``; the name alone may differ (moved
    folders)."""
    if not recorded:
        return
    for key in FINGERPRINT_KEYS:
        if recorded.get(key) != current.get(key):
            raise BaseModelMismatchError(
                f"{what} was made with base model {recorded.get('name_or_path')!r} ({key}={recorded.get(key)}), "
                f"but the loaded base model {current.get('name_or_path')!r} has {key}={current.get(key)}"
            )


# --------------------------------------------------------------------------- adapters
def _tracked(model) -> list[tuple[str, torch.Tensor]]:
    return [(D.clean_name(n), p) for n, p in model.named_parameters() if p.requires_grad]


def _write_adapter(model, output_dir: str, tensors: dict[str, torch.Tensor]) -> None:
    """Write ``tensors`` (tracked name -> tensor) as a PEFT adapter folder (plus the answer
    head), every file atomically; ``adapter_config.json`` goes last."""
    from safetensors.torch import save_file

    lm_state = {name[len("lm."):]: t.detach().cpu().contiguous() for name, t in tensors.items() if name.startswith("lm.")}
    head = tensors.get("answer_head.weight")

    def write(tmp: str) -> None:
        model.lm.save_pretrained(tmp, safe_serialization=True, state_dict=lm_state)
        if head is not None:
            save_file({"weight": head.detach().cpu().contiguous()}, os.path.join(tmp, ANSWER_HEAD_FILE))

    atomic_folder_write(output_dir, write, last=("adapter_config.json",))


def save_adapter(model, output_dir: str, state_dict: dict | None = None) -> None:
    """Write the LoRA adapter (PEFT format) and, in letter mode, the answer head, from the
    model's parameters or, where they are sharded, from a gathered ``state_dict``."""
    names = [name for name, _ in _tracked(model)]
    if state_dict is None:
        tensors = dict(_tracked(model))
    else:
        state_dict = {D.clean_name(k): v for k, v in state_dict.items()}
        missing = [n for n in names if n not in state_dict]
        if missing:
            raise KeyError(f"the gathered state dict lacks tracked parameter {missing[0]!r}")
        tensors = {n: state_dict[n] for n in names}
    _write_adapter(model, output_dir, tensors)


def save_adapter_vector(model, output_dir: str, posterior: SwagPosterior, vector: torch.Tensor) -> None:
    """Write the adapter whose tracked parameters are the flat ``vector`` (MAP, SWA mean),
    without touching the model's weights (a main-process-only write, also under sharding)."""
    chunks = vector.detach().cpu().split([math.prod(s) for s in posterior.shapes])
    tensors = {
        name: chunk.view(shape).to(dtype)
        for name, chunk, shape, dtype in zip(posterior.names, chunks, posterior.shapes, posterior.param_dtypes)
    }
    _write_adapter(model, output_dir, tensors)


def adapter_vector(model, folder: str, posterior: SwagPosterior) -> torch.Tensor:
    """The flat vector (posterior order) of the adapter saved in ``folder`` (an answer head
    it lacks keeps the model's current values); raises :class:`AdapterMismatchError` naming
    the first tensor that is missing or has another shape."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(os.path.join(folder, ADAPTER_FILE))
    head_file = os.path.join(folder, ANSWER_HEAD_FILE)
    # PEFT's own name mapping (model key -> file key), applied to index placeholders
    lm_names = [n for n in posterior.names if n.startswith("lm.")]
    placeholders = {n[len("lm."):]: torch.tensor(i) for i, n in enumerate(lm_names)}
    file_key = {lm_names[int(v)]: k for k, v in get_peft_model_state_dict(model.lm, state_dict=placeholders).items()}
    parts = []
    for i, (name, shape) in enumerate(zip(posterior.names, posterior.shapes)):
        if name == "answer_head.weight":
            if not os.path.isfile(head_file):  # a plain PEFT adapter: keep the head as initialised
                offset = sum(math.prod(s) for s in posterior.shapes[:i])
                parts.append(posterior.read()[offset : offset + math.prod(shape)])
                continue
            tensor, label = load_file(head_file)["weight"], ANSWER_HEAD_FILE
        else:
            key = file_key.get(name)
            if key is None or key not in weights:
                raise AdapterMismatchError(
                    f"adapter {folder} does not fit the model: no tensor for {name!r} (other LoRA target modules?)"
                )
            tensor, label = weights[key], key
        if tuple(tensor.shape) != tuple(shape):
            raise AdapterMismatchError(
                f"adapter {folder} does not fit the model: {label} has shape {list(tensor.shape)} in the file but "
                f"{list(shape)} in the model (another base model or LoRA rank?)"
            )
        parts.append(tensor.reshape(-1).to(posterior.dtype))
    return torch.cat(parts)


def load_adapter(model, folder: str) -> None:
    """Load adapter weights (and the answer head, if the model has one) from ``folder`` into
    ``model``; :class:`AdapterMismatchError` if they do not fit it."""
    posterior = SwagPosterior(model, max_rank=0)
    posterior.write(adapter_vector(model, folder, posterior))
