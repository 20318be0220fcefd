"""The report's PNG plots (matplotlib, imported on first use: an optional dependency, the
``report`` extra): reliability diagrams, metric bars, OOD ROC curves, sample-count curves."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from .. import metrics as M
from ..evaluation.sample_study import summarise_curves
from .format import method_order
from .records import by_dataset, pooled_predictive

__all__ = ["draw_reliability", "plot_metric_bars", "plot_ood_roc", "plot_reliability", "plot_sample_studies",
           "pyplot", "save_figure"]


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend."""
    import matplotlib  # optional (the report extra) and slow to import: only plotting needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # (after choosing the backend)

    return plt


def save_figure(fig, path: Path, dpi: int = 110) -> Path:
    """Lay out ``fig``, write it to ``path`` as PNG (creating the folder) and close it."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path


def draw_reliability(ax, probs, labels, n_bins: int = M.DEFAULT_ECE_BINS, mark_confidence: bool = False,
                     label_size: float | None = None) -> float:
    """Draw one reliability diagram on ``ax``: accuracy bars per confidence bin (shaded by how
    many questions the bin holds, a bin's count printed on its bar), the diagonal, and the
    histogram of the questions' confidences along the bottom (grey, right-hand scale); with
    ``mark_confidence`` a dot at each bin's mean confidence. Returns the ECE."""
    rel = M.reliability(probs, labels, n_bins)
    centers = (rel["edges"][:-1] + rel["edges"][1:]) / 2
    filled = rel["count"] > 0
    counts = rel["count"][filled]
    shade = 0.25 + 0.6 * np.sqrt(counts / counts.max()) if counts.size else counts
    bars = ax.bar(centers[filled], rel["accuracy"][filled], width=1 / n_bins, edgecolor="black", label="accuracy")
    for bar, alpha, count in zip(bars, shade, counts):
        bar.set_alpha(float(alpha))
        ax.annotate(f"{int(count)}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                    va="bottom", fontsize=5.5, color="0.25")
    hist = ax.twinx()
    hist.bar(centers, rel["count"], width=1 / n_bins, color="0.6", alpha=0.45)
    hist.set_ylim(0, max(rel["count"].max(), 1) * 4)  # the histogram fills the bottom quarter
    hist.set_yticks([])
    if mark_confidence:
        ax.plot(rel["confidence"][filled], rel["accuracy"][filled], "o", ms=3, color="C3")
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence", fontsize=label_size)
    ax.set_ylabel("accuracy", fontsize=label_size)
    return M.expected_calibration_error(probs, labels, n_bins)


def plot_reliability(records, out_dir: Path, n_bins: int = M.DEFAULT_ECE_BINS) -> list[Path]:
    """A reliability diagram per (task, split): one panel per method, examples pooled over runs."""
    plt = pyplot()
    written = []
    for (task, split), entries in by_dataset(records):
        entries = sorted(entries, key=lambda e: method_order(e[0]))
        cols = min(4, len(entries))
        rows = int(np.ceil(len(entries) / cols))
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
        for ax in axes.flat[len(entries):]:
            ax.axis("off")
        for ax, (method, recs) in zip(axes.flat, entries):
            probs, labels = pooled_predictive(recs)
            ece = draw_reliability(ax, probs, labels, n_bins)
            ax.set_title(f"{method}\nECE {ece:.3f} (n={len(labels)})", fontsize=9)
        fig.suptitle(f"Reliability: {task} / {split}", fontsize=10)
        written.append(save_figure(fig, out_dir / f"reliability_{task}_{split}.png"))
    return written


def plot_metric_bars(records, out_dir: Path) -> list[Path]:
    """Accuracy, NLL and ECE per method (mean with std over runs as error bars), one figure per dataset."""
    plt = pyplot()
    written = []
    for (task, split), entries in by_dataset(records):
        entries = sorted(entries, key=lambda e: method_order(e[0]))
        names = [m for m, _ in entries]
        fig, axes = plt.subplots(1, 3, figsize=(4 + 1.1 * len(names) * 1.5, 3.4))
        for ax, key in zip(axes, ("acc", "nll", "ece")):
            means = [np.mean([r[key] for r in recs]) for _, recs in entries]
            several = all(len(recs) > 1 for _, recs in entries)  # error bars only where there is a spread
            stds = [np.std([r[key] for r in recs], ddof=1) for _, recs in entries] if several else None
            ax.bar(range(len(names)), means, yerr=stds, capsize=3 if several else 0, color="tab:blue", alpha=0.8)
            ax.set_xticks(range(len(names)))
            ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
            better = "higher is better" if key == "acc" else "lower is better"
            ax.set_title(f"{'accuracy' if key == 'acc' else key.upper()} ({better})", fontsize=9)
        runs = sorted({len(recs) for _, recs in entries})
        spread = " (mean ± std over runs)" if runs != [1] else " (one run each)"
        fig.suptitle(f"{task} / {split}{spread}", fontsize=10)
        written.append(save_figure(fig, out_dir / f"metrics_{task}_{split}.png"))
    return written


def plot_ood_roc(entries, out_dir: Path) -> list[Path]:
    """ROC curves (entropy score) per (in-distribution, OOD) pair, one line per method (first run)."""
    plt = pyplot()
    written = []
    pairs = defaultdict(dict)
    for e in entries:
        pairs[(e["in_task"], e["ood_task"])].setdefault(e["method"], e)
    for (t_in, t_out), by_method in sorted(pairs.items()):
        fig, ax = plt.subplots(figsize=(4.6, 4.4))
        for method, e in sorted(by_method.items(), key=lambda kv: method_order(kv[0])):
            fpr, tpr = M.roc_curve(*e["_scores"]["entropy"])
            ax.plot(fpr, tpr, label=f"{method} ({e['auroc_entropy']:.2f})")
        ax.plot([0, 1], [0, 1], "k:", lw=1)
        ax.set_xlabel("false-positive rate")
        ax.set_ylabel("true-positive rate")
        ax.set_title(f"OOD ROC (entropy): {t_in} vs {t_out}", fontsize=9)
        ax.legend(fontsize=7)
        written.append(save_figure(fig, out_dir / f"ood_roc_{t_in}_vs_{t_out}.png"))
    return written


def plot_sample_studies(studies, out_dir: Path) -> list[Path]:
    """NLL and ECE against S per study: mean over replicates with a ±1 std band, i.i.d. and antithetic."""
    plt = pyplot()
    written = []
    for st in studies:
        fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.4))
        for ax, key in zip(axes, ("nll", "ece")):
            for kind, color in (("iid", "tab:blue"), ("antithetic", "tab:orange")):
                s_values, mean, std = summarise_curves(st[kind], key)
                ax.plot(s_values, mean, marker=".", color=color, label=kind)
                ax.fill_between(s_values, mean - std, mean + std, color=color, alpha=0.2)
            ax.set_xlabel("samples S (nested)")
            ax.set_title(key.upper())
            ax.legend(fontsize=8)
        fig.suptitle(f"{Path(st['run']).name}: {st['task']}/{st['split']}, scale {st['scale']:g}, "
                     f"{st['replicates']} replicates", fontsize=9)
        written.append(save_figure(fig, out_dir / f"sample_study_{Path(st['run']).name}_{st['task']}_{st['split']}.png"))
    return written
