"""swag-lora: Bayesian LoRA fine-tuning of causal LMs with SWAG.

The public API, in the style of ``torch.optim.swa_utils``::

    from swag_lora import SwagPosterior, SwagCallback, SwagSettings

    posterior = SwagPosterior(model)                       # over every trainable parameter
    callback = SwagCallback(posterior, SwagSettings(swag_start_epoch=2, collect_every_steps=10))
    trainer = transformers.Trainer(model, args, ..., callbacks=[callback])   # or trl.SFTTrainer

and, to evaluate: :func:`load_run`, :func:`evaluate_run`, :class:`Predictor` / :func:`predict`,
:class:`Generator` / :func:`generate` (free-form answers with their uncertainty),
:class:`SamplingOptions`, the :class:`Predictive` protocol with :func:`evaluate_predictive`,
and :mod:`swag_lora.metrics`.

Names are imported on first use, so ``import swag_lora`` stays cheap and the posterior maths
never loads ``transformers``.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

from .version import __version__

# bitsandbytes (imported by peft whenever it is installed) logs a warning at import on CPUs
# with AVX512-BF16 that an optional kernel package from the hub is missing, then uses its own
# kernel: nothing to act on, so every command would print it for nothing.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

# public name -> module that defines it
_EXPORTS = {
    "SwagPosterior": "swag_lora.bayes.posterior",
    "SamplingOptions": "swag_lora.bayes.sampling",
    "Predictive": "swag_lora.bayes.predictive",
    "Method": "swag_lora.bayes.predictive",
    "evaluate_predictive": "swag_lora.bayes.predictive",
    "SwagSettings": "swag_lora.training.settings",
    "swag_lr_scheduler": "swag_lora.training.schedule",
    "SwagCallback": "swag_lora.training.callbacks",
    "SwagTrainer": "swag_lora.training.trainer",
    "MultipleChoiceLM": "swag_lora.lm.multiple_choice",
    "load_run": "swag_lora.runs.load",
    "evaluate_run": "swag_lora.evaluation.harness",
    "EvalSpec": "swag_lora.evaluation.data",
    "Predictor": "swag_lora.prediction.predictor",
    "predict": "swag_lora.prediction.predictor",
    "Generator": "swag_lora.generation.generator",
    "generate": "swag_lora.generation.generator",
    "metrics": "swag_lora.metrics",
}

__all__ = [
    "EvalSpec",
    "Generator",
    "Method",
    "MultipleChoiceLM",
    "Predictive",
    "Predictor",
    "SamplingOptions",
    "SwagCallback",
    "SwagPosterior",
    "SwagSettings",
    "SwagTrainer",
    "__version__",
    "evaluate_predictive",
    "evaluate_run",
    "generate",
    "load_run",
    "metrics",
    "predict",
    "swag_lr_scheduler",
]
if set(__all__) != {"__version__", *_EXPORTS}:  # pragma: no cover - a name added in one place only
    raise RuntimeError("swag_lora.__all__ and its lazy exports differ")

if TYPE_CHECKING:  # for type checkers and IDEs; at run time names load lazily below
    from . import metrics
    from .bayes.posterior import SwagPosterior
    from .bayes.predictive import Method, Predictive, evaluate_predictive
    from .bayes.sampling import SamplingOptions
    from .evaluation.data import EvalSpec
    from .evaluation.harness import evaluate_run
    from .generation.generator import Generator, generate
    from .lm.multiple_choice import MultipleChoiceLM
    from .prediction.predictor import Predictor, predict
    from .runs.load import load_run
    from .training.callbacks import SwagCallback
    from .training.schedule import swag_lr_scheduler
    from .training.settings import SwagSettings
    from .training.trainer import SwagTrainer


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'swag_lora' has no attribute {name!r}")
    loaded = importlib.import_module(module)
    value = loaded if module.endswith("." + name) else getattr(loaded, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
