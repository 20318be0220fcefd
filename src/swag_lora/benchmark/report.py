"""``docs/results.md`` from the calibration benchmark's results alone.

Reads ``calibration.json``, ``calibration_runs.json`` and the saved predictives written by
:func:`swag_lora.benchmark.results.collect` (plus, if present, the hand-written reading in
``calibration_notes.md``, included verbatim), and writes the markdown report with tables
(mean ± std over seeds), paired bootstrap intervals of the differences to MAP, the verdict on
each claim, the validation tuning, the wall time, and PNG plots beside it in ``img/``.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..files import read_json, write_text
from ..metrics.bootstrap import paired_bootstrap
from ..report.format import mean_std, method_order
from ..report.plots import draw_reliability, pyplot, save_figure
from .results import RESULTS_FILE, RUNS_FILE, load_predictions

__all__ = ["claims", "compare", "difference_table", "metric_table", "versus_table", "write_results_report"]

METRICS = ("acc", "nll", "ece", "mce", "brier")
OOD_METRICS = ("acc", "nll", "ece", "auroc_entropy", "auroc_mi", "aupr_entropy", "aupr_mi")
SWAG_VARIANTS = ("swag-tuned", "swag")
COMPARED = ("temperature", "mc-dropout", "ensemble", "laplace", "multiswag", "swa")
N_BOOT = 1000
NOTES_FILE = "calibration_notes.md"  # hand-written reading, included verbatim


def _grouped(records, task: str, ood_task) -> dict[str, list[dict]]:
    out = defaultdict(list)
    for r in records:
        if r["task"] == task and r["ood_task"] == ood_task and not r.get("study"):
            out[r["method"]].append(r)
    return dict(sorted(out.items(), key=lambda kv: method_order(kv[0])))


def _samples(recs) -> str:
    s = sorted({r["n_samples"] for r in recs if r["n_samples"] is not None})
    scale = sorted({r["scale"] for r in recs if r.get("scale") is not None})
    text = "/".join(str(v) for v in s)
    return text + (f" (scale {'/'.join(f'{v:g}' for v in scale)})" if scale else "")


def _seeds(recs) -> str:
    seeds = [r["seed"] for r in recs]
    return "all" if seeds == [None] else ",".join(str(s) for s in sorted(seeds))


def metric_table(groups: dict[str, list[dict]], metrics=METRICS) -> str:
    head = "| method | seeds | S | " + " | ".join(metrics) + " |"
    lines = [head, "|" + "---|" * (3 + len(metrics))]
    for method, recs in groups.items():
        cells = [mean_std([r[m] for r in recs]) for m in metrics]
        lines.append(f"| {method} | {_seeds(recs)} | {_samples(recs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------ paired comparisons
def _stack(preds: dict, method: str, seeds: list) -> np.ndarray | None:
    keys = [f"{method}|{'all' if s is None else s}" for s in seeds]
    if not all(k in preds for k in keys):
        return None
    return np.exp(np.stack([preds[k].astype(np.float64) for k in keys]))


def compare(preds: dict, records_a, records_b, metric: str, b_weight: float = 1.0) -> dict | None:
    """Paired bootstrap of ``metric(a) − b_weight·metric(b)`` over the seeds both have (a
    combined method, with seed None, against every seed of b)."""
    seeds_a = [r["seed"] for r in records_a]
    seeds_b = [r["seed"] for r in records_b]
    if seeds_a == [None]:
        common_a, common_b = [None], seeds_b
    elif seeds_b == [None]:
        common_a, common_b = seeds_a, [None]
    else:
        common_a = common_b = sorted(set(seeds_a) & set(seeds_b))
    if not common_a or not common_b:
        return None
    a, b = _stack(preds, records_a[0]["method"], common_a), _stack(preds, records_b[0]["method"], common_b)
    if a is None or b is None:
        return None
    out = paired_bootstrap(a, b, preds["labels"], metric, n_boot=N_BOOT, b_weight=b_weight)
    out["seeds"] = len(common_a) if common_a != [None] else len(common_b)
    return out


def _ci(c: dict | None, scale: float = 1.0, digits: int = 3) -> str:
    if c is None:
        return "–"
    return f"{c['diff'] * scale:+.{digits}f} [{c['lo'] * scale:+.{digits}f}, {c['hi'] * scale:+.{digits}f}]"


def difference_table(preds, groups: dict[str, list[dict]]) -> str:
    lines = ["| method − MAP | Δacc | ΔNLL | ΔECE | ΔBrier |", "|---|---|---|---|---|"]
    ref = groups.get("map")
    for method, recs in groups.items():
        if method == "map" or ref is None:
            continue
        cells = [_ci(compare(preds, recs, ref, m)) for m in ("acc", "nll", "ece", "brier")]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _verdict(c: dict | None, threshold: float, below: bool) -> str:
    """'holds' when the whole interval is on the claimed side of ``threshold``, 'does not
    hold' when it is wholly on the other side, else 'inconclusive'."""
    if c is None:
        return "not measured"
    if below:
        return "holds" if c["hi"] < threshold else "does not hold" if c["lo"] > threshold else "inconclusive"
    return "holds" if c["lo"] > threshold else "does not hold" if c["hi"] < threshold else "inconclusive"


def claims(preds, groups) -> list[tuple[str, str, str, str]]:
    """(method, claim, verdict, evidence) for SWAG with tuned and with fixed scale."""
    out = []
    ref = groups.get("map")
    for method in SWAG_VARIANTS:
        recs = groups.get(method)
        if recs is None or ref is None:
            continue
        half = compare(preds, recs, ref, "ece", b_weight=0.5)
        nll = compare(preds, recs, ref, "nll")
        acc = compare(preds, recs, ref, "acc")
        out.append((method, "ECE ≤ ½ · MAP ECE", _verdict(half, 0.0, below=True),
                    f"ECE − ½·MAP ECE = {_ci(half)}"))
        out.append((method, "NLL < MAP NLL", _verdict(nll, 0.0, below=True), f"ΔNLL = {_ci(nll)}"))
        out.append((method, "accuracy ≥ MAP − 1 point", _verdict(acc, -0.01, below=False),
                    f"Δacc = {_ci(acc, 100, 2)} points"))
    return out


def versus_table(preds, groups) -> str:
    lines = ["| SWAG variant − other | ΔNLL | ΔECE | Δacc |", "|---|---|---|---|"]
    for method in SWAG_VARIANTS:
        for other in COMPARED:
            a, b = groups.get(method), groups.get(other)
            if a is None or b is None:
                continue
            cells = [_ci(compare(preds, a, b, m)) for m in ("nll", "ece", "acc")]
            lines.append(f"| {method} − {other} | " + " | ".join(cells) + " |")
    return "\n".join(lines) if len(lines) > 2 else ""


# ------------------------------------------------------------------ plots
def plot_reliability(preds, groups, path: Path, title: str, n_bins: int = 15) -> Path | None:
    plt = pyplot()
    methods = [m for m in groups if _stack(preds, m, [r["seed"] for r in groups[m]]) is not None]
    if not methods:
        return None
    cols = min(4, len(methods))
    rows = int(np.ceil(len(methods) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 3.0 * rows), squeeze=False)
    for ax in axes.flat[len(methods):]:
        ax.axis("off")
    for ax, method in zip(axes.flat, methods):
        probs = _stack(preds, method, [r["seed"] for r in groups[method]])
        pooled = probs.reshape(-1, probs.shape[-1])
        labels = np.tile(preds["labels"], probs.shape[0])
        ece = draw_reliability(ax, pooled, labels, n_bins, mark_confidence=True, label_size=8)
        ax.set_title(f"{method}: ECE {ece:.3f}", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path, dpi=100)


def plot_ood(records, task: str, ood_tasks: list[str], path: Path) -> Path | None:
    plt = pyplot()
    panels = [(o, _grouped(records, task, o)) for o in ood_tasks]
    panels = [(o, g) for o, g in panels if g]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 3.4), squeeze=False)
    for ax, (ood, groups) in zip(axes.flat, panels):
        methods = list(groups)
        x = np.arange(len(methods))
        for i, key in enumerate(("auroc_entropy", "auroc_mi")):
            vals = [[r[key] for r in groups[m] if r[key] is not None] for m in methods]
            means = [np.mean(v) if v else np.nan for v in vals]
            stds = [np.std(v, ddof=1) if len(v) > 1 else 0 for v in vals]
            ax.bar(x + (i - 0.5) * 0.38, means, 0.38, yerr=stds, capsize=3, label=key.replace("auroc_", "by "))
        ax.axhline(0.5, color="k", ls="--", lw=1)
        ax.set_xticks(x, methods, rotation=20, fontsize=8)
        ax.set_ylim(0.3, 1.0)
        ax.set_ylabel("AUROC (OOD positive)")
        ax.set_title(f"{task} → {ood}", fontsize=10)
        ax.legend(fontsize=8)
    return save_figure(fig, path, dpi=100)


# ------------------------------------------------------------------ sections
def tuning_section(tuning: dict) -> str:
    if not tuning:
        return "Not run yet.\n"
    parts = []
    for task, t in tuning.items():
        rates = list(t["by_learning_rate"])
        scales = list(next(iter(t["by_learning_rate"].values()))["swag"])
        parts.append(f"**{task}** (seed {t['seed']}, {t['n_validation']} validation questions, S = {t['n_samples']} "
                     f"shared draws per scale). MAP: NLL {t['map']['nll']:.3f}, ECE {t['map']['ece']:.3f}, "
                     f"acc {t['map']['acc']:.3f}.\n")
        head = "| SWAG lr | SWA NLL / ECE | " + " | ".join(f"scale {s}" for s in scales) + " |"
        lines = [head, "|" + "---|" * (2 + len(scales))]
        for lr in rates:
            p = t["by_learning_rate"][lr]
            cells = [f"{p['swag'][s]['nll']:.3f} / {p['swag'][s]['ece']:.3f}" for s in scales]
            lines.append(f"| {lr} | {p['swa']['nll']:.3f} / {p['swa']['ece']:.3f} | " + " | ".join(cells) + " |")
        c = t["choice"]
        parts.append("\n".join(lines) + "\n\n(cells: validation NLL / ECE.) Chosen: SWAG lr "
                     f"{c['swag_learning_rate']:g}, swag-tuned scale {c['scale']:g} (validation NLL "
                     f"{c['validation_nll']:.3f}).\n")
    return "\n".join(parts)


def timing_section(unit_seconds: dict) -> str:
    if not unit_seconds:
        return "No unit timed yet.\n"
    by_task, by_seed = defaultdict(float), defaultdict(float)
    for name, s in unit_seconds.items():
        parts = name.split("/")
        by_task[parts[0]] += s
        if len(parts) > 1 and parts[1].startswith("seed"):
            by_seed["/".join(parts[:2])] += s
    lines = ["| unit | minutes |", "|---|---|"]
    lines += [f"| {name} | {s / 60:.1f} |" for name, s in unit_seconds.items()]
    total = sum(unit_seconds.values())
    summary = ", ".join(f"{t} {s / 3600:.2f} h" for t, s in by_task.items())
    seeds = ", ".join(f"{k} {s / 60:.0f} min" for k, s in by_seed.items())
    return (f"Total {total / 3600:.2f} h of wall time on 2 CPU cores ({summary}). Per (task, seed), training "
            f"and evaluation (the tuning seed also trains every SWAG rate): {seeds}. The tuning's validation "
            "passes and the zero-shot and combined units are listed separately.\n\n" + "\n".join(lines) + "\n")


def _status(records, config: dict) -> str:
    lines = []
    records = [r for r in records if not r.get("study")]
    for task in config["tasks"]:
        seeds = sorted({r["seed"] for r in records if r["task"] == task and r["seed"] is not None})
        methods = sorted({r["method"] for r in records if r["task"] == task}, key=method_order)
        lines.append(f"- {task}: seeds {seeds or 'none'} of {config['seeds']}; methods "
                     f"{', '.join(methods) or 'none'}.")
    return "\n".join(lines)


def write_results_report(config, results, out, work=None) -> Path:
    """Write the report to ``out`` (and its plots to ``out``'s folder ``img/``) from the
    results folder alone; ``work`` is accepted for symmetry with the driver and not read."""
    results, out = Path(results), Path(out)
    records = read_json(results / RESULTS_FILE) if (results / RESULTS_FILE).is_file() else []
    runs = read_json(results / RUNS_FILE) if (results / RUNS_FILE).is_file() else {}
    cfg = runs.get("config") or config.to_dict()
    img = out.parent / "img"
    rel_img = os.path.relpath(img, out.parent)
    sections = [
        "# Calibration benchmark: SWAG-LoRA against its baselines\n",
        "Generated by `.venv/bin/python bench/calibration.py report` from `bench/results/calibration.json` "
        "and the saved predictives in `bench/results/calibration/`; do not edit by hand. The grid is "
        "`bench/calibration.yaml`, run with `.venv/bin/python bench/calibration.py run` (resumable).\n",
        "## Setup\n",
        f"- Model {cfg['model']}, `{cfg['scoring']}` scoring; LoRA r = {cfg['lora_r']}, α = {cfg['lora_alpha']}, "
        f"dropout {cfg['lora_dropout']} on {', '.join(cfg['lora_target_modules'])}; seeds {cfg['seeds']}.",
        "- Tasks (seeded subsets, the same questions for every seed): " + "; ".join(
            f"{name}: train {t['train']}, validation {t['validation']}, test {t['test']}"
            + (f", OOD {', '.join(t['ood'])}" if t["ood"] else "")
            + (", cloze scores length-normalised" if t.get("length_normalize") else ", cloze scores summed")
            for name, t in cfg["tasks"].items()) + ".",
        f"- MAP phase: {cfg['map_epochs']:g} epochs at {cfg['learning_rate']:g} (linear decay, "
        f"{cfg['warmup_ratio']:g} warm-up), batch {cfg['batch_size']}; MAP = the epoch with the best validation NLL.",
        f"- SWAG phase from that MAP adapter: {cfg['swag_epochs']:g} epochs at a constant rate chosen on "
        f"validation among {cfg['swag_learning_rates']}, {cfg['collections_per_epoch']} collections per epoch, "
        f"K = {cfg['max_rank']}.",
        f"- Evaluation: SWAG S = {cfg['n_samples']} at scale {cfg['scale']:g} (`swag`) and at the validation-tuned "
        f"scale (`swag-tuned`, grid {cfg['scale_grid']}); MC dropout S = {cfg['mc_dropout_samples']}; "
        f"Laplace-LoRA K-FAC on {cfg['laplace_fit_limit']} training questions, marginal-likelihood prior, "
        f"{cfg['laplace_samples']} logit draws; ECE over {cfg['ece_bins']} bins. Ensemble and MultiSWAG "
        "combine the seeds' saved members. ± is the standard deviation over seeds.",
        "- Intervals: 95% paired bootstrap over test questions (resampled jointly for both methods and "
        f"every seed, {N_BOOT} replicates). A claim *holds* when its whole interval is on the claimed side, "
        "*does not hold* when it is wholly on the other side, and is *inconclusive* otherwise.\n",
        "## What has been run\n",
        _status(records, cfg) + "\n",
    ]
    notes = results / NOTES_FILE
    if notes.is_file():
        sections += ["## Reading of the results (written by hand, from the tables below)\n",
                     notes.read_text(encoding="utf-8").strip() + "\n"]
    for task, t in cfg["tasks"].items():
        groups = _grouped(records, task, None)
        if not groups:
            continue
        preds = load_predictions(results, task, task)
        n = len(preds.get("labels", []))
        sections += [f"## {task} (test, {n} questions)\n", metric_table(groups) + "\n",
                     "Differences to MAP (95% paired bootstrap interval):\n", difference_table(preds, groups) + "\n"]
        verdicts = claims(preds, groups)
        if verdicts:
            sections += ["Claims:\n", "| method | claim | verdict | evidence |", "|---|---|---|---|"]
            sections += [f"| {m} | {c} | **{v}** | {e} |" for m, c, v, e in verdicts]
            sections.append("")
        vs = versus_table(preds, groups)
        if vs:
            sections += ["SWAG against the other baselines (negative ΔNLL / ΔECE favour SWAG):\n", vs + "\n"]
        picture = plot_reliability(preds, groups, img / f"reliability_{task}.png",
                                   f"{task}: reliability, test questions pooled over seeds", cfg["ece_bins"])
        if picture:
            sections.append(f"![reliability {task}]({rel_img}/{picture.name})\n")
        oods = [o.split(":")[0] for o in t["ood"]]
        for ood in oods:
            ood_groups = _grouped(records, task, ood)
            if not ood_groups:
                continue
            ood_preds = load_predictions(results, task, ood)
            sections += [f"### {task} → {ood} (OOD, {len(ood_preds.get('labels', []))} questions)\n",
                         "Accuracy, NLL and ECE under shift; AUROC / AUPR of telling these questions from the "
                         f"{task} test questions by predictive entropy and by mutual information (OOD positive; "
                         "AUPR's chance level is the OOD share).\n",
                         metric_table(ood_groups, OOD_METRICS) + "\n"]
        picture = plot_ood(records, task, oods, img / f"ood_{task}.png")
        if picture:
            sections.append(f"![OOD {task}]({rel_img}/{picture.name})\n")
    sections += ["## Validation tuning\n", tuning_section(runs.get("tuning", {})),
                 "## Wall time\n", timing_section(runs.get("unit_seconds", {}))]
    write_text(out, "\n".join(sections))
    return out
