"""Time one cloze training step (forward, backward, AdamW) for 16 ARC-Easy questions on SmolLM2-135M.

Compares the packed scorer (each question once, all choices in one row with a block mask)
with the plain implementation the design notes measured (every choice as its own full
sequence, LM head only at choice tokens). Writes ``bench/results/cloze_step.json``.

    .venv/bin/python bench/cloze_step.py [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from swag_lora.lm.encoding import MultipleChoiceCollator, encode_rows
from swag_lora.lm.loading import apply_lora, load_causal_lm
from swag_lora.lm.multiple_choice import MultipleChoiceLM
from swag_lora.lm.smollm2 import smollm2_path
from swag_lora.tasks import load_task

ROOT = Path(__file__).resolve().parents[1]


def plain_cloze_loss(model: MultipleChoiceLM, features: list[dict]) -> torch.Tensor:
    """Every choice as its own right-padded sequence (context + choice); head at choice tokens only."""
    seqs, starts, owners, targets = [], [], [], []
    for q, f in enumerate(features):
        for slot, (cont, c) in enumerate(zip(f["continuations"], f["context_index"])):
            ctx = f["contexts"][c]
            seqs.append(ctx + cont)
            starts.append(len(ctx))
            owners.append((q, slot))
            targets.append(cont)
    width = max(map(len, seqs))
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    mask = torch.zeros(len(seqs), width, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    hidden = model.decoder(input_ids=ids, attention_mask=mask).last_hidden_state
    rows, pos, tok = [], [], []
    for i, (start, cont) in enumerate(zip(starts, targets)):
        for t, token in enumerate(cont):
            rows.append(i)
            pos.append(start - 1 + t)
            tok.append(token)
    logp = model.lm_head(hidden[rows, pos]).float().log_softmax(-1)[range(len(tok)), tok]
    per_seq = torch.zeros(len(seqs)).index_add(0, torch.tensor(rows), logp)
    scores = torch.full((len(features), model.n_slots), float("-inf"))
    for i, (q, slot) in enumerate(owners):
        scores[q, slot] = per_seq[i]
    labels = torch.tensor([f["label"] for f in features])
    return torch.nn.functional.cross_entropy(scores, labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data_dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "cloze_step.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    lm, tok = load_causal_lm(str(smollm2_path()))
    model = MultipleChoiceLM(apply_lora(lm), tok, mode="cloze", n_slots=5).train()
    rows = list(load_task("arc-easy", "train", data_dir=args.data_dir, limit=16 * (args.repeats + 1)))
    features = encode_rows(rows, tok, "cloze")
    collator = MultipleChoiceCollator(tok.pad_token_id, 5)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.0)

    def step(batch_features, packed: bool) -> float:
        start = time.perf_counter()
        loss = model(**collator(batch_features)).loss if packed else plain_cloze_loss(model, batch_features)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return time.perf_counter() - start

    step(features[:16], True)  # warm-up
    packed, plain = [], []
    for r in range(1, args.repeats + 1):  # interleaved, same batches for both
        batch = features[16 * r : 16 * (r + 1)]
        packed.append(step(batch, True))
        plain.append(step(batch, False))
    result = {
        "command": "bench/cloze_step.py",
        "questions_per_step": 16,
        "threads": args.threads,
        "repeats": args.repeats,
        "packed_step_s_median": statistics.median(packed),
        "plain_step_s_median": statistics.median(plain),
        "speedup": statistics.median(plain) / statistics.median(packed),
        "packed_step_s": packed,
        "plain_step_s": plain,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list)}, indent=2))


if __name__ == "__main__":
    main()
