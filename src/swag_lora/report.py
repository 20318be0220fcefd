"""Markdown reports and PNG plots built only from saved evaluation files.

Input: any mix of run directories, evaluation folders or ``metrics.json`` files. Each
``metrics.json`` sits beside its ``log_probs.npy`` and ``labels.npy``. Records of the same
(task, split, method) from several runs (seeds) are summarised as mean ± std.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from . import metrics as M
from .io import read_json

TABLE_METRICS = ("acc", "nll", "ece", "mce", "brier", "entropy", "mutual_information", "aurc")


def find_records(paths) -> list[dict]:
    """Every ``metrics.json`` under the given paths, each with ``_folder`` set to its folder."""
    records = []
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
        files = [path] if path.is_file() else sorted(path.rglob("metrics.json"))
        for file in files:
            record = read_json(file)
            record["_folder"] = str(file.parent)
            records.append(record)
    if not records:
        raise FileNotFoundError(f"no metrics.json found under {', '.join(map(str, paths))}: run `swag-lora evaluate` first")
    return records


def _group(records):
    groups = defaultdict(list)
    for r in records:
        groups[(r["task"], r["split"], r["method"])].append(r)
    return groups


def _fmt(values) -> str:
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


def summary_table(records) -> str:
    """One markdown table per (task, split): a row per method, mean ± std over runs."""
    groups = _group(records)
    by_data = defaultdict(list)
    for (task, split, method), recs in groups.items():
        by_data[(task, split)].append((method, recs))
    lines = []
    for (task, split), entries in sorted(by_data.items()):
        ood = any(r.get("ood") for _, recs in entries for r in recs)
        bins = sorted({r.get("ece_bins") for _, recs in entries for r in recs})
        n = sorted({r.get("n_examples") for _, recs in entries for r in recs})
        lines.append(f"### {task} / {split}{' (out of distribution)' if ood else ''}")
        lines.append("")
        lines.append(f"{'/'.join(map(str, n))} questions; ECE over {'/'.join(map(str, bins))} equal-width bins.")
        lines.append("")
        lines.append("| method | runs | S | " + " | ".join(TABLE_METRICS) + " |")
        lines.append("|---|---|---|" + "---|" * len(TABLE_METRICS))
        for method, recs in sorted(entries, key=lambda e: _method_order(e[0])):
            cells = [_fmt([r.get(m) for r in recs]) for m in TABLE_METRICS]
            lines.append(f"| {method} | {len(recs)} | {recs[0].get('n_members', '')} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _method_order(name: str):
    order = ["zero-shot", "map", "temperature", "mc-dropout", "swa", "swag-diag", "swag", "swag-tuned", "laplace",
             "ensemble", "multiswag"]
    base = name.split("@")[0]
    return (order.index(base) if base in order else len(order), name)


def _load_arrays(record):
    folder = Path(record["_folder"])
    return np.load(folder / "log_probs.npy"), np.load(folder / "labels.npy")


def _pooled_predictive(recs):
    probs, labels = [], []
    for r in recs:
        lp, y = _load_arrays(r)
        probs.append(np.exp(M.average_log_probs(lp)))
        labels.append(y)
    width = max(p.shape[1] for p in probs)
    probs = [np.pad(p, ((0, 0), (0, width - p.shape[1]))) for p in probs]
    return np.concatenate(probs), np.concatenate(labels)


def plot_reliability(records, out_dir: Path, n_bins: int = M.DEFAULT_ECE_BINS) -> list[Path]:
    """A reliability diagram per (task, split): one panel per method, examples pooled over runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    by_data = defaultdict(list)
    for (task, split, method), recs in _group(records).items():
        by_data[(task, split)].append((method, recs))
    for (task, split), entries in sorted(by_data.items()):
        entries = sorted(entries, key=lambda e: _method_order(e[0]))
        cols = min(4, len(entries))
        rows = int(np.ceil(len(entries) / cols))
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
        for ax in axes.flat[len(entries):]:
            ax.axis("off")
        for ax, (method, recs) in zip(axes.flat, entries):
            probs, labels = _pooled_predictive(recs)
            rel = M.reliability(probs, labels, n_bins)
            centers = (rel["edges"][:-1] + rel["edges"][1:]) / 2
            filled = rel["count"] > 0
            ax.bar(centers[filled], rel["accuracy"][filled], width=1 / n_bins, edgecolor="black", alpha=0.7,
                   label="accuracy")
            ax.plot([0, 1], [0, 1], "k--", lw=1)
            ece = M.expected_calibration_error(probs, labels, n_bins)
            ax.set_title(f"{method}\nECE {ece:.3f} (n={len(labels)})", fontsize=9)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_xlabel("confidence")
            ax.set_ylabel("accuracy")
        fig.suptitle(f"Reliability: {task} / {split}", fontsize=10)
        fig.tight_layout()
        path = out_dir / f"reliability_{task}_{split}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def plot_metric_bars(records, out_dir: Path) -> list[Path]:
    """Accuracy, NLL and ECE per method (mean with std over runs as error bars), one figure per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    by_data = defaultdict(list)
    for (task, split, method), recs in _group(records).items():
        by_data[(task, split)].append((method, recs))
    for (task, split), entries in sorted(by_data.items()):
        entries = sorted(entries, key=lambda e: _method_order(e[0]))
        names = [m for m, _ in entries]
        fig, axes = plt.subplots(1, 3, figsize=(4 + 1.1 * len(names) * 1.5, 3.4))
        for ax, key in zip(axes, ("acc", "nll", "ece")):
            means = [np.mean([r[key] for r in recs]) for _, recs in entries]
            stds = [np.std([r[key] for r in recs], ddof=1) if len(recs) > 1 else 0 for _, recs in entries]
            ax.bar(range(len(names)), means, yerr=stds, capsize=3, color="tab:blue", alpha=0.8)
            ax.set_xticks(range(len(names)))
            ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
            ax.set_title(key.upper() if key != "acc" else "accuracy")
        fig.suptitle(f"{task} / {split}", fontsize=10)
        fig.tight_layout()
        path = out_dir / f"metrics_{task}_{split}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def ood_records(records) -> list[dict]:
    """For each OOD record with an in-distribution record of the same run and method: AUROC/AUPR
    from normalised predictive entropy and from mutual information (None for single members)."""
    in_dist = {(r["run"], r["method"]): r for r in records if not r.get("ood")}
    out = []
    for r in records:
        if not r.get("ood") or (r["run"], r["method"]) not in in_dist:
            continue
        ref = in_dist[(r["run"], r["method"])]
        lp_in, _ = _load_arrays(ref)
        lp_out, _ = _load_arrays(r)
        scores = {}
        for key, fn in (("entropy", _entropy_scores), ("mi", _mi_scores)):
            if key == "mi" and lp_in.shape[1] == 1:
                scores[key] = None
                continue
            s_in, s_out = fn(lp_in), fn(lp_out)
            scores[key] = (s_in, s_out)
        out.append({
            "run": r["run"], "method": r["method"], "in_task": ref["task"], "ood_task": r["task"],
            "base_rate": len(lp_out) / (len(lp_in) + len(lp_out)),
            "auroc_entropy": M.auroc(*scores["entropy"]),
            "aupr_entropy": M.average_precision(*scores["entropy"]),
            "auroc_mi": M.auroc(*scores["mi"]) if scores["mi"] else None,
            "aupr_mi": M.average_precision(*scores["mi"]) if scores["mi"] else None,
            "_scores": scores,
        })
    return out


def _entropy_scores(lp):
    return M.predictive_entropy(np.exp(M.average_log_probs(lp)), M.num_choices(lp))


def _mi_scores(lp):
    return M.mutual_information(lp, M.num_choices(lp))


def ood_table(entries) -> str:
    groups = defaultdict(list)
    for e in entries:
        groups[(e["in_task"], e["ood_task"], e["method"])].append(e)
    lines = ["| in-distribution | OOD | method | runs | base rate | AUROC (entropy) | AUPR (entropy) | AUROC (MI) | AUPR (MI) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (t_in, t_out, method), es in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], _method_order(kv[0][2]))):
        lines.append(
            f"| {t_in} | {t_out} | {method} | {len(es)} | {es[0]['base_rate']:.2f} | "
            + " | ".join(_fmt([e[k] for e in es]) for k in ("auroc_entropy", "aupr_entropy", "auroc_mi", "aupr_mi"))
            + " |"
        )
    return "\n".join(lines)


def plot_ood_roc(entries, out_dir: Path) -> list[Path]:
    """ROC curves (entropy score) per (in-distribution, OOD) pair, one line per method (first run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    pairs = defaultdict(dict)
    for e in entries:
        pairs[(e["in_task"], e["ood_task"])].setdefault(e["method"], e)
    for (t_in, t_out), by_method in sorted(pairs.items()):
        fig, ax = plt.subplots(figsize=(4.2, 4))
        for method, e in sorted(by_method.items(), key=lambda kv: _method_order(kv[0])):
            fpr, tpr = M.roc_curve(*e["_scores"]["entropy"])
            ax.plot(fpr, tpr, label=f"{method} ({e['auroc_entropy']:.2f})")
        ax.plot([0, 1], [0, 1], "k:", lw=1)
        ax.set_xlabel("false-positive rate")
        ax.set_ylabel("true-positive rate")
        ax.set_title(f"OOD ROC (entropy): {t_in} vs {t_out}", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / f"ood_roc_{t_in}_vs_{t_out}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def write_report(paths, out_dir: str | os.PathLike, title: str = "swag-lora report") -> Path:
    """Write ``report.md`` and its PNGs into ``out_dir`` from the saved evaluations under ``paths``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = find_records(paths)
    from .selective_report import SECTION_TEXT, plot_risk_coverage, selective_table

    images = plot_reliability(records, out_dir) + plot_metric_bars(records, out_dir)
    images += plot_risk_coverage(records, out_dir)
    ood = ood_records(records)
    if ood:
        images += plot_ood_roc(ood, out_dir)
    runs = sorted({r["run"] for r in records})
    lines = [f"# {title}", "", f"{len(records)} evaluations from {len(runs)} run(s): " + ", ".join(f"`{r}`" for r in runs),
             "", "Metrics come from the Bayesian model average p̄ (log-mean-exp over the method's members);",
             "mean ± std (sample std) over runs where several runs are given.", "", "## Results", "",
             summary_table(records)]
    if ood:
        lines += ["## Out-of-distribution detection", "",
                  "OOD is the positive class; the score is the normalised predictive entropy or the mutual information "
                  "(– for single-model methods, where it is identically 0).", "", ood_table(ood), ""]
    lines += ["## Selective prediction", "", SECTION_TEXT, "", selective_table(records)]
    lines += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in images] + [""]
    report = out_dir / "report.md"
    from .io import atomic_write

    atomic_write(report, lambda tmp: Path(tmp).write_text("\n".join(lines), encoding="utf-8"))
    return report
