"""A short reading of a report's numbers, written from the records: what fine-tuning did, which
method is best on each metric, and what the differences are worth with this many questions.

It states only what the numbers say; every figure in it is in the report's tables.
"""

from __future__ import annotations

import math

import numpy as np

from .records import by_dataset

__all__ = ["reading"]


def _mean(recs, key):
    values = [r.get(key) for r in recs if r.get(key) is not None and np.isfinite(r.get(key))]
    return float(np.mean(values)) if values else None


def _noise_points(n: int, acc: float) -> float:
    """Half-width of a 95% interval of an accuracy from n questions, in points."""
    return 196.0 * math.sqrt(max(acc * (1 - acc), 1e-6) / max(n, 1))


def _dataset_reading(task: str, split: str, entries) -> str:
    means = {m: {k: _mean(recs, k) for k in ("acc", "nll", "ece", "aurc")} for m, recs in entries}
    n = max((r.get("n_examples") or 0 for _, recs in entries for r in recs), default=0)
    ood = any(r.get("ood") for _, recs in entries for r in recs)
    parts = [f"**{task} / {split}**{' (out of distribution)' if ood else ''}, {n} questions."]
    base, tuned = means.get("zero-shot"), means.get("map")
    if base and tuned and base["acc"] is not None and tuned["acc"] is not None:
        parts.append(f"Fine-tuning took accuracy from {base['acc']:.3f} (zero-shot) to {tuned['acc']:.3f} (MAP) "
                     f"and NLL from {base['nll']:.3f} to {tuned['nll']:.3f}.")
    best = {}
    for key, word in (("acc", "accuracy"), ("nll", "NLL"), ("ece", "ECE"), ("aurc", "AURC")):
        scored = [(v[key], m) for m, v in means.items() if v[key] is not None and m != "zero-shot"]
        if scored:
            value, method = max(scored) if key == "acc" else min(scored)
            best[key] = (method, value)
            parts.append(f"Best {word}: {method} ({value:.3f}).")
    if "map" in means and "nll" in best and best["nll"][0] != "map" and means["map"]["nll"] is not None:
        method, value = best["nll"]
        parts.append(f"{method} lowers NLL by {means['map']['nll'] - value:.3f} against MAP.")
    if "acc" in best and n:
        spread = [v["acc"] for m, v in means.items() if v["acc"] is not None and m != "zero-shot"]
        gap = 100 * (max(spread) - min(spread))
        noise = _noise_points(n, best["acc"][1])
        verdict = "within" if gap <= noise else "beyond"
        parts.append(f"The fine-tuned methods' accuracies span {gap:.1f} points, {verdict} the ±{noise:.1f}-point "
                     f"95% sampling noise of one accuracy on {n} questions"
                     + (": compare them with paired intervals before drawing conclusions." if verdict == "within"
                        else "."))
    return " ".join(parts)


def reading(records) -> str:
    """One paragraph per dataset (in-distribution first) summarising the records' numbers."""
    datasets = by_dataset(records)
    datasets.sort(key=lambda item: any(r.get("ood") for _, recs in item[1] for r in recs))
    return "\n\n".join(_dataset_reading(task, split, entries) for (task, split), entries in datasets)
