"""The selective-prediction part of a report, from saved evaluations: a table of AURC (by
confidence and by mutual information), its oracle minimum and the accuracy at fixed coverages,
and risk-coverage curves, for every method evaluated."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import metrics as M
from ..metrics import selective as S
from .format import mean_std, method_order
from .plots import pyplot, save_figure
from .records import by_dataset, load_arrays

__all__ = ["COVERAGES", "SECTION_TEXT", "plot_risk_coverage", "selective_entry", "selective_table"]

COVERAGES = (0.8, 0.5)


def _outcomes(record) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Confidence, mutual information and correctness of each question from the record's own
    p̄ (its temperature applied, as in its metrics.json), and the member log-probabilities."""
    log_probs, labels = load_arrays(record)
    p_bar = np.exp(M.predictive_log_probs(log_probs, record.get("temperature", 1.0)))
    correct = p_bar.argmax(axis=1) == labels
    return p_bar.max(axis=1), M.mutual_information(log_probs), correct, log_probs


def selective_entry(record) -> dict:
    """AURC, oracle AURC, E-AURC, AURC by mutual information (None for one member) and the
    accuracy at :data:`COVERAGES` for one saved evaluation, from the same p̄ as its metrics.json."""
    confidence, mi, correct, lp = _outcomes(record)
    entry = {
        "aurc": S.aurc(confidence, correct),
        "oracle_aurc": S.oracle_aurc(correct),
        "e_aurc": S.excess_aurc(confidence, correct),
        "aurc_mi": S.aurc(-mi, correct) if lp.shape[1] > 1 else None,
    }
    for row in S.coverage_thresholds(confidence, correct, COVERAGES):
        entry[f"acc@{row['target_coverage']:g}"] = row["accuracy"]
    return entry


def selective_table(records) -> str:
    """One markdown table per (task, split): a row per method, mean ± std over runs."""
    columns = ["aurc", "oracle_aurc", "e_aurc", "aurc_mi"] + [f"acc@{c:g}" for c in COVERAGES]
    lines = []
    for (task, split), entries in by_dataset(records):
        entries = [(method, [selective_entry(r) for r in recs]) for method, recs in entries]
        lines += [f"### {task} / {split}", "", "| method | runs | " + " | ".join(columns) + " |",
                  "|---|---|" + "---|" * len(columns)]
        for method, values in sorted(entries, key=lambda e: method_order(e[0])):
            cells = [mean_std([v[c] for v in values]) for c in columns]
            lines.append(f"| {method} | {len(values)} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_risk_coverage(records, out_dir: Path) -> list[Path]:
    """Risk-coverage curves (answering the most confident first) per (task, split), one line per
    method, questions pooled over runs."""
    plt = pyplot()
    written = []
    for (task, split), entries in by_dataset(records):
        fig, ax = plt.subplots(figsize=(4.6, 3.8))
        for method, recs in sorted(entries, key=lambda e: method_order(e[0])):
            parts = [_outcomes(r) for r in recs]
            confidence = np.concatenate([p[0] for p in parts])
            correct = np.concatenate([p[2] for p in parts])
            coverage, risk = S.risk_coverage_curve(confidence, correct)
            ax.plot(coverage, risk, label=f"{method} (AURC {S.aurc(confidence, correct):.3f})")
        ax.set_xlabel("coverage (share answered, most confident first)")
        ax.set_ylabel("risk (error rate of the answered)")
        ax.set_xlim(0, 1)
        ax.set_ylim(bottom=0)
        ax.set_title(f"Risk-coverage: {task} / {split}", fontsize=9)
        ax.legend(fontsize=7)
        written.append(save_figure(fig, out_dir / f"risk_coverage_{task}_{split}.png"))
    return written


SECTION_TEXT = (
    "Answering only the questions a method is most confident about: risk is the error rate of the "
    "answered questions, coverage their share. AURC is the mean risk over all coverages (lower is "
    "better; by confidence max p̄, and `aurc_mi` by low mutual information, – for single-model "
    "methods); `oracle_aurc` is the least any ranking of the same answers can reach and `e_aurc` the "
    "excess over it; `acc@c` is the accuracy on the most confident share c."
)
