"""The benchmark report's plots: reliability diagrams pooled over seeds, and OOD-detection AUROCs."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from ..report.format import method_order
from ..report.plots import draw_reliability, pyplot, save_figure
from .comparisons import _stack

__all__ = ["grouped", "plot_ood", "plot_reliability"]


def grouped(records, task: str, ood_task) -> dict[str, list[dict]]:
    """The grid's test records of ``task`` on ``ood_task`` (``None``: in-distribution), by method,
    in report order (study records left out)."""
    out = defaultdict(list)
    for r in records:
        if r["task"] == task and r["ood_task"] == ood_task and not r.get("study"):
            out[r["method"]].append(r)
    return dict(sorted(out.items(), key=lambda kv: method_order(kv[0])))


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
    panels = [(o, grouped(records, task, o)) for o in ood_tasks]
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
