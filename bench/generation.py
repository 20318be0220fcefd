"""The evidence for free-form answers: train, generate with every method, and report.

    .venv/bin/python bench/generation.py run [--config bench/generation.yaml]     # resumable
    .venv/bin/python bench/generation.py report [--config bench/generation.yaml]  # from saved outputs

``run`` trains one generation run per needed training seed (``runs/generation/NAME/seed-T``; the
seeds of the config and, for the deep ensemble of seed s, s+1 .. s+M-1), then answers the task's
test prompts with every (method, mode) unit of the config, writing each unit's per-prompt answers
to ``OUTPUTS/seed-S/METHOD-MODE.jsonl``. A unit whose output exists is skipped, so an interrupted
run continues where it stopped. ``report`` recomputes every number from those files: per unit and
uncertainty score, accuracy (exact match), F1, AUROC of telling wrong answers from right ones,
PRR (full range and up to 50% rejected) and AURC, averaged over seeds, with paired bootstrap
intervals (prompts resampled jointly across seeds) of the difference to MAP's sequence
probability; it writes the results JSON and the markdown report.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from swag_lora.cli.train import run as train_command
from swag_lora.generation import Generator
from swag_lora.metrics import aurc, error_detection_auroc, paired_bootstrap, prediction_rejection_ratio
from swag_lora.runs.load import attach_run, load_run
from swag_lora.tasks import load_text_task

ROOT = Path(__file__).resolve().parents[1]
SHOWN = {"ensemble": ("msp", "perplexity", "mean_token_entropy", "epistemic"), "sample": ("semantic_entropy",)}
BASELINE = ("map-ensemble", "msp")
NAMES = {"msp": "sequence probability", "perplexity": "perplexity", "mean_token_entropy": "mean token entropy",
         "epistemic": "mutual information (mean per token)", "semantic_entropy": "semantic entropy"}


def load_config(path: str) -> dict:
    c = yaml.safe_load(Path(path).read_text())
    c["config_path"] = str(Path(path))
    return c


def run_dir(c: dict, seed: int) -> Path:
    return ROOT / "runs" / "generation" / c["name"] / f"seed-{seed}"


def output_file(c: dict, seed: int, method: str, mode: str) -> Path:
    return ROOT / c["outputs"] / f"seed-{seed}" / f"{method}-{mode}.jsonl"


def training_seeds(c: dict) -> list[int]:
    return sorted({s + m for s in c["seeds"] for m in range(c["ensemble_size"])})


def train_unit(c: dict, seed: int) -> None:
    out = run_dir(c, seed)
    if (out / "run_config.json").is_file():
        return
    flags = {"objective": "generation", "model_name_or_path": c["model"], "task": c["task"],
             "prompt_form": c["prompt_form"], "data_dir": str((ROOT / c["data_dir"]).resolve()),
             "train_limit": c["train_limit"], "validation_limit": c["validation_limit"],
             "subset_seed": c["subset_seed"], "seed": seed, "output_dir": str(out), "use_cpu": True,
             "disable_tqdm": True, **c["train"]}
    resume = out.is_dir() and any(out.glob("checkpoint-*"))
    flags["resume_from_checkpoint" if resume else "overwrite_output_dir"] = True  # continue, or clear a failed start
    argv = []
    for key, value in flags.items():
        argv += [f"--{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    started = time.time()
    train_command(argv)
    print(f"trained seed {seed} in {time.time() - started:.0f}s", flush=True)


def generate_units(c: dict, seed: int) -> None:
    todo = [(m, mode) for m, mode in c["units"] if not output_file(c, seed, m, mode).is_file()]
    if not todo:
        return
    rows = list(load_text_task(c["task"], "test", form=c["prompt_form"], data_dir=ROOT / c["data_dir"],
                               limit=c["test_limit"], subset_seed=c["subset_seed"]))
    host = load_run(run_dir(c, seed), device="cpu")
    members = [host] + [attach_run(run_dir(c, seed + m), host) for m in range(1, c["ensemble_size"])]
    g = c["generate"]
    for method, mode in todo:
        started = time.time()
        runs = members if method in ("ensemble", "multiswag") else [host]
        generator = Generator(runs, method=method, mode=mode, n_samples=g["n_samples"], scale=g["scale"], seed=seed,
                              max_new_tokens=g["max_new_tokens"], batch_size=g["batch_size"])
        answers = generator.generate(rows)
        path = output_file(c, seed, method, mode)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(a.to_dict(with_tokens=False), ensure_ascii=False) + "\n" for a in answers)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)  # a unit's output exists only when complete
        seconds = time.time() - started
        print(f"seed {seed} {method}-{mode}: {len(answers)} answers, {generator.settings['members']} members, "
              f"{seconds:.0f}s", flush=True)


# ------------------------------------------------------------------ report
def read_unit(c: dict, seed: int, method: str, mode: str) -> list[dict]:
    return [json.loads(line) for line in output_file(c, seed, method, mode).read_text(encoding="utf-8").splitlines()]


def _nan(value):
    return np.nan if value is None else value


METRICS = {  # of [N, 2] arrays: column 0 the uncertainty, column 1 the exact match
    "accuracy": lambda x, y: float(x[:, 1].mean()),
    "auroc": lambda x, y: _nan(error_detection_auroc(x[:, 0], x[:, 1] > 0.5)),
    "prr": lambda x, y: _nan(prediction_rejection_ratio(x[:, 0], x[:, 1])),
    "prr_50": lambda x, y: _nan(prediction_rejection_ratio(x[:, 0], x[:, 1], 0.5)),
    "aurc": lambda x, y: aurc(-x[:, 0], x[:, 1] > 0.5),
}


def arrays(c: dict, unit: str, score: str) -> np.ndarray:
    """[R, N, 2]: per seed, per prompt, the score and the exact match."""
    per_seed = [[[a["scores"][score], a["exact_match"]] for a in read_unit(c, seed, *_split(unit))]
                for seed in c["seeds"]]
    return np.asarray(per_seed, dtype=np.float64)


def report(c: dict) -> dict:
    units = [f"{m}-{mode}" for m, mode in c["units"]]
    ids = {u: [[a["id"] for a in read_unit(c, s, *_split(u))] for s in c["seeds"]] for u in units}
    if len({json.dumps(v) for v in ids.values()}) != 1:
        raise SystemExit("the units did not answer the same prompts")
    baseline = arrays(c, *BASELINE)
    rows, boot = [], int(c.get("n_boot", 1000))
    for unit in units:
        first = read_unit(c, c["seeds"][0], *_split(unit))
        members = len(first[0]["samples"]) if first[0].get("samples") else None
        for score in SHOWN[_split(unit)[1]]:
            if score not in first[0]["scores"] or (score == "epistemic" and unit.startswith("map")):
                continue
            x = arrays(c, unit, score)
            row = {"unit": unit, "score": score, "n": int(x.shape[1]), "seeds": len(c["seeds"]),
                   "f1": float(np.mean([[a["f1"] for a in read_unit(c, s, *_split(unit))] for s in c["seeds"]]))}
            for name, fn in METRICS.items():
                values = [fn(r, None) for r in x]
                row[name] = float(np.nanmean(values)) if not np.isnan(values).all() else None
            if (unit, score) != BASELINE:
                labels = np.zeros(x.shape[1])
                row["vs_map"] = {name: paired_bootstrap(x, baseline, labels, METRICS[name], n_boot=boot, seed=0)
                                 for name in ("accuracy", "auroc", "prr", "aurc")}
            if members:
                row["samples_per_prompt"] = members
            rows.append(row)
    return {"config": {k: v for k, v in c.items() if k != "config_path"}, "rows": rows}


def _split(unit: str) -> tuple[str, str]:
    return ("mc-dropout", unit[len("mc-dropout-"):]) if unit.startswith("mc-dropout") else tuple(unit.split("-", 1))


def fmt(v, digits=3) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def interval(d: dict | None) -> str:
    if d is None:
        return "(reference)"
    return f"{d['diff']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]"


def markdown(results: dict, c: dict) -> str:
    g, t = c["generate"], c["train"]
    lines = [
        "# Uncertainty of free-form answers: evidence",
        "",
        f"Regenerate this page from the saved per-prompt answers with `.venv/bin/python bench/generation.py report "
        f"--config {c['config_path']}`; `run` (same config) trains and generates what is missing first.",
        "",
        f"**Setup.** SmolLM2-135M-Instruct fine-tuned with LoRA (r = 8, q and v) on the generative form of "
        f"`{c['task']}` (prompt form `{c['prompt_form']}`: the question and its lettered choices, the model writes the "
        f"answer's text; correct when it equals the gold choice after SQuAD normalisation), {c['train_limit']} "
        f"training and {c['validation_limit']} validation prompts, {t['num_train_epochs']} epochs at {t['learning_rate']}"
        f", SWAG from epoch {t['swag_start_epoch']} every {t['swag_collect_every_steps']} steps at "
        f"{t['swag_learning_rate']}{' branched from the best-validation MAP' if t.get('swag_from_best') else ''}; MAP "
        f"= the best validation answer-token NLL. {c['test_limit']} test prompts, seeds {c['seeds']} (training seeds; "
        f"the same prompts for each), S = {g['n_samples']} for SWAG and MC dropout, a deep ensemble of "
        f"{c['ensemble_size']} MAP runs, greedy decoding, at most {g['max_new_tokens']} new tokens.",
        "",
        "**Columns.** Accuracy: exact match after normalisation; F1: token F1. For each uncertainty score (higher: "
        "less sure): AUROC of telling wrong answers from right ones, PRR (prediction-rejection ratio, exact match as "
        "the quality, rejecting the most uncertain first; 1 = oracle, 0 = random) over the full rejection range and "
        "up to 50% rejected, AURC (area under the risk-coverage curve; lower is better). Means over seeds. The last "
        "columns: differences to MAP with its sequence probability (accuracy, AUROC, PRR, AURC) with 95% paired "
        "bootstrap intervals over prompts.",
        "",
        "| method | mode | score | acc | F1 | AUROC | PRR | PRR50 | AURC | Δacc vs MAP | ΔAUROC | ΔPRR | ΔAURC |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        method, mode = _split(r["unit"])
        vs = r.get("vs_map")
        deltas = [interval(vs[k]) if vs else "(reference)" for k in ("accuracy", "auroc", "prr", "aurc")]
        lines.append(f"| {method} | {mode} | {NAMES.get(r['score'], r['score'])} | {fmt(r['accuracy'])} | "
                     f"{fmt(r['f1'])} | {fmt(r['auroc'])} | {fmt(r['prr'])} | {fmt(r['prr_50'])} | {fmt(r['aurc'])} | "
                     + " | ".join(deltas) + " |")
    lines += ["", "Modes: *ensemble* decodes one answer from the members' averaged next-token distribution (MAP: one "
              "member); *sample* lets each member write its own answer, groups answers by normalised exact match and "
              "answers with the majority (its uncertainty: the entropy of the groups' shares, semantic-entropy style).",
              "",
              "Notes. Answers are grouped by normalised exact match, not by an entailment model: no PyPI package "
              "found here ships an entailment model's weights (they download them from the hub, which this "
              "project cannot reach at run time). A score with few distinct values (semantic entropy of S answers, "
              f"S = {g['n_samples']}; {c['ensemble_size']} for the deep ensemble) ties many prompts; ties count as the "
              "mean over their orders in every metric. MC dropout members are re-seeded each time they are entered: "
              "in ensemble decoding a member keeps one dropout pattern for every step's token, in sample-then-decode "
              "its random stream runs on. With a few hundred prompts, differences of a few points of AUROC or PRR are "
              "within noise: read the intervals.",
              ""]
    return "\n".join(lines + speed_section())


def speed_section() -> list[str]:
    """The decoding speed measured by bench/generation_speed.py, if its results are there."""
    path = ROOT / "bench" / "results" / "generation_speed.json"
    if not path.is_file():
        return []
    r = json.loads(path.read_text())
    s, tps = r["setup"], r["tokens_per_second"]
    lines = ["## Decoding speed", "",
             f"From `bench/results/generation_speed.json` (`.venv/bin/python bench/generation_speed.py`): "
             f"{s['prompts']} OBQA prompts in one batch, exactly {s['new_tokens']} new tokens each, SmolLM2-135M with "
             f"LoRA, {s['threads']} thread on the shared 2-core CPU, medians of {s['repeats']} rounds in alternating "
             "order. Ensemble decoding (S KV caches, every member entered at every step, float64 averaging) against "
             "S separate greedy decodes of the same prompts and lengths (each member held for its whole decode).", "",
             "| S | answer tokens/s | member tokens/s (ensemble) | member tokens/s (separate) | time ensemble / separate |",
             "|---|---|---|---|---|",
             f"| 1 (MAP) | {tps['map']:.2f} | {tps['map']:.2f} | – | – |"]
    for n, ratio in r["ratio_ensemble_to_separate"].items():
        m = r["member_tokens_per_second"]
        lines.append(f"| {n} | {tps[f'ensemble_{n}']:.2f} | {m[f'ensemble_{n}']:.2f} | {m[f'separate_{n}']:.2f} | "
                     f"{ratio:.3f} |")
    rounds = [v for values in r.get("ratio_per_round", {}).values() for v in values]
    spread = f" Single rounds ranged from {min(rounds):.3f} to {max(rounds):.3f}." if rounds else ""
    return lines + ["", f"The target was a ratio of at most {r['target_ratio']}.{spread}", ""]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="The free-form answer evidence: run (resumable) or report.")
    parser.add_argument("command", choices=["run", "report"])
    parser.add_argument("--config", default=str(ROOT / "bench" / "generation.yaml"))
    args = parser.parse_args(argv)
    c = load_config(args.config)
    torch.set_num_threads(int(c.get("threads", 1)))
    if args.command == "run":
        for seed in training_seeds(c):
            train_unit(c, seed)
        for seed in c["seeds"]:
            generate_units(c, seed)
    results = report(c)
    (ROOT / c["results"]).write_text(json.dumps(results, indent=1) + "\n")
    (ROOT / c["report"]).write_text(markdown(results, c))
    print(f"wrote {c['results']} and {c['report']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
