"""The run report: ``report.md`` and its PNGs built only from saved evaluation files.

Input: any mix of run directories, evaluation folders or ``metrics.json`` files (see
:mod:`.records`); sample-count studies (``sample_study.json``) found under the same paths are
tabulated and plotted too.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..evaluation.sample_study import STUDY_FILE
from ..files import read_json, write_text
from .plots import plot_metric_bars, plot_ood_roc, plot_reliability, plot_sample_studies
from .reading import reading
from .records import find_records, ood_records
from .selective import SECTION_TEXT, plot_risk_coverage, selective_table
from .tables import ood_table, sample_study_table, summary_table

__all__ = ["find_studies", "write_report"]


def find_studies(paths) -> list[dict]:
    """Every sample-count study (``sample_study.json``) under the given paths."""
    studies = []
    for path in map(Path, paths):
        files = [path] if path.is_file() and path.name == STUDY_FILE else sorted(path.rglob(STUDY_FILE)) if path.is_dir() else []
        studies += [read_json(f) for f in files]
    return studies


def write_report(paths, out_dir: str | os.PathLike, title: str = "swag-lora report") -> Path:
    """Write ``report.md`` and its PNGs into ``out_dir`` from the saved evaluations under ``paths``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = find_records(paths)
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
             "mean ± std (sample std) over runs where several runs are given.", "",
             "## Reading", "", "Written from the numbers below (the tables hold every figure).", "",
             reading(records), "", "## Results", "", summary_table(records)]
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
    write_text(report, "\n".join(lines))
    return report
