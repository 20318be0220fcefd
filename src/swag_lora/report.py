"""Markdown reports and PNG plots built only from saved evaluation files.

Input: any mix of run directories, evaluation folders or ``metrics.json`` files. Each
``metrics.json`` sits beside its ``log_probs.npy`` and ``labels.npy``. Records of the same
(task, split, method) from several runs (seeds) are summarised as mean ± std. A method's
temperature (``metrics.json``) is applied to its averaged predictive in every plot.
Sample-count studies (``sample_study.json``) found under the same paths are plotted too.
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


def by_dataset(records) -> list[tuple[tuple[str, str], list[tuple[str, list[dict]]]]]:
    """Records grouped per (task, split), sorted; within each, (method, records) in report order."""
    by_data = defaultdict(list)
    for (task, split, method), recs in _group(records).items():
        by_data[(task, split)].append((method, recs))
    return [(key, sorted(entries, key=lambda e: _method_order(e[0]))) for key, entries in sorted(by_data.items())]


def _fmt(values) -> str:
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


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
        for method, recs in sorted(entries, key=lambda e: _method_order(e[0])):
            cells = [_fmt([r.get(m) for r in recs]) for m in TABLE_METRICS]
            lines.append(f"| {method} | {len(recs)} | {recs[0].get('n_members', '')} | {_setting(recs)} | "
                         + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _setting(recs) -> str:
    """What a method chose or was given, beyond S: temperature, scale, prior precision, dropout, runs."""
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
    if r.get("base_method") == "mc-dropout":
        parts.append(f"p={r.get('dropout', 0):g}")
    if r.get("base_method") == "laplace" and r.get("prior_precision") is not None:
        precs = sorted({x.get("prior_precision") for x in recs})
        parts.append("prior=" + "/".join(f"{v:.3g}" for v in precs) + f" ({r.get('prior_method')})")
    temps = sorted({x.get("temperature", 1.0) for x in recs})
    if temps != [1.0]:
        parts.append("T=" + "/".join(f"{t:.3g}" for t in temps))
    return ", ".join(parts) or "–"


def _method_order(name: str):
    order = ["zero-shot", "map", "temperature", "mc-dropout", "swa", "swag-diag", "swag", "swag-tuned", "laplace",
             "ensemble", "multiswag"]
    base = name.split("@")[0].split("+")[0].removesuffix("-anti")
    return (order.index(base) if base in order else len(order), name)


def _load_arrays(record):
    folder = Path(record["_folder"])
    return np.load(folder / "log_probs.npy"), np.load(folder / "labels.npy")


def _pooled_predictive(recs):
    probs, labels = [], []
    for r in recs:
        lp, y = _load_arrays(r)
        probs.append(np.exp(M.predictive_log_probs(lp, r.get("temperature", 1.0))))
        labels.append(y)
    width = max(p.shape[1] for p in probs)
    probs = [np.pad(p, ((0, 0), (0, width - p.shape[1]))) for p in probs]
    return np.concatenate(probs), np.concatenate(labels)


def draw_reliability(ax, probs, labels, n_bins: int = M.DEFAULT_ECE_BINS, mark_confidence: bool = False,
                     label_size: float | None = None) -> float:
    """Draw one reliability diagram on ``ax`` (accuracy bars per confidence bin, the
    diagonal; with ``mark_confidence`` a dot at each bin's mean confidence); returns the ECE."""
    rel = M.reliability(probs, labels, n_bins)
    centers = (rel["edges"][:-1] + rel["edges"][1:]) / 2
    filled = rel["count"] > 0
    ax.bar(centers[filled], rel["accuracy"][filled], width=1 / n_bins, edgecolor="black", alpha=0.7,
           label="accuracy")
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for (task, split), entries in by_dataset(records):
        entries = sorted(entries, key=lambda e: _method_order(e[0]))
        cols = min(4, len(entries))
        rows = int(np.ceil(len(entries) / cols))
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * rows), squeeze=False)
        for ax in axes.flat[len(entries):]:
            ax.axis("off")
        for ax, (method, recs) in zip(axes.flat, entries):
            probs, labels = _pooled_predictive(recs)
            ece = draw_reliability(ax, probs, labels, n_bins)
            ax.set_title(f"{method}\nECE {ece:.3f} (n={len(labels)})", fontsize=9)
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
    for (task, split), entries in by_dataset(records):
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
    from normalised predictive entropy and from mutual information (None for single members),
    and the per-example scores for ROC curves. The in-distribution record is the one named by
    the OOD record's ``ood_reference`` when present, else the first of the same run and method."""
    in_dist = defaultdict(list)
    for r in records:
        if not r.get("ood"):
            in_dist[(r["run"], r["method"])].append(r)
    out = []
    for r in records:
        candidates = in_dist.get((r["run"], r["method"])) if r.get("ood") else None
        if not candidates:
            continue
        wanted = r.get("ood_reference") or {}
        matching = [c for c in candidates if c["task"] == wanted.get("task") and c["split"] == wanted.get("split")]
        ref = (matching or candidates)[0]
        lp_in, _ = _load_arrays(ref)
        lp_out, _ = _load_arrays(r)
        t_in, t_out = ref.get("temperature", 1.0), r.get("temperature", 1.0)
        entry = M.ood_detection(lp_in, lp_out, t_in, t_out)
        s_in, s_out = M.uncertainty_scores(lp_in, t_in), M.uncertainty_scores(lp_out, t_out)
        entry.update(run=r["run"], method=r["method"], in_task=ref["task"], ood_task=r["task"],
                     _scores={k: (s_in[k], s_out[k]) if s_in[k] is not None else None for k in ("entropy", "mi")})
        out.append(entry)
    return out


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
        fig, ax = plt.subplots(figsize=(4.6, 4.4))
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


def find_studies(paths) -> list[dict]:
    """Every sample-count study (``sample_study.json``) under the given paths."""
    from .sample_study import STUDY_FILE

    studies = []
    for path in map(Path, paths):
        files = [path] if path.is_file() and path.name == STUDY_FILE else sorted(path.rglob(STUDY_FILE)) if path.is_dir() else []
        studies += [read_json(f) for f in files]
    return studies


def sample_study_table(studies, at=(2, 4, 10, 20, 30)) -> str:
    """NLL and ECE (mean ± std over replicates) at a few sample counts, i.i.d. against antithetic."""
    from .sample_study import summarise_curves

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


def plot_sample_studies(studies, out_dir: Path) -> list[Path]:
    """NLL and ECE against S per study: mean over replicates with a ±1 std band, i.i.d. and antithetic."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .sample_study import summarise_curves

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
        fig.tight_layout()
        path = out_dir / f"sample_study_{Path(st['run']).name}_{st['task']}_{st['split']}.png"
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
    studies = find_studies(paths)
    if studies:
        images += plot_sample_studies(studies, out_dir)
    runs = sorted({r["run"] for r in records})
    lines = [f"# {title}", "", f"{len(records)} evaluations from {len(runs)} run(s): " + ", ".join(f"`{r}`" for r in runs),
             "", "Metrics come from the Bayesian model average p̄ (log-mean-exp over the method's members);",
             "mean ± std (sample std) over runs where several runs are given.", "", "## Results", "",
             summary_table(records)]
    if ood:
        lines += ["## Out-of-distribution detection", "",
                  "OOD is the positive class; the score is the normalised predictive entropy or the mutual information "
                  "(– for single-model methods, where it is identically 0). The base rate n_out / (n_in + n_out) "
                  "is AUPR's chance level; accuracy, NLL and ECE under shift are in the OOD datasets' tables above.",
                  "", ood_table(ood), ""]
    if studies:
        lines += ["## Sample-count study", "",
                  "NLL and ECE of SWAG's model average against the number of samples S (nested: the first S of one "
                  "draw), i.i.d. against antithetic pairs θ̄ ± δ; mean ± std over independent replicates.", "",
                  sample_study_table(studies), ""]
    lines += ["## Selective prediction", "", SECTION_TEXT, "", selective_table(records)]
    lines += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in images] + [""]
    report = out_dir / "report.md"
    from .io import atomic_write

    atomic_write(report, lambda tmp: Path(tmp).write_text("\n".join(lines), encoding="utf-8"))
    return report
