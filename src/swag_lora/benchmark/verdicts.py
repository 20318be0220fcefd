"""The verdict table: the seed paper's three claims on these settings, and this tool's own bar,
each decided by a 95% paired bootstrap interval (``holds`` when the whole interval is on the
claimed side, ``does not hold`` when wholly on the other side, else ``inconclusive``)."""

from __future__ import annotations

from ..bayes.names import TEMPERED_SUFFIX
from .comparisons import ci, compare

__all__ = ["MARGIN", "verdict_rows"]

MARGIN = 0.01  # non-inferiority margin for "competitive" (nats of NLL, and ECE)
BAR_VARIANTS = ("swag", "swag-tuned", "multiswag")  # the SWAG variants both of the tool's bars decide


def _decide(intervals: list[dict | None], below: float) -> str:
    """All intervals wholly below ``below``: holds; any wholly above: does not hold."""
    if any(c is None for c in intervals) or not intervals:
        return "not measured"
    if all(c["hi"] < below for c in intervals):
        return "holds"
    if any(c["lo"] > below for c in intervals):
        return "does not hold"
    return "inconclusive"


def _one(kind: str, task: str, method: str, decided: str, evidence: str) -> tuple[str, str, str, str]:
    return kind, f"{task}: {method}", decided, evidence


def verdict_rows(tasks: dict[str, dict]) -> list[tuple[str, str, str, str]]:
    """(claim, where, verdict, evidence) rows. ``tasks`` maps a task to ``{"groups", "preds",
    "ood": {name: (groups, preds)}}`` (test records and predictives per method)."""
    rows = []
    for task, data in tasks.items():
        groups, preds = data["groups"], data["preds"]
        swag, laplace, base = groups.get("swag-tuned"), groups.get("laplace"), groups.get("map")
        if swag and laplace:
            nll, ece = compare(preds, swag, laplace, "nll"), compare(preds, swag, laplace, "ece")
            rows.append(_one("(i) calibration competitive with Laplace-LoRA (within 0.01)", task, "swag-tuned − laplace",
                             _decide([nll, ece], MARGIN), f"ΔNLL {ci(nll)}; ΔECE {ci(ece)}"))
        if swag and base:
            acc = compare(preds, swag, base, "acc")
            rows.append(_one("(ii) generalisation: accuracy ≥ MAP − 1 point", task, "swag-tuned − map",
                             _decide([_negated(acc)], 0.01), f"Δacc {ci(acc, 100, 2)} points"))
        for ood, (ood_groups, ood_preds) in data.get("ood", {}).items():
            a, b = ood_groups.get("swag-tuned" + TEMPERED_SUFFIX), ood_groups.get("map" + TEMPERED_SUFFIX)
            if a and b:
                nll = compare(ood_preds, a, b, "nll")
                rows.append(_one("(iii) robustness under shift: NLL below MAP + temperature (T fitted in-domain)",
                                 f"{task} → {ood}", "swag-tuned+ts − map+ts", _decide([nll], 0.0), f"ΔNLL {ci(nll)}"))
        ref = groups.get("map" + TEMPERED_SUFFIX)
        for method in BAR_VARIANTS:
            tempered = groups.get(method + TEMPERED_SUFFIX)
            if tempered and ref:
                nll = compare(preds, tempered, ref, "nll")
                rows.append(_one("tool's bar: SWAG + temperature below MAP + temperature on NLL", task,
                                 f"{method}+ts − map+ts", _decide([nll], 0.0), f"ΔNLL {ci(nll)}"))
        for method in BAR_VARIANTS:
            recs = groups.get(method)
            if recs and base:
                aurc = compare(preds, recs, base, "aurc")
                rows.append(_one("tool's bar: SWAG's AURC below MAP's", task, f"{method} − map", _decide([aurc], 0.0),
                                 f"ΔAURC {ci(aurc)}"))
    return rows


def _negated(c: dict | None) -> dict | None:
    """An interval of −d (so that "d ≥ −1 point" reads "−d below +1 point")."""
    if c is None:
        return None
    return {**c, "diff": -c["diff"], "lo": -c["hi"], "hi": -c["lo"]}
