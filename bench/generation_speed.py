"""Time ensemble decoding against S separate greedy decodes of the same prompts and lengths.

SmolLM2-135M-Instruct with LoRA (r = 8 on q and v) and S random weight settings of the adapters
(written into the model as SWAG members are), 8 OBQA prompts in the generative 'choices' form,
one batch, exactly ``--new_tokens`` tokens per answer (no stop tokens, so both sides decode the
same number of steps). For S = 5 and 10, ensemble decoding (one KV cache per member, every
member entered at every step, float64 averaging and per-token uncertainty) and the S separate
decodes (each member held for its whole decode, as sample-then-decode runs) are timed in
alternating order (ABBA) over ``--repeats`` rounds; MAP is one member decoding alone. Writes
``bench/results/generation_speed.json``: medians, tokens per second (answer tokens: prompts x
new tokens / seconds) and the ratio ensemble / separate (the target: at most 1.1).

One thread by default: on this project's 2 shared cores, busy with other jobs, two OpenMP threads
per process made a single decoding step 60 times slower (12 s instead of 0.19 s) by spinning.

    .venv/bin/python bench/generation_speed.py [--repeats 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from swag_lora.bayes.posterior import SwagPosterior
from swag_lora.generation.decoding import DecodingOptions, StopTokens, ensemble_decode, member_decode
from swag_lora.lm.loading import LoraSettings, apply_lora, load_causal_lm
from swag_lora.lm.smollm2 import smollm2_path
from swag_lora.lm.text_encoding import encode_prompts
from swag_lora.tasks import load_text_task

ROOT = Path(__file__).resolve().parents[1]
NO_STOPS = StopTokens(frozenset(), frozenset())


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--new_tokens", type=int, default=16)
    parser.add_argument("--samples", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--data_dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "generation_speed.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    lm, tokenizer = load_causal_lm(str(smollm2_path()), dtype="float32", attn_implementation="sdpa")
    model = apply_lora(lm, LoraSettings(lora_dropout=0.0)).eval()
    causal = model.get_base_model()
    posterior = SwagPosterior(model)
    base = posterior.read()
    gen = torch.Generator().manual_seed(0)
    vectors = [base + 0.01 * torch.randn(base.shape, generator=gen) for _ in range(max(args.samples))]
    members = [(lambda v=v: posterior.written(v)) for v in vectors]
    rows = load_text_task("obqa", "test", data_dir=args.data_dir, limit=args.prompts)
    prompts = encode_prompts(rows, tokenizer)
    options = DecodingOptions(max_new_tokens=args.new_tokens, batch_size=args.batch_size)
    pad = tokenizer.pad_token_id
    answer_tokens = len(prompts) * args.new_tokens

    def ensemble(s):
        return ensemble_decode(causal, members[:s], prompts, pad, NO_STOPS, options)

    def separate(s):
        return member_decode(causal, members[:s], prompts, pad, NO_STOPS, options)

    check = ensemble(1)  # warm-up, and every answer has exactly new_tokens tokens
    assert all(len(d.tokens) == args.new_tokens for d in check)
    times = {"map": []} | {f"ensemble_{s}": [] for s in args.samples} | {f"separate_{s}": [] for s in args.samples}
    for r in range(args.repeats):
        times["map"].append(timed(lambda: ensemble(1)))
        for s in args.samples:
            pair = [("ensemble", ensemble), ("separate", separate)]
            for name, fn in (pair if r % 2 == 0 else pair[::-1]):
                times[f"{name}_{s}"].append(timed(lambda fn=fn, s=s: fn(s)))
            print(f"round {r}: S={s} ensemble {times[f'ensemble_{s}'][-1]:.1f}s, separate "
                  f"{times[f'separate_{s}'][-1]:.1f}s", flush=True)
    median = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "setup": {"model": "SmolLM2-135M-Instruct + LoRA r=8 (q_proj, v_proj), float32, sdpa", "task": "obqa test",
                  "prompts": len(prompts), "batch_size": args.batch_size, "new_tokens": args.new_tokens,
                  "mean_prompt_tokens": sum(map(len, prompts)) / len(prompts), "threads": args.threads,
                  "repeats": args.repeats, "order": "ABBA (ensemble/separate alternate first)",
                  "machine": platform.processor() or platform.machine(), "torch": torch.__version__},
        "seconds": times,
        "median_seconds": median,
        "tokens_per_second": {"map": answer_tokens / median["map"]}
        | {f"ensemble_{s}": answer_tokens / median[f"ensemble_{s}"] for s in args.samples},
        "member_tokens_per_second": {f"ensemble_{s}": s * answer_tokens / median[f"ensemble_{s}"]
                                     for s in args.samples}
        | {f"separate_{s}": s * answer_tokens / median[f"separate_{s}"] for s in args.samples},
        "ratio_ensemble_to_separate": {str(s): median[f"ensemble_{s}"] / median[f"separate_{s}"]
                                       for s in args.samples},
        "ratio_per_round": {str(s): [e / p for e, p in zip(times[f"ensemble_{s}"], times[f"separate_{s}"])]
                            for s in args.samples},
        "target_ratio": 1.1,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("tokens_per_second", "ratio_ensemble_to_separate")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
