"""Paired comparisons of the benchmark's methods on the same test questions: bootstrap intervals
of differences, the claims' verdicts, the methods with a temperature, ranking errors, and the
oracle-temperature diagnostic.

Every comparison uses the saved predictives (``METHOD|SEED`` → log p̄ [N, C], and
``METHOD|SEED|mi`` → per-question mutual information) of :mod:`swag_lora.benchmark.results`,
over the seeds both methods have (a combined method, with seed ``None``, against every seed of
the other), resampling questions jointly for both methods and every seed.
"""

from __future__ import annotations

import numpy as np

from ..bayes.names import TEMPERED_SUFFIX
from ..bayes.temperature import fit_temperature
from ..metrics.bootstrap import NEEDS_MI, paired_bootstrap
from ..report.format import mean_std

__all__ = ["N_BOOT", "RANKING_METRICS", "ci", "claims", "compare", "covariance_table", "difference_table", "ood_shift_rows",
           "oracle_table", "ranking_table", "tempered_table", "verdict", "versus_table"]

N_BOOT = 1000
SWAG_VARIANTS = ("swag-tuned", "swag")
COMPARED = ("temperature", "mc-dropout", "ensemble", "laplace", "multiswag", "swa", "tfb", "blob", "blob-mean", "ivon",
            "ivon-mean")
RANKING_METRICS = ("aurc", "auroc_err_confidence", "auroc_err_entropy", "auroc_err_mi")


def _stack(preds: dict, method: str, seeds: list, with_mi: bool = False) -> np.ndarray | None:
    keys = [f"{method}|{'all' if s is None else s}" for s in seeds]
    if not all(k in preds for k in keys) or (with_mi and not all(f"{k}|mi" in preds for k in keys)):
        return None
    probs = np.exp(np.stack([preds[k].astype(np.float64) for k in keys]))
    if with_mi:
        mi = np.stack([preds[f"{k}|mi"].astype(np.float64) for k in keys])
        probs = np.concatenate([probs, mi[..., None]], axis=-1)
    return probs


def compare(preds: dict, records_a, records_b, metric: str, b_weight: float = 1.0) -> dict | None:
    """Paired bootstrap of ``metric(a) − b_weight·metric(b)`` over the seeds both have; ``None``
    when either side lacks predictives (or, for MI metrics, its mutual information)."""
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
    with_mi = metric in NEEDS_MI
    a = _stack(preds, records_a[0]["method"], common_a, with_mi)
    b = _stack(preds, records_b[0]["method"], common_b, with_mi)
    if a is None or b is None:
        return None
    out = paired_bootstrap(a, b, preds["labels"], metric, n_boot=N_BOOT, b_weight=b_weight)
    out["seeds"] = len(common_a) if common_a != [None] else len(common_b)
    return out


def ci(c: dict | None, scale: float = 1.0, digits: int = 3) -> str:
    """``+d [lo, hi]`` of a comparison (``–`` when not measured)."""
    if c is None:
        return "–"
    return f"{c['diff'] * scale:+.{digits}f} [{c['lo'] * scale:+.{digits}f}, {c['hi'] * scale:+.{digits}f}]"


def verdict(c: dict | None, threshold: float, below: bool) -> str:
    """'holds' when the whole interval is on the claimed side of ``threshold``, 'does not
    hold' when it is wholly on the other side, else 'inconclusive'."""
    if c is None:
        return "not measured"
    if below:
        return "holds" if c["hi"] < threshold else "does not hold" if c["lo"] > threshold else "inconclusive"
    return "holds" if c["lo"] > threshold else "does not hold" if c["hi"] < threshold else "inconclusive"


def _raw(groups: dict) -> dict:
    return {m: recs for m, recs in groups.items() if not m.endswith(TEMPERED_SUFFIX)}


def difference_table(preds, groups: dict[str, list[dict]], reference: str = "map") -> str:
    """Every method − ``reference`` in accuracy, NLL, ECE and Brier, with intervals."""
    lines = [f"| method − {reference} | Δacc | ΔNLL | ΔECE | ΔBrier |", "|---|---|---|---|---|"]
    ref = groups.get(reference)
    for method, recs in groups.items():
        if method == reference or ref is None:
            continue
        cells = [ci(compare(preds, recs, ref, m)) for m in ("acc", "nll", "ece", "brier")]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def claims(preds, groups) -> list[tuple[str, str, str, str]]:
    """(method, claim, verdict, evidence) for SWAG with tuned and with fixed scale, raw."""
    out = []
    ref = groups.get("map")
    for method in SWAG_VARIANTS:
        recs = groups.get(method)
        if recs is None or ref is None:
            continue
        half = compare(preds, recs, ref, "ece", b_weight=0.5)
        nll = compare(preds, recs, ref, "nll")
        acc = compare(preds, recs, ref, "acc")
        out.append((method, "ECE ≤ ½ · MAP ECE", verdict(half, 0.0, below=True), f"ECE − ½·MAP ECE = {ci(half)}"))
        out.append((method, "NLL < MAP NLL", verdict(nll, 0.0, below=True), f"ΔNLL = {ci(nll)}"))
        out.append((method, "accuracy ≥ MAP − 1 point", verdict(acc, -0.01, below=False),
                    f"Δacc = {ci(acc, 100, 2)} points"))
    return out


def versus_table(preds, groups) -> str:
    lines = ["| SWAG variant − other | ΔNLL | ΔECE | Δacc |", "|---|---|---|---|"]
    for method in SWAG_VARIANTS:
        for other in COMPARED:
            a, b = groups.get(method), groups.get(other)
            if a is None or b is None:
                continue
            cells = [ci(compare(preds, a, b, m)) for m in ("nll", "ece", "acc")]
            lines.append(f"| {method} − {other} | " + " | ".join(cells) + " |")
    return "\n".join(lines) if len(lines) > 2 else ""


def tempered_table(preds, groups) -> str:
    """Each method raw and with its validation-fitted temperature: NLL, ECE, T, and the tempered
    method against MAP + temperature (the comparison a temperature cannot win by itself)."""
    ref = groups.get("map" + TEMPERED_SUFFIX)
    lines = ["| method | NLL raw → +ts | ECE raw → +ts | T (validation) | ΔNLL +ts − map+ts | ΔECE +ts − map+ts "
             "| Δacc +ts − map+ts |", "|---|---|---|---|---|---|---|"]
    for method, recs in _raw(groups).items():
        tempered = groups.get("map" + TEMPERED_SUFFIX if method == "temperature" else method + TEMPERED_SUFFIX)
        if tempered is None or method == "temperature":
            continue
        nll = f"{mean_std([r['nll'] for r in recs])} → {mean_std([r['nll'] for r in tempered])}"
        ece = f"{mean_std([r['ece'] for r in recs])} → {mean_std([r['ece'] for r in tempered])}"
        temps = mean_std([r.get("temperature") for r in tempered])
        cells = ["–"] * 3 if method == "map" or ref is None else [
            ci(compare(preds, tempered, ref, m), 100 if m == "acc" else 1, 2 if m == "acc" else 3)
            for m in ("nll", "ece", "acc")]
        lines.append(f"| {method} | {nll} | {ece} | {temps} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def covariance_table(preds, groups, methods=SWAG_VARIANTS) -> str:
    """What SWAG's sampling adds beyond its own mean once both have a temperature: each SWAG
    variant + temperature − SWA + temperature (SWA is the same run's mean weights), as ΔNLL,
    ΔECE and ΔAURC with paired intervals; empty when SWA + temperature was not evaluated."""
    ref = groups.get("swa" + TEMPERED_SUFFIX)
    if ref is None:
        return ""
    lines = ["| sampling beyond the mean | ΔNLL | ΔECE | ΔAURC |", "|---|---|---|---|"]
    for method in methods:
        tempered = groups.get(method + TEMPERED_SUFFIX)
        if tempered is None:
            continue
        cells = [ci(compare(preds, tempered, ref, m)) for m in ("nll", "ece", "aurc")]
        lines.append(f"| {method}+ts − swa+ts | " + " | ".join(cells) + " |")
    return "\n".join(lines) if len(lines) > 2 else ""


def ranking_table(preds, groups) -> str:
    """Ranking errors, where a temperature can barely help: AURC (lower is better) and the AUROC
    of telling wrong answers from right ones by confidence, entropy and mutual information
    (higher is better), each method − MAP with an interval."""
    ref = groups.get("map")
    head = "| method | AURC | AUROC(err) by confidence | by entropy | by MI | ΔAURC − MAP | ΔAUROC conf − MAP |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for method, recs in _raw(groups).items():
        cells = [mean_std([r.get(k) for r in recs]) for k in RANKING_METRICS]
        diffs = ["–", "–"] if method == "map" or ref is None else [
            ci(compare(preds, recs, ref, k)) for k in ("aurc", "auroc_err_confidence")]
        lines.append(f"| {method} | " + " | ".join(cells + diffs) + " |")
    return "\n".join(lines)


def oracle_table(preds, groups) -> str:
    """A diagnostic, not a result: each method's NLL after a temperature fitted on the test set
    itself (its calibrated log-likelihood: what its p̄ is worth once its scale is right)."""
    lines = ["| method | NLL | NLL at the test-fitted T | T |", "|---|---|---|---|"]
    labels = preds.get("labels")
    if labels is None:
        return ""
    for method, recs in _raw(groups).items():
        if method == "temperature":
            continue
        fits = []
        for r in recs:
            key = f"{method}|{'all' if r['seed'] is None else r['seed']}"
            if key in preds:
                fits.append(fit_temperature(preds[key].astype(np.float64), labels))
        if fits:
            lines.append(f"| {method} | {mean_std([f['nll_before'] for f in fits])} | "
                         f"{mean_std([f['nll_after'] for f in fits])} | {mean_std([f['temperature'] for f in fits])} |")
    return "\n".join(lines)


def ood_shift_rows(ood_preds, ood_groups, methods=("swag", "swag-tuned", "multiswag", "laplace")) -> list[str]:
    """Under shift, each Bayesian method + temperature − MAP + temperature (temperatures fitted
    in-domain): ΔNLL, ΔECE, Δacc with intervals."""
    ref = ood_groups.get("map" + TEMPERED_SUFFIX)
    rows = []
    for method in methods:
        recs = ood_groups.get(method + TEMPERED_SUFFIX)
        if recs is None or ref is None:
            continue
        cells = [ci(compare(ood_preds, recs, ref, m), 100 if m == "acc" else 1, 2 if m == "acc" else 3)
                 for m in ("nll", "ece", "acc")]
        rows.append(f"| {method}+ts − map+ts | " + " | ".join(cells) + " |")
    return rows

