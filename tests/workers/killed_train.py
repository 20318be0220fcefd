"""Worker for tests/test_scale_out.py: ``swag-lora train`` that dies by SIGKILL while writing
the posterior of ``checkpoint-K`` (``python killed_train.py K TRAIN-ARGS...``).

Before dying it leaves half of the posterior file under its real name, as a writer without
temporary names would: the checkpoint then has its adapter, optimizer and Trainer state and
a truncated posterior, but no completeness marker.
"""

from __future__ import annotations

import os
import signal
import sys

from swag_lora.bayes.posterior import SwagPosterior
from swag_lora.cli import main

KILL_AT = int(sys.argv[1])
_save = SwagPosterior.save


def save_then_die(self, path):
    path = os.fspath(path)
    if os.path.basename(os.path.dirname(os.path.abspath(path))) != f"checkpoint-{KILL_AT}":
        return _save(self, path)
    _save(self, path)
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) // 2)
    os.kill(os.getpid(), signal.SIGKILL)


SwagPosterior.save = save_then_die
sys.exit(main(["train", *sys.argv[2:]]))
