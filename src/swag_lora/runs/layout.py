"""The files of a run directory.

::

    RUN/
      run_config.json              resolved arguments, data splits and sizes, provenance, timings
      map/                         MAP adapter (PEFT: adapter_config.json, adapter_model.safetensors)
      swa/                         SWA mean as a second PEFT adapter
      swag_posterior.safetensors   SWAG moments over the trainable parameters
      variational_posterior.safetensors   BLoB or IVON runs: the trained Gaussian (mean, std)
      train_log.json               the Trainer's log history
      checkpoint-N/                Trainer checkpoints (adapter + posterior, never base weights)
      eval/TASK/SPLIT/METHOD/      metrics.json, log_probs.npy [N, S, C], labels.npy, ids.json

``run_config.json`` is written last: a run directory without it is unfinished. The frozen base
model's weights are never written into a run.
"""

from __future__ import annotations

from ..bayes.posterior import POSTERIOR_FILE
from ..bayes.variational import VARIATIONAL_FILE
from ..lm.adapters import ADAPTER_FILE

__all__ = ["ADAPTER_FILE", "EVAL_DIR", "MAP_DIR", "POSTERIOR_FILE", "RUN_CONFIG", "SWA_DIR", "TRAIN_LOG",
           "VARIATIONAL_FILE"]

RUN_CONFIG = "run_config.json"
MAP_DIR = "map"
SWA_DIR = "swa"
TRAIN_LOG = "train_log.json"
EVAL_DIR = "eval"
