"""The report's markdown tables: results per dataset, OOD detection, the sample-count study."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from ..evaluation.sample_study import summarise_curves
from .format import mean_std, method_order
from .records import by_dataset

__all__ = ["TABLE_METRICS", "ood_table", "sample_study_table", "summary_table"]

TABLE_METRICS = ("acc", "nll", "ece", "mce", "brier", "entropy", "mutual_information", "aurc")


def summary_table(records) -> str:
    """One markdown table per (task, split): a row per method, mean ± std over runs."""
    lines = []
    for (task, split), entries in by_dataset(records):
        ood = any(r.get("ood") for _, recs in entries for r in recs)
        bins = sorted({r.get("ece_bins") for _, recs in entries for r in recs})
        n = sorted({r.get("n_examples") for _, recs in entries for r in recs})
        lines.append(f"### {task} / {split}{' (out of distribution)' if ood else ''}")
        lines.append("")
        lines.append(f"{'/'.join(map(str, n))} questions; ECE over {'/'.join(map(str, bins))} equal-width bins.")
        lines.append("")
        lines.append("| method | runs | S | setting | " + " | ".join(TABLE_METRICS) + " |")
        lines.append("|---|---|---|---|" + "---|" * len(TABLE_METRICS))
        for method, recs in sorted(entries, key=lambda e: method_order(e[0])):
            cells = [mean_std([r.get(m) for r in recs]) for m in TABLE_METRICS]
            lines.append(f"| {method} | {len(recs)} | {recs[0].get('n_members', '')} | {_setting(recs)} | "
                         + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _setting(recs) -> str:
    """What a method chose or was given, beyond S: temperature, scale, TFB's σ, prior precision, dropout, runs."""
    r = recs[0]
    parts = []
    n_runs = r.get("n_runs")
    if n_runs:
        parts.append(f"M={n_runs}")
    if r.get("base_method") in ("swag", "swag-diag", "swag-tuned", "multiswag"):
        scales = sorted({x.get("scale") for x in recs if x.get("scale") is not None})
        parts.append("scale=" + "/".join(f"{v:g}" for v in scales))
        if r.get("antithetic"):
            parts.append("antithetic")
    if r.get("base_method") == "tfb" and r.get("sigma") is not None:
        sigmas = sorted({x.get("sigma") for x in recs})
        parts.append("σ=" + "/".join(f"{v:.3g}" for v in sigmas) + f" ({r.get('metric')} ≤ {r.get('threshold'):g})")
    if r.get("base_method") == "mc-dropout":
        parts.append(f"p={r.get('dropout', 0):g}")
    if r.get("base_method") == "laplace" and r.get("prior_precision") is not None:
        precs = sorted({x.get("prior_precision") for x in recs})
        parts.append("prior=" + "/".join(f"{v:.3g}" for v in precs) + f" ({r.get('prior_method')})")
    temps = sorted({x.get("temperature", 1.0) for x in recs})
    if temps != [1.0]:
        parts.append("T=" + "/".join(f"{t:.3g}" for t in temps))
    return ", ".join(parts) or "–"


def ood_table(entries) -> str:
    groups = defaultdict(list)
    for e in entries:
        groups[(e["in_task"], e["ood_task"], e["method"])].append(e)
    lines = ["| in-distribution | OOD | method | runs | base rate | AUROC (entropy) | AUPR (entropy) | AUROC (MI) | AUPR (MI) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (t_in, t_out, method), es in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], method_order(kv[0][2]))):
        lines.append(
            f"| {t_in} | {t_out} | {method} | {len(es)} | {es[0]['base_rate']:.2f} | "
            + " | ".join(mean_std([e[k] for e in es]) for k in ("auroc_entropy", "aupr_entropy", "auroc_mi", "aupr_mi"))
            + " |"
        )
    return "\n".join(lines)


def sample_study_table(studies, at=(2, 4, 10, 20, 30)) -> str:
    """NLL and ECE (mean ± std over replicates) at a few sample counts, i.i.d. against antithetic."""
    lines = ["| run | data | draws | metric | " + " | ".join(f"S={s}" for s in at) + " |",
             "|---|---|---|---|" + "---|" * len(at)]
    for st in studies:
        for kind in ("iid", "antithetic"):
            for key in ("nll", "ece"):
                s_values, mean, std = summarise_curves(st[kind], key)
                cells = []
                for s in at:
                    hit = np.nonzero(s_values == s)[0]
                    cells.append(f"{mean[hit[0]]:.3f} ± {std[hit[0]]:.3f}" if len(hit) else "–")
                lines.append(f"| {Path(st['run']).name} | {st['task']}/{st['split']} | {kind} | {key.upper()} | "
                             + " | ".join(cells) + " |")
    return "\n".join(lines)
