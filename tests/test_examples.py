"""The example launcher configurations in examples/ parse with accelerate and say what README says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("name,kind", [
    ("accelerate_ddp.yaml", "MULTI_GPU"),
    ("accelerate_fsdp.yaml", "FSDP"),
    ("accelerate_deepspeed_zero2.yaml", "DEEPSPEED"),
    ("accelerate_deepspeed_zero3.yaml", "DEEPSPEED"),
])
def test_accelerate_configs_parse(name, kind):
    from accelerate.commands.config.config_args import ClusterConfig

    config = ClusterConfig.from_yaml_file(EXAMPLES / name)
    assert config.distributed_type.name == kind and config.num_processes > 1
    if kind == "FSDP":
        assert config.fsdp_config["fsdp_use_orig_params"] is True  # needed for FSDP v1 with LoRA
    if kind == "DEEPSPEED":
        ds_file = EXAMPLES.parent / config.deepspeed_config["deepspeed_config_file"]
        stage = 3 if "zero3" in name else 2
        ds = json.loads(ds_file.read_text())
        assert ds["zero_optimization"]["stage"] == stage
        assert config.deepspeed_config["zero3_init_flag"] == (stage == 3)
        # batch sizes and precision follow the swag-lora/Trainer flags
        assert ds["train_micro_batch_size_per_gpu"] == ds["gradient_accumulation_steps"] == "auto"
