"""Load a finished run for evaluation, or attach another run to an already loaded model.

:func:`load_run` refuses a run directory that is unfinished (no ``run_config.json``), written
by a swag-lora this one cannot read, or made with another base model. A BLoB or IVON run also
brings its trained Gaussian (:attr:`LoadedRun.variational`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..bayes.posterior import SwagPosterior
from ..bayes.variational import DiagonalGaussian
from ..errors import InvalidSettingError
from ..lm.adapters import load_adapter
from ..lm.fingerprint import check_same_base
from ..lm.multiple_choice import MultipleChoiceLM
from ..lm.quantization import check_same_quantization
from .arguments import QUANTIZATION_FIELDS
from .build import build_model
from .config import RunConfig, RunError
from .layout import ADAPTER_FILE, MAP_DIR, POSTERIOR_FILE, RUN_CONFIG, VARIATIONAL_FILE
from .provenance import check_compatible

__all__ = ["LoadedRun", "RunError", "attach_run", "check_run_quantization", "load_run", "read_run_config"]


@dataclass
class LoadedRun:
    """A run directory loaded for evaluation: the model holds the MAP weights."""

    path: Path
    config: RunConfig
    model: MultipleChoiceLM
    tokenizer: object
    posterior: SwagPosterior
    map_vector: torch.Tensor
    variational: DiagonalGaussian | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def trained_with(self) -> str:
        """``swag``, ``blob`` or ``ivon``: which posterior the run was trained for."""
        return self.config.trained_with


def read_run_config(run_dir: str | os.PathLike) -> RunConfig:
    """The config of a finished run this swag-lora can read (:class:`RunError` or
    :class:`~swag_lora.runs.provenance.IncompatibleRunError` otherwise)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"run directory not found: {run_dir}")
    missing = [p for p in (RUN_CONFIG, POSTERIOR_FILE, f"{MAP_DIR}/{ADAPTER_FILE}") if not (run_dir / p).exists()]
    if missing:
        raise RunError(f"{run_dir} is not a finished swag-lora run: missing {', '.join(missing)}")
    config = RunConfig.read(run_dir)
    check_compatible(config.provenance, f"run {run_dir}")
    if config.trained_with != "swag" and not (run_dir / VARIATIONAL_FILE).exists():
        raise RunError(f"{run_dir} is not a finished swag-lora run: missing {VARIATIONAL_FILE}")
    return config


def _variational(run_dir: Path, config: RunConfig, posterior: SwagPosterior) -> DiagonalGaussian | None:
    if config.trained_with == "swag":
        return None
    found = DiagonalGaussian.load(run_dir / VARIATIONAL_FILE, posterior.names, posterior.shapes)
    return found.to(posterior.device)


def check_run_quantization(config: RunConfig, quantization: dict | None, what: str) -> None:
    """Refuse (:class:`~swag_lora.lm.quantization.QuantizationMismatchError`) to use a run with
    another base-model quantisation than it was trained with. ``quantization`` holds the
    quantisation fields of :class:`~swag_lora.runs.arguments.ModelArguments` that were asked for
    (e.g. ``{"load_in_4bit": True}``); those not given are the run's."""
    if quantization:
        unknown = sorted(set(quantization) - set(QUANTIZATION_FIELDS))
        if unknown:
            raise InvalidSettingError(f"unknown quantisation setting(s) {', '.join(unknown)}; use "
                                      f"{', '.join(QUANTIZATION_FIELDS)}")
        asked = dict(quantization)
        for bits, other in (("load_in_4bit", "load_in_8bit"), ("load_in_8bit", "load_in_4bit")):
            if asked.get(bits):
                asked.setdefault(other, False)
        requested = replace(config.model, **asked).quantization()
        check_same_quantization(config.model.quantization(), requested, what)


def load_run(run_dir: str | os.PathLike, device: str | torch.device | None = None,
             allow_base_mismatch: bool = False, quantization: dict | None = None) -> LoadedRun:
    """Load a finished run: base model (quantised as in training), MAP adapter, answer head,
    SWAG posterior and (BLoB, IVON) the trained Gaussian. A ``quantization`` other than the
    run's is refused before anything loads (:func:`check_run_quantization`); a base model whose weights differ from the ones the run
    recorded is refused unless ``allow_base_mismatch`` (then a warning)."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    check_run_quantization(config, quantization, f"run {run_dir}")
    lora = replace(config.lora, init_adapter=str(run_dir / MAP_DIR))
    model, tokenizer = build_model(config.model, lora, int(config.n_slots), allow_base_mismatch, f"run {run_dir}")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    posterior = SwagPosterior.load(run_dir / POSTERIOR_FILE, model)
    return LoadedRun(run_dir, config, model, tokenizer, posterior, posterior.read(),
                     _variational(run_dir, config, posterior))


def attach_run(run_dir: str | os.PathLike, host: LoadedRun, allow_base_mismatch: bool = False) -> LoadedRun:
    """Another run of the same base model and LoRA settings, sharing ``host``'s model: its
    posterior and MAP vector are read onto the host's parameters (which keep the host's MAP
    weights), so M runs cost one model in memory. Settings are compared with their defaults
    filled in, so a run saved before a setting existed agrees with a newer run that leaves it
    at its default."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    mine, theirs = config.architecture(), host.config.architecture()
    if mine != theirs:
        differing = sorted(k for k in mine if mine[k] != theirs[k])
        raise RunError(f"{run_dir} cannot share a model with {host.path}: their {', '.join(differing)} settings differ")
    check_same_base(config.base_model, host.config.base_model or {}, f"run {run_dir}", allow_base_mismatch)
    posterior = SwagPosterior.load(run_dir / POSTERIOR_FILE, host.model)
    with host.posterior.written(host.map_vector):
        load_adapter(host.model, str(run_dir / MAP_DIR))
        map_vector = posterior.read()
    return LoadedRun(run_dir, config, host.model, host.tokenizer, posterior, map_vector,
                     _variational(run_dir, config, posterior))
