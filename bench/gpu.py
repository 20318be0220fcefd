"""SWAG-LoRA on a Llama-2-7B-shaped model on one GPU: what collection and BMA cost at scale.

    PYTHONPATH=src python bench/gpu.py                       # H200: about 2 minutes (estimated)
    PYTHONPATH=src python bench/gpu.py --tiny --device cpu   # a seconds-long smoke run, any machine

No download: the model is a ``LlamaForCausalLM`` with Llama-2-7B's shapes and random weights,
built directly on the device in bfloat16; LoRA r=8, alpha=16 on q_proj and v_proj
(``peft``), and a trainable 4-row answer head on the last position initialised from the LM
head rows (the paper's letter scoring). Inputs are random token ids of a fixed length.
It needs only torch, transformers, peft and ``swag_lora.bayes.posterior`` from this tree.

Measured (each a median over repeats; ABBA-interleaved where two settings are compared):

* training tokens/s with and without ``SwagPosterior.collect()`` after every optimizer
  step, on the same batches;
* ``collect`` and ``sample`` + ``write`` times on the device;
* a BMA evaluation with S samples, three ways on the same questions: S MAP passes (the
  baseline), S sequential passes with each sample's weights written into the model, and
  one batched pass per question group with all S samples' LoRA weights (and heads) applied
  side by side over the shared base weights, as multi-adapter serving does. The batched
  log-probabilities are checked against the sequential ones.

Writes ``bench/results/gpu.json`` (``--out`` to change).
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

from swag_lora.bayes.posterior import SwagPosterior  # noqa: E402

LLAMA2_7B = dict(
    vocab_size=32000,
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    max_position_embeddings=4096,
    rms_norm_eps=1e-5,
)
TINY = dict(
    vocab_size=512,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=4,
    max_position_embeddings=512,
    rms_norm_eps=1e-5,
)
LETTER_IDS = {"llama-2-7b": [319, 350, 315, 360], "tiny": [10, 11, 12, 13]}  # " A" .. " D"


def log(msg: str) -> None:
    print(f"[gpu-bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def spread(values: list[float], digits: int = 3) -> dict:
    values = sorted(values)
    q = statistics.quantiles(values, n=4) if len(values) >= 2 else [values[0]] * 3
    return {
        "median": round(statistics.median(values), digits),
        "q1": round(q[0], digits),
        "q3": round(q[2], digits),
        "min": round(values[0], digits),
        "max": round(values[-1], digits),
        "n": len(values),
    }


class LetterScorer(nn.Module):
    """A LoRA causal LM scored at the last position by a small trainable head (one row per letter)."""

    def __init__(self, lm: nn.Module, letter_ids: list[int]):
        super().__init__()
        self.lm = lm
        base = lm.get_base_model()
        weight = base.get_output_embeddings().weight.detach()[letter_ids].float()
        self.head = nn.Linear(weight.shape[1], len(letter_ids), bias=False, device=weight.device)
        with torch.no_grad():
            self.head.weight.copy_(weight)
        object.__setattr__(self, "decoder", base.get_decoder())  # not a second registration

    def last_hidden(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.decoder(input_ids=input_ids).last_hidden_state[:, -1]

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Choice logits [B, C] in float32 (inputs are unpadded, so the last position is real)."""
        return self.head(self.last_hidden(input_ids).float())


def build_model(shape: dict, device: torch.device, dtype: torch.dtype, seed: int):
    """The random base model, made on ``device`` in ``dtype``, with LoRA and the answer head."""
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(**shape, tie_word_embeddings=False, attn_implementation="sdpa")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            base = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    if any(p.device.type != device.type for p in base.parameters()):  # a version that ignored the context
        base = base.to(device)
    for p in base.parameters():  # parameters only: the rotary inv_freq buffer stays float32
        if p.dtype != dtype:
            p.data = p.data.to(dtype)
    base.config.use_cache = False
    lora = LoraConfig(
        r=8,
        lora_alpha=16,
        lora_dropout=0.1,
        target_modules=["q_proj", "v_proj"],
        task_type=TaskType.CAUSAL_LM,
    )
    lm = get_peft_model(base, lora)
    return lm


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def lora_layers(model: nn.Module) -> list[nn.Module]:
    """peft's LoRA-wrapped linear layers (those with lora_A / lora_B / base_layer)."""
    return [
        m
        for m in model.modules()
        if hasattr(m, "lora_A") and hasattr(m, "base_layer") and "default" in m.lora_A
    ]


# -------------------------------------------------------------------------------- train
def bench_train(model, posterior, batches, labels, pairs: int, warmup: int, lr: float, device) -> dict:
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    losses = []

    def step(i: int, with_swag: bool) -> float:
        def run():
            loss = loss_fn(model(batches[i]), labels[i])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if with_swag:
                posterior.collect()
            losses.append(loss.detach())

        return timed(run, device)

    for i in range(warmup):
        step(i % len(batches), with_swag=i % 2 == 0)
    with_t, without_t, ratios = [], [], []
    for k in range(pairs):
        i = k % len(batches)
        order = (True, False, False, True) if k % 2 == 0 else (False, True, True, False)
        t = {True: 0.0, False: 0.0}
        for w in order:
            dt = step(i, w)
            t[w] += dt
            (with_t if w else without_t).append(dt)
        ratios.append(t[True] / t[False])
    tokens = batches[0].numel()
    return {
        "batch_size": batches[0].shape[0],
        "sequence_length": batches[0].shape[1],
        "pairs": pairs,
        "design": "per batch WOOW or OWWO (W: step + collect, O: step); ratio = (W1+W2)/(O1+O2)",
        "step_s_without": spread(without_t, 4),
        "step_s_with": spread(with_t, 4),
        "tokens_per_s_without": round(tokens / statistics.median(without_t), 1),
        "tokens_per_s_with": round(tokens / statistics.median(with_t), 1),
        "overhead_ratio": spread(ratios, 4),
        "losses_finite": bool(torch.isfinite(torch.stack(losses)).all()),
        "n_collected": posterior.n_collected,
    }


def bench_posterior_ops(posterior, repeats: int, device) -> dict:
    gen = torch.Generator(device=posterior.device).manual_seed(0)
    vector = posterior.sample(generator=gen)
    ops = {
        "collect_ms": posterior.collect,
        "draw_ms": lambda: posterior.sample(generator=gen),
        "write_ms": lambda: posterior.write(vector),
        "sample_ms": lambda: posterior.write(posterior.sample(generator=gen)),
    }
    times = {k: [] for k in ops}
    for fn in ops.values():
        fn()
    for _ in range(repeats):
        for k, fn in ops.items():
            times[k].append(timed(fn, device) * 1e3)
    return {k: spread(v, 4) for k, v in times.items()}


# ---------------------------------------------------------------------------------- BMA
@torch.no_grad()
def sequential_log_probs(model, posterior, vectors, batches) -> torch.Tensor:
    """[N, S, C]: each vector written into the model, every batch run under it."""
    out = []
    for v in vectors:
        with posterior.written(v):
            out.append(torch.cat([model(b).log_softmax(-1) for b in batches]))
    return torch.stack(out, dim=1)


class BatchedSamples:
    """All S samples' LoRA factors and heads stacked, for one forward pass over S copies of a batch."""

    def __init__(self, model, posterior, vectors):
        self.model = model
        self.layers = lora_layers(model)
        self.S = len(vectors)
        weights = [(m.lora_A["default"].weight, m.lora_B["default"].weight) for m in self.layers]
        self.A = [self._stack_like(a) for a, _ in weights]
        self.B = [self._stack_like(b) for _, b in weights]
        self.head = self._stack_like(model.head.weight)
        for s, v in enumerate(
            vectors
        ):  # through the public write: the weights land where the model reads them
            with posterior.written(v):
                for i, m in enumerate(self.layers):
                    self.A[i][s].copy_(m.lora_A["default"].weight)
                    self.B[i][s].copy_(m.lora_B["default"].weight)
                self.head[s].copy_(model.head.weight)

    def _stack_like(self, t: torch.Tensor) -> torch.Tensor:
        return torch.empty((self.S, *t.shape), dtype=t.dtype, device=t.device)

    @staticmethod
    def _forward(module, A, B, S, x, *args, **kwargs):
        result = module.base_layer(x, *args, **kwargs)
        xs = x.to(A.dtype).reshape(S, -1, x.shape[-1])  # rows are sample-major
        delta = torch.bmm(torch.bmm(xs, A.transpose(1, 2)), B.transpose(1, 2)) * module.scaling["default"]
        return (result + delta.reshape(result.shape)).to(result.dtype)

    @torch.no_grad()
    def log_probs(self, batch: torch.Tensor) -> torch.Tensor:
        """[b, S, C] for one batch of b questions, in one forward pass of S·b rows."""
        for i, m in enumerate(self.layers):
            m.forward = functools.partial(self._forward, m, self.A[i], self.B[i], self.S)
        try:
            h = self.model.last_hidden(batch.repeat(self.S, 1)).float()  # [S·b, d]
        finally:
            for m in self.layers:
                del m.forward
        logits = torch.bmm(h.reshape(self.S, batch.shape[0], -1), self.head.transpose(1, 2))  # [S, b, C]
        return logits.log_softmax(-1).transpose(0, 1)


def bench_bma(
    model, posterior, questions, eval_batch: int, group: int, n_samples: int, reps: int, device
) -> dict:
    model.eval()
    map_vector = posterior.read()
    gen = torch.Generator(device=posterior.device).manual_seed(0)
    vectors = [posterior.sample(scale=1.0, generator=gen) for _ in range(n_samples)]
    seq_batches = list(questions.split(eval_batch))
    groups = list(questions.split(group))

    def map_passes():
        for _ in range(n_samples):
            sequential_log_probs(model, posterior, [map_vector], seq_batches)

    def sequential():
        return sequential_log_probs(model, posterior, vectors, seq_batches)

    def batched():
        stacked = BatchedSamples(model, posterior, vectors)
        return torch.cat([stacked.log_probs(g) for g in groups])

    ref = sequential()  # warm-up, and the reference for the batched result
    got = batched()
    map_passes()
    diff = (got - ref).abs()
    agree = (got.argmax(-1) == ref.argmax(-1)).float().mean().item()
    times = {"map": [], "sequential": [], "batched": []}
    fns = {"map": map_passes, "sequential": sequential, "batched": batched}
    for r in range(reps):
        for name in list(fns) if r % 2 == 0 else list(fns)[::-1]:
            times[name].append(timed(fns[name], device))
    torch.testing.assert_close(posterior.read(), map_vector, rtol=0, atol=0)  # weights restored
    tokens = questions.numel() * n_samples
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "n_samples": n_samples,
        "n_questions": questions.shape[0],
        "sequence_length": questions.shape[1],
        "eval_batch": eval_batch,
        "batched_group": group,
        "rows_per_batched_pass": group * n_samples,
        "reps": reps,
        "map_s": spread(times["map"], 3),
        "sequential_s": spread(times["sequential"], 3),
        "batched_s": spread(times["batched"], 3),
        "bma_overhead_ratio_sequential": round(med["sequential"] / med["map"], 4),
        "bma_overhead_ratio_batched": round(med["batched"] / med["map"], 4),
        "batched_speedup_over_sequential": round(med["sequential"] / med["batched"], 3),
        "tokens_per_s_sequential": round(tokens / med["sequential"], 1),
        "tokens_per_s_batched": round(tokens / med["batched"], 1),
        "batched_vs_sequential_max_abs_logprob_diff": round(diff.max().item(), 6),
        "batched_vs_sequential_mean_abs_logprob_diff": round(diff.mean().item(), 6),
        "batched_vs_sequential_argmax_agreement": round(agree, 4),
    }


# --------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a 2-layer model and small sizes (smoke test)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--batch", type=int, default=None, help="training batch (default 16; tiny 4)")
    parser.add_argument("--length", type=int, default=None, help="tokens per sequence (default 256; tiny 32)")
    parser.add_argument("--pairs", type=int, default=None, help="interleaved with/without pairs (default 8)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--samples", type=int, default=15, help="S for the BMA evaluation")
    parser.add_argument("--eval-questions", type=int, default=None, help="default 64; tiny 16")
    parser.add_argument(
        "--eval-batch", type=int, default=None, help="questions per sequential pass (default 32)"
    )
    parser.add_argument("--group", type=int, default=None, help="questions per batched pass (default 8)")
    parser.add_argument("--bma-reps", type=int, default=2)
    parser.add_argument("--op-repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads on CPU")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", default=None, help="default bench/results/gpu.json (with --tiny: a file in the temp folder)"
    )
    args = parser.parse_args(argv)

    wall = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run on the GPU machine, or pass --device cpu (with --tiny)")
    dtype = getattr(torch, args.dtype)
    label = "tiny" if args.tiny else "llama-2-7b"
    shape = TINY if args.tiny else LLAMA2_7B
    batch = args.batch or (4 if args.tiny else 16)
    length = args.length or (32 if args.tiny else 256)
    pairs = args.pairs or (4 if args.tiny else 8)
    n_eval = args.eval_questions or (16 if args.tiny else 64)
    eval_batch = args.eval_batch or (8 if args.tiny else 32)
    group = args.group or (4 if args.tiny else 8)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True

    import peft
    import transformers

    log(f"building a random {label} model on {device} in {args.dtype}")
    t0 = time.perf_counter()
    lm = build_model(shape, device, dtype, args.seed)
    model = LetterScorer(lm, LETTER_IDS[label])
    sync(device)
    build_s = time.perf_counter() - t0
    posterior = SwagPosterior(model, max_rank=5)
    n_lora = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad and "lora_" in n)
    log(f"built in {build_s:.1f}s; SWAG tracks P = {posterior.num_parameters:,} ({n_lora:,} LoRA + head)")

    gen = torch.Generator(device="cpu").manual_seed(args.seed)
    n_batches = 4
    batches = [
        torch.randint(0, shape["vocab_size"], (batch, length), generator=gen).to(device)
        for _ in range(n_batches)
    ]
    labels = [torch.randint(0, 4, (batch,), generator=gen).to(device) for _ in range(n_batches)]
    questions = torch.randint(0, shape["vocab_size"], (n_eval, length), generator=gen).to(device)

    log(f"training: batch {batch} x {length} tokens, {pairs} interleaved pairs")
    train = bench_train(model, posterior, batches, labels, pairs, args.warmup, lr=1e-4, device=device)
    log(
        f"  tokens/s without {train['tokens_per_s_without']}, with {train['tokens_per_s_with']}, ratio {train['overhead_ratio']['median']}"
    )
    ops = bench_posterior_ops(posterior, args.op_repeats, device)
    log(f"  collect {ops['collect_ms']['median']} ms, sample+write {ops['sample_ms']['median']} ms")
    log(f"BMA: S = {args.samples}, {n_eval} questions; MAP x S vs sequential vs batched")
    bma = bench_bma(model, posterior, questions, eval_batch, group, args.samples, args.bma_reps, device)
    log(
        f"  ratio sequential {bma['bma_overhead_ratio_sequential']}, batched {bma['bma_overhead_ratio_batched']}; "
        f"batched speed-up {bma['batched_speedup_over_sequential']}"
    )

    result = {
        "command": " ".join(["bench/gpu.py", *(argv if argv is not None else sys.argv[1:])]),
        "model": f"{label}-shaped LlamaForCausalLM, random weights, {args.dtype}; LoRA r=8 alpha=16 on q_proj, v_proj; "
        "trainable 4-row answer head (letter scoring at the last position)",
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({platform.processor()})",
        "torch_num_threads": torch.get_num_threads() if device.type == "cpu" else None,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
            "cuda": torch.version.cuda,
        },
        "num_parameters": posterior.num_parameters,
        "num_lora_parameters": n_lora,
        "posterior_bytes": posterior.state_nbytes(),
        "build_s": round(build_s, 1),
        "train_tokens_per_s_without_swag": train["tokens_per_s_without"],
        "train_tokens_per_s_with_swag": train["tokens_per_s_with"],
        "train_overhead_ratio": train["overhead_ratio"]["median"],
        "collect_ms": ops["collect_ms"]["median"],
        "sample_ms": ops["sample_ms"]["median"],
        "bma_overhead_ratio": bma["bma_overhead_ratio_sequential"],
        "bma_overhead_ratio_batched": bma["bma_overhead_ratio_batched"],
        "train": train,
        "posterior_ops": ops,
        "bma": bma,
    }
    if device.type == "cuda":
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    result["wall_seconds"] = round(time.perf_counter() - wall, 1)
    default_out = (
        Path(tempfile.gettempdir(), "swag-lora-gpu-tiny.json")
        if args.tiny
        else REPO / "bench" / "results" / "gpu.json"
    )
    out = Path(args.out or default_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    log(f"wrote {out} in {result['wall_seconds']} s")
    return result


if __name__ == "__main__":
    main()
