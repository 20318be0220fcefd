"""Worker for tests/test_distributed.py: SWAG on LoRA parameters sharded by FSDP or ZeRO-3,
two CPU processes with gloo: ``torchrun --nproc_per_node 2 sharded_gather.py KIND...`` with
KIND in fsdp1, fsdp2, zero3 (zero3 needs DeepSpeed and ``DS_ACCELERATOR=cpu``).

Checks, on every rank: the posterior reads the full parameters (equal to the unsharded
model's), ``write`` reaches the shards (the sharded model then computes what an unsharded
copy with the same weights computes), ``sampled`` restores them, and a posterior collected
across optimizer steps is the same on every rank. Exits non-zero on any failure.
"""

from __future__ import annotations

import copy
import gc
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from swag_lora import SwagPosterior  # noqa: E402
from swag_lora.distributed import parameter_gather, sharding_kind  # noqa: E402
from swag_lora.lm.loading import LoraSettings, apply_lora  # noqa: E402
from tests.conftest import make_tiny_llama, randomise_lora  # noqa: E402


def shard(model, kind: str):
    """``model`` sharded over the process group; returns (module to run, optimizer step)."""
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer

    if kind == "zero3":
        import deepspeed

        config = {"train_micro_batch_size_per_gpu": 2, "zero_optimization": {"stage": 3},
                  "zero_allow_untested_optimizer": True}
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, config=config)
        return engine

    if kind == "fsdp1":
        from functools import partial

        from torch.distributed.fsdp import FullyShardedDataParallel
        from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy

        policy = partial(transformer_auto_wrap_policy, transformer_layer_cls={LlamaDecoderLayer})
        return FullyShardedDataParallel(model, auto_wrap_policy=policy, use_orig_params=True,
                                        device_id=torch.device("cpu"))
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    for module in model.modules():
        if isinstance(module, LlamaDecoderLayer):
            fully_shard(module, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def local_numel(p: torch.Tensor) -> int:
    if hasattr(p, "ds_tensor"):  # ZeRO-3 keeps this rank's partition there
        return p.ds_tensor.numel()
    return p.to_local().numel() if hasattr(p, "to_local") else p.numel()


def same_on_all_ranks(tensor: torch.Tensor) -> bool:
    gathered = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, tensor.contiguous())
    return all(torch.equal(gathered[0], g) for g in gathered)


def check(kind: str) -> None:
    torch.manual_seed(0)
    model = apply_lora(make_tiny_llama(vocab_size=64), LoraSettings(lora_dropout=0.0))
    randomise_lora(model, seed=1)
    reference = copy.deepcopy(model)  # unsharded twin
    posterior = SwagPosterior(model, max_rank=3)
    expected = posterior.read()
    input_ids = torch.randint(0, 64, (2, 7), generator=torch.Generator().manual_seed(2))

    wrapped = shard(model, kind)
    assert sharding_kind(wrapped, posterior.names) == kind, sharding_kind(wrapped, posterior.names)
    posterior.set_gather(parameter_gather(wrapped, posterior.names, posterior.shapes))
    local = torch.tensor([sum(local_numel(p) for p in wrapped.parameters() if p.requires_grad)])
    counts = [torch.zeros_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, local)
    assert min(counts).item() < posterior.num_parameters, f"not sharded: {counts} of {posterior.num_parameters}"

    # reads see the full parameters
    torch.testing.assert_close(posterior.read(), expected, rtol=0, atol=0)

    # writes reach the shards: the sharded model computes what the unsharded twin computes
    target = expected + 0.01 * torch.randn(expected.shape, generator=torch.Generator().manual_seed(3))
    posterior.write(target)
    torch.testing.assert_close(posterior.read(), target, rtol=0, atol=0)
    SwagPosterior(reference, max_rank=0).write(target)
    with torch.no_grad():
        torch.testing.assert_close(wrapped(input_ids=input_ids).logits, reference(input_ids=input_ids).logits)

    # sampled() restores the weights on exit
    posterior.collect()
    posterior.write(expected)
    posterior.collect()
    with posterior.sampled(scale=1.0, seed=0) as sample:
        torch.testing.assert_close(posterior.read(), sample.to(posterior.dtype), rtol=0, atol=0)
    torch.testing.assert_close(posterior.read(), expected, rtol=0, atol=0)

    # collection during training: every rank holds the same posterior
    optimizer = None if kind == "zero3" else torch.optim.AdamW(
        [p for p in wrapped.parameters() if p.requires_grad], lr=1e-2)
    for step in range(3):
        rows = torch.randint(0, 64, (2, 7), generator=torch.Generator().manual_seed(10 + 2 * step + dist.get_rank()))
        loss = wrapped(input_ids=rows, labels=rows).loss
        if optimizer is None:  # the DeepSpeed engine steps itself
            wrapped.backward(loss)
            wrapped.step()
        else:
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        posterior.collect()
    assert posterior.n_collected == 5
    for tensor in (posterior.mean(), posterior.variance(), posterior.deviations()):
        assert torch.isfinite(tensor).all()
        assert same_on_all_ranks(tensor), "ranks hold different posteriors"
    assert not torch.equal(posterior.mean(), expected)  # training moved the weights
    dist.barrier()
    if dist.get_rank() == 0:
        print(f"{kind} OK: P={posterior.num_parameters}", flush=True)


def main(kinds: list[str]) -> int:
    """Run the checks, then shut down in a fixed order: every rank reaches a barrier, the process
    group is destroyed, output is flushed and the process exits without the interpreter's
    teardown, where gloo's and DeepSpeed's C++ threads can abort a process whose checks all
    passed ("terminate called without an active exception")."""
    dist.init_process_group("gloo")
    try:
        for name in kinds:
            check(name)
            gc.collect()  # sharded modules go before the process group does
        dist.barrier()
    finally:
        dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    os._exit(code)  # reached only after every check passed; a failure raised above
