"""Run directories: train one (MAP adapter, SWA adapter, SWAG posterior, config, logs),
load one back, and evaluate its methods on any task.

Layout of a run directory::

    RUN/
      run_config.json              resolved arguments, data splits and sizes, provenance, timings
      map/                         MAP adapter (PEFT: adapter_config.json, adapter_model.safetensors)
      swa/                         SWA mean as a second PEFT adapter
      swag_posterior.safetensors   SWAG moments over the trainable parameters
      train_log.json               the Trainer's log history
      checkpoint-N/                Trainer checkpoints (adapter + posterior, never base weights)
      eval/TASK/SPLIT/METHOD/      metrics.json, log_probs.npy [N, S, C], labels.npy, ids.json

The frozen base model's weights are never written into a run.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from . import metrics as M
from .config import SMOLLM2_ALIAS, DataArguments, LoraArguments, ModelArguments, SwagArguments
from .encoding import MultipleChoiceCollator, encode_rows
from .io import read_json, write_json
from .model import MultipleChoiceLM, apply_lora, load_causal_lm
from .posterior import SwagPosterior
from .provenance import check_compatible, provenance
from .training import (
    POSTERIOR_FILE,
    AdapterMismatchError,
    SwagTrainer,
    base_model_fingerprint,
    check_same_base,
    compute_eval_metrics,
    load_adapter,
    save_adapter_vector,
)

RUN_CONFIG = "run_config.json"
MAP_DIR = "map"
SWA_DIR = "swa"


class RunError(ValueError):
    """A run directory is missing, incomplete, or incompatible."""


def resolve_model_path(name_or_path: str) -> str:
    """The packaged demo model's alias becomes its converted cache folder; anything else is kept."""
    if name_or_path == SMOLLM2_ALIAS:
        from .smollm2 import smollm2_path

        return str(smollm2_path())
    return name_or_path


def build_model(model_args: ModelArguments, lora_args: LoraArguments, n_slots: int):
    """Base LM + fresh LoRA (or ``init_adapter``) + the multiple-choice scorer, and the tokenizer."""
    path = resolve_model_path(model_args.model_name_or_path)
    kwargs = {"attn_implementation": model_args.attn_implementation}
    if model_args.gguf_file:
        kwargs["gguf_file"] = model_args.gguf_file
    lm, tokenizer = load_causal_lm(path, dtype=model_args.model_dtype, **kwargs)
    if lora_args.init_adapter:
        from peft import PeftModel

        run_config = Path(lora_args.init_adapter).parent / RUN_CONFIG
        if run_config.is_file():  # an adapter of a swag-lora run: same base model?
            recorded = read_json(run_config).get("base_model")
            check_same_base(recorded, base_model_fingerprint(lm), f"adapter {lora_args.init_adapter}")
        try:
            peft_model = PeftModel.from_pretrained(lm, lora_args.init_adapter, is_trainable=True)
        except RuntimeError as err:
            if "size mismatch" not in str(err):
                raise
            raise AdapterMismatchError(f"adapter {lora_args.init_adapter} does not fit base model {path}: "
                                       "it was trained on another base model or LoRA rank") from err
    else:
        peft_model = apply_lora(lm, lora_args.settings())
    model = MultipleChoiceLM(peft_model, tokenizer, mode=model_args.scoring, n_slots=n_slots,
                             length_normalize=model_args.cloze_length_normalize)
    if lora_args.init_adapter:
        load_adapter(model, lora_args.init_adapter)  # also the letter head, if saved
    return model, tokenizer


def _load_split(data_args: DataArguments, split: str, limit: int | None):
    from .tasks import load_task
    from .tasks.custom import task_from_arguments

    return load_task(
        task_from_arguments(data_args), split, data_dir=data_args.data_dir, source=data_args.data_source, limit=limit,
        subset_seed=data_args.subset_seed,
    )


def train_run(
    model_args: ModelArguments,
    data_args: DataArguments,
    lora_args: LoraArguments,
    swag_args: SwagArguments,
    training_args,
) -> Path:
    """Fine-tune with LoRA + SWAG and write a complete run directory (``training_args.output_dir``).

    Under several processes every process trains and holds the same posterior; only the main
    process writes. ``run_config.json`` is written last: a run directory without it is not
    finished (``load_run`` refuses it).
    """
    from transformers import set_seed

    started = time.time()
    run_dir = Path(training_args.output_dir)
    set_seed(training_args.seed)
    train_split = _load_split(data_args, "train", data_args.train_limit)
    val_split = None
    if data_args.validation_limit != 0:
        val_split = _load_split(data_args, "validation", data_args.validation_limit)
    rows = list(train_split) + (list(val_split) if val_split is not None else [])
    n_slots = max(len(r.choices) for r in rows)
    model, tokenizer = build_model(model_args, lora_args, n_slots)
    encode = lambda split: encode_rows(split, tokenizer, model_args.scoring, model_args.max_length)  # noqa: E731
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
        save_adapter_vector(model, str(run_dir / MAP_DIR), posterior, map_vector)
        save_adapter_vector(model, str(run_dir / SWA_DIR), posterior, posterior.mean())
        posterior.save(run_dir / POSTERIOR_FILE)
        write_json(run_dir / "train_log.json", trainer.state.log_history)
    config = {
        "model": asdict(model_args),
        "data": asdict(data_args),
        "lora": asdict(lora_args),
        "swag": asdict(swag_args),
        "swag_resolved": asdict(swag),
        "training": training_args.to_dict(),
        "n_slots": n_slots,
        "splits": {"train": train_split.to_dict(), "validation": val_split.to_dict() if val_split else None},
        "map_selection": map_rule,
        "swag_collected_at_steps": trainer.swag_callback.collected_at,
        "swag_start_step": trainer.swag_callback.start_step,
        "global_steps": trainer.state.global_step,
        "resumed_from": trainer.resumed_from,
        "base_model": base_model_fingerprint(model),
        "world_size": training_args.world_size,
        "train_seconds": time.time() - started,
        "provenance": provenance(),
    }
    if writes:
        write_json(run_dir / RUN_CONFIG, config)
    trainer.accelerator.wait_for_everyone()
    return run_dir


def _map_vector(trainer: SwagTrainer) -> tuple[torch.Tensor, dict]:
    best = trainer.best_callback
    if best.best_vector is not None:
        return best.best_vector, {"rule": "best validation NLL", "step": best.best_step, "eval_nll": best.best_value}
    phase_end = trainer.swag_callback.map_phase_end_vector
    if phase_end is not None:
        return phase_end, {"rule": "last iterate before the SWAG phase (no validation pass ran; with swag_start_step 0 this is the init adapter)",
                           "step": trainer.swag_callback.start_step}
    return trainer.posterior.read(), {"rule": "final weights", "step": trainer.state.global_step}


@dataclass
class LoadedRun:
    """A run directory loaded for evaluation: the model holds the MAP weights."""

    path: Path
    config: dict
    model: MultipleChoiceLM
    tokenizer: object
    posterior: SwagPosterior
    map_vector: torch.Tensor

    @property
    def name(self) -> str:
        return self.path.name


def _read_run_config(run_dir: Path) -> dict:
    if not run_dir.is_dir():
        raise RunError(f"run directory not found: {run_dir}")
    missing = [p for p in (RUN_CONFIG, POSTERIOR_FILE, f"{MAP_DIR}/adapter_model.safetensors") if not (run_dir / p).exists()]
    if missing:
        raise RunError(f"{run_dir} is not a finished swag-lora run: missing {', '.join(missing)}")
    config = read_json(run_dir / RUN_CONFIG)
    check_compatible(config.get("provenance"), f"run {run_dir}")
    return config


def load_run(run_dir: str | os.PathLike, device: str | torch.device | None = None) -> LoadedRun:
    """Load a finished run: base model, MAP adapter, answer head and SWAG posterior."""
    run_dir = Path(run_dir)
    config = _read_run_config(run_dir)
    model_args = ModelArguments(**config["model"])
    lora_args = LoraArguments(**{**config["lora"], "init_adapter": str(run_dir / MAP_DIR)})
    model, tokenizer = build_model(model_args, lora_args, int(config["n_slots"]))
    check_same_base(config.get("base_model"), base_model_fingerprint(model), f"run {run_dir}")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    posterior = SwagPosterior.load(run_dir / POSTERIOR_FILE, model)
    return LoadedRun(run_dir, config, model, tokenizer, posterior, posterior.read())


def _architecture(config: dict) -> dict:
    """What must agree for two runs to share one model (letter mode: also the answer letters).
    Settings are compared with their defaults filled in, so a run saved before a setting
    existed agrees with a newer run that leaves it at its default."""
    model = asdict(ModelArguments(**config["model"]))
    lora = {k: v for k, v in asdict(LoraArguments(**config["lora"])).items() if k != "init_adapter"}
    out = {"model": model, "lora": lora}
    if model["scoring"] == "letter":
        out["n_slots"] = config["n_slots"]
    return out


def attach_run(run_dir: str | os.PathLike, host: LoadedRun) -> LoadedRun:
    """Another run of the same base model and LoRA settings, sharing ``host``'s model: its
    posterior and MAP vector are read onto the host's parameters (which keep the host's MAP
    weights), so M runs cost one model in memory."""
    run_dir = Path(run_dir)
    config = _read_run_config(run_dir)
    mine, theirs = _architecture(config), _architecture(host.config)
    if mine != theirs:
        differing = sorted(k for k in mine if mine[k] != theirs[k])
        raise RunError(f"{run_dir} cannot share a model with {host.path}: their {', '.join(differing)} settings differ")
    posterior = SwagPosterior.load(run_dir / POSTERIOR_FILE, host.model)
    with host.posterior.written(host.map_vector):
        load_adapter(host.model, str(run_dir / MAP_DIR))
        map_vector = posterior.read()
    return LoadedRun(run_dir, config, host.model, host.tokenizer, posterior, map_vector)


@dataclass
class EvalSpec:
    """Which data to evaluate on: ``task`` and ``split``, a seeded subset of ``limit`` questions."""

    task: str
    split: str = "test"
    limit: int | None = None
    data_dir: str | None = None
    source: str = "auto"
    subset_seed: int = 0
    ood: bool | None = None  # None: out of distribution when the task is not the training task

    @classmethod
    def parse(cls, text: str, **defaults) -> EvalSpec:
        """``"arc-easy"``, ``"arc-easy:validation"`` or ``"mmlu-stem:test:250"``."""
        parts = text.split(":")
        if len(parts) > 3 or not parts[0]:
            raise ValueError(f"cannot read task spec {text!r}: use TASK[:SPLIT[:LIMIT]]")
        spec = cls(task=parts[0], **defaults)
        if len(parts) > 1 and parts[1]:
            spec.split = parts[1]
        if len(parts) > 2 and parts[2]:
            spec.limit = int(parts[2])
        return spec

    def load(self, run_config: dict | None = None):
        """The rows; with a run's config, the run's own custom task is re-created from its record."""
        from .tasks import load_task
        from .tasks.custom import run_task

        task = run_task(run_config, self.task) if run_config is not None else self.task
        return load_task(task, self.split, data_dir=self.data_dir, source=self.source, limit=self.limit,
                         subset_seed=self.subset_seed)


def evaluate_run(
    run: LoadedRun,
    spec: EvalSpec | list[EvalSpec],
    methods: list[str],
    n_samples: int = 10,
    scale: float = 1.0,
    seed: int = 0,
    ece_bins: int = M.DEFAULT_ECE_BINS,
    batch_size: int = 16,
    output_root: str | os.PathLike | None = None,
    progress: bool = True,
    **options,
) -> list[dict]:
    """Evaluate ``methods`` of one run on one dataset or several; write and return one
    metrics record per method and dataset.

    Each method is built once (fitted ones on the run's validation split) and evaluated on
    every dataset with the same members. Results go to ``output_root/TASK/SPLIT/METHOD/``
    (default ``RUN/eval``). ``options`` are further :class:`~swag_lora.methods.MethodContext`
    fields (``antithetic``, ``dropout``, ``scale_grid``, ``laplace``) and ``temperature``
    (also write every method with a fitted temperature on top).
    """
    from .evaluation import evaluate_methods, make_context, prepare_data

    specs = spec if isinstance(spec, list) else [spec]
    temperature = options.pop("temperature", False)
    ctx = make_context([run], n_samples=n_samples, scale=scale, seed=seed, batch_size=batch_size,
                       progress=progress, **options)
    datas = [prepare_data(run, s) for s in specs]
    output_root = Path(output_root) if output_root is not None else run.path / "eval"
    return evaluate_methods(ctx, datas, methods, output_root, ece_bins=ece_bins, temperature=temperature)
