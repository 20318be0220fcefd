"""SWAG on sharded LoRA parameters: FSDP (v1 and v2) and DeepSpeed ZeRO-3 on two CPU
processes with gloo (tests/workers/sharded_gather.py says what is checked).

The Trainer cannot run FSDP or DeepSpeed on CPUs (accelerate enables them for GPU-like
devices only), so these tests drive the sharding libraries directly; the Trainer path is
configured in examples/ and needs GPUs.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).parent / "workers" / "sharded_gather.py"


def launch(*kinds: str, env_extra: dict | None = None) -> str:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", **(env_extra or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER), *kinds],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-5000:]}"
    return proc.stdout


def test_fsdp_sharded_parameters_are_read_and_written_whole():
    out = launch("fsdp1", "fsdp2")
    assert "fsdp1 OK" in out and "fsdp2 OK" in out


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="DeepSpeed is not installed")
def test_zero3_partitioned_parameters_are_read_and_written_whole():
    assert "zero3 OK" in launch("zero3", env_extra={"DS_ACCELERATOR": "cpu"})
