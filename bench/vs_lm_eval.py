"""swag-lora against EleutherAI's lm-evaluation-harness: the same ARC-Easy questions, the same
model, thread count and batch size; wall time and accuracy of each. Writes
``bench/results/vs_lm_eval.json``.

    .venv/bin/python bench/vs_lm_eval.py                  # 500 questions, 2 rounds (about 40 min on 2 busy cores)
    .venv/bin/python bench/vs_lm_eval.py --n 40 --rounds 1 --out /tmp/vs.json   # smoke test

What is timed, for each tool, with the model already loaded (loading is not timed):

- lm-eval: ``simple_evaluate`` of its ``arc_easy`` task (``bench/lm_eval_tasks``, local data) on
  these questions (``samples=``), zero-shot, log-likelihoods of every (context, choice) pair,
  ``acc`` and ``acc_norm``; its ``batch_size`` counts (context, choice) pairs.
- swag-lora: what ``swag-lora evaluate --methods zero-shot`` does for one dataset: encode the
  rows and run the zero-shot method through the evaluation loop (``member_log_probs``), then
  accuracy; its ``batch_size`` counts questions (each packed with all its choices in one row).
  ``acc_norm`` (``--cloze_normalize chars``) needs a second, untimed pass.

The tools alternate within each round (ABBA: the one that ran second runs first in the next
round), so a drift in machine speed affects both; each time is taken on the wall clock and as
the process's CPU time (all threads). The ratio is lm-eval's median wall time over ours, with
the spread of the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lm_eval_local import local_tasks, run_lm_eval  # noqa: E402

from swag_lora.bayes.predictive import member_log_probs  # noqa: E402
from swag_lora.bayes.zero_shot import zero_shot  # noqa: E402
from swag_lora.lm.encoding import MultipleChoiceCollator, encode_rows  # noqa: E402
from swag_lora.lm.loading import LoraSettings, apply_lora, load_causal_lm  # noqa: E402
from swag_lora.lm.multiple_choice import MultipleChoiceLM  # noqa: E402
from swag_lora.lm.smollm2 import smollm2_path  # noqa: E402
from swag_lora.tasks import load_task  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TASK = "arc_easy_local"


def _clocks():
    return time.perf_counter(), time.process_time()


def _since(start) -> dict:
    wall, cpu = _clocks()
    return {"wall": wall - start[0], "cpu": cpu - start[1]}


def ours_once(model, rows, tokenizer, batch_size: int) -> tuple[dict, np.ndarray]:
    """The zero-shot method's evaluation of ``rows``: times and [N, C] log-probabilities."""
    start = _clocks()
    features = encode_rows(rows, tokenizer, "cloze")
    collator = MultipleChoiceCollator(tokenizer.pad_token_id, max(len(r.choices) for r in rows))
    encoded = _since(start)
    log_probs = member_log_probs(model, features, collator, zero_shot(model), batch_size)[:, 0]
    accuracy = float(np.mean(log_probs.argmax(1) == np.array([r.label for r in rows])))
    times = _since(start)
    times["encode_wall"] = encoded["wall"]
    return {**times, "acc": accuracy}, log_probs


def lm_eval_once(lm, include_path, indices: list[int], batch_size: int):
    start = _clocks()
    docs = run_lm_eval(lm, [TASK], include_path, samples={TASK: indices}, batch_size=batch_size)[TASK]
    return _since(start), docs


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "all": values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500, help="ARC-Easy test questions (seeded subset, seed 0)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; each runs both tools once")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--data_dir", default=os.environ.get("SWAG_LORA_DATA", str(ROOT.parent / "shared" / "data")))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "vs_lm_eval.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from lm_eval import __version__ as lm_eval_version
    from lm_eval.models.huggingface import HFLM

    model_path = str(smollm2_path())
    rows = list(load_task("arc-easy", "test", data_dir=args.data_dir, limit=args.n, subset_seed=0))
    order = [r["id"] for r in json.loads((Path(args.data_dir) / "arc-easy" / "test.json").read_text())]
    indices = sorted(order.index(r.id) for r in rows)
    rows = sorted(rows, key=lambda r: order.index(r.id))  # document order, as lm-eval reports them
    include_path = local_tasks(args.data_dir, tempfile.mkdtemp(prefix="lm_eval_tasks"))

    lm_eval_model = HFLM(pretrained=model_path, batch_size=args.batch_size, device="cpu", dtype="float32")
    base, tokenizer = load_causal_lm(model_path)
    peft = apply_lora(base, LoraSettings(lora_dropout=0.0))  # as in a run; zero-shot switches LoRA off
    ours_model = MultipleChoiceLM(peft, tokenizer, "cloze", n_slots=5).eval()

    load_start = (os.getloadavg()[0] if hasattr(os, "getloadavg") else None)
    times = {"swag-lora": [], "lm-eval": []}
    ratios, docs, log_probs = [], None, None
    for r in range(args.rounds):
        pair = {}
        for tool in (("swag-lora", "lm-eval") if r % 2 == 0 else ("lm-eval", "swag-lora")):
            if tool == "swag-lora":
                pair[tool], log_probs = ours_once(ours_model, rows, tokenizer, args.batch_size)
            else:
                pair[tool], docs = lm_eval_once(lm_eval_model, include_path, indices, args.batch_size)
            print(f"round {r} {tool}: {pair[tool]['wall']:.1f} s", flush=True)
        for tool in times:
            times[tool].append(pair[tool])
        ratios.append(pair["lm-eval"]["wall"] / pair["swag-lora"]["wall"])

    # accuracies and agreement (untimed): our acc_norm needs the chars-normalised scorer
    gold = np.array([r.label for r in rows])
    by_chars = MultipleChoiceLM(peft, tokenizer, "cloze", n_slots=5, normalize="chars").eval()
    with zero_shot(by_chars).members[0]():
        features = encode_rows(rows, tokenizer, "cloze")
        collator = MultipleChoiceCollator(tokenizer.pad_token_id, 5)
        raw_model = MultipleChoiceLM(peft, tokenizer, "cloze", n_slots=5).eval()
        normed, lls = [], []
        with torch.no_grad():
            for i in range(0, len(features), args.batch_size):
                batch = {k: v for k, v in collator(features[i : i + args.batch_size]).items() if k != "labels"}
                normed.append(by_chars(**batch).logits.double().numpy())
                lls.append(raw_model(**batch).logits.double().numpy())
    normed, lls = np.concatenate(normed), np.concatenate(lls)
    assert [d.id for d in docs] == [r.id for r in rows]
    theirs = [np.array(d.lls) for d in docs]
    max_diff = max(float(np.abs(lls[i, : len(t)] - t).max()) for i, t in enumerate(theirs))
    ours_acc = float(np.mean(lls.argmax(1) == gold))
    result = {
        "n_questions": len(rows),
        "task": "arc-easy test (seeded subset, seed 0); lm-eval's arc_easy prompt",
        "model": "SmolLM2-135M-Instruct (float32)",
        "threads": args.threads,
        "batch_size": args.batch_size,
        "batch_size_meaning": {"swag-lora": "questions per forward pass (all choices packed in one row)",
                               "lm-eval": "(context, choice) sequences per forward pass"},
        "rounds": args.rounds,
        "order": "ABBA: the tools alternate which runs first in each round",
        "wall_seconds": {tool: summary([t["wall"] for t in ts]) for tool, ts in times.items()},
        "cpu_seconds": {tool: summary([t["cpu"] for t in ts]) for tool, ts in times.items()},
        "swag_lora_encode_wall_seconds": summary([t["encode_wall"] for t in times["swag-lora"]]),
        "ratio_lm_eval_over_swag_lora": statistics.median([t["wall"] for t in times["lm-eval"]])
        / statistics.median([t["wall"] for t in times["swag-lora"]]),
        "ratio_per_round": summary(ratios),
        "accuracy": {
            "swag-lora": {"acc": ours_acc, "acc_norm": float(np.mean(normed.argmax(1) == gold)),
                          "acc_zero_shot_method": times["swag-lora"][-1]["acc"]},
            "lm-eval": {"acc": float(np.mean([d.acc for d in docs])), "acc_norm": float(np.mean([d.acc_norm for d in docs]))},
        },
        "same_answers": {"acc": int(np.sum((lls.argmax(1) == gold) == np.array([d.acc == 1.0 for d in docs]))),
                         "acc_norm": int(np.sum((normed.argmax(1) == gold) == np.array([d.acc_norm == 1.0 for d in docs])))},
        "max_abs_log_likelihood_difference": max_diff,
        "zero_shot_method_matches_raw_scores": bool(np.array_equal(log_probs.argmax(1), lls.argmax(1))),
        "load_average_start": load_start,
        "load_average_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "versions": {"lm_eval": lm_eval_version, "torch": torch.__version__, "python": platform.python_version()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("ratio_lm_eval_over_swag_lora", "accuracy")}, indent=2))


if __name__ == "__main__":
    main()
