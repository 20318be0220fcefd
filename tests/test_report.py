"""The report's parts: the generated reading states the records' numbers, reliability diagrams
show how many questions each bin holds, metric bars say which way is better."""

from __future__ import annotations

import numpy as np

from swag_lora import metrics as M
from swag_lora.report.plots import draw_reliability, pyplot
from swag_lora.report.reading import reading


def record(method, acc, nll, ece, aurc, n=400, ood=False, task="arc-easy"):
    return {"task": task, "split": "test", "method": method, "acc": acc, "nll": nll, "ece": ece, "aurc": aurc,
            "n_examples": n, "ood": ood}


def test_reading_states_what_the_numbers_say():
    records = [record("zero-shot", 0.517, 2.427, 0.291, 0.45), record("map", 0.657, 1.827, 0.201, 0.30),
               record("swag", 0.662, 1.874, 0.201, 0.29), record("temperature", 0.657, 1.023, 0.095, 0.30),
               record("map", 0.30, 3.1, 0.4, 0.7, n=299, ood=True, task="arc-challenge")]
    text = reading(records)
    first, second = text.split("\n\n")
    assert first.startswith("**arc-easy / test**, 400 questions.") and "(out of distribution)" in second
    assert "from 0.517 (zero-shot) to 0.657 (MAP) and NLL from 2.427 to 1.827" in first
    assert "Best accuracy: swag (0.662)." in first and "Best NLL: temperature (1.023)." in first
    assert "Best ECE: temperature (0.095)." in first and "Best AURC: swag (0.290)." in first
    assert "temperature lowers NLL by 0.804 against MAP." in first
    noise = 196 * np.sqrt(0.662 * 0.338 / 400)
    assert f"span 0.5 points, within the ±{noise:.1f}-point 95% sampling noise" in first


def test_reliability_diagram_shows_the_count_of_every_bin():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(4) * 0.5, size=90)
    labels = rng.integers(0, 4, size=90)
    plt = pyplot()
    fig, ax = plt.subplots()
    ece = draw_reliability(ax, probs, labels, n_bins=10)
    counts = M.reliability(probs, labels, 10)["count"]
    shown = sorted(int(t.get_text()) for t in ax.texts)
    assert shown == sorted(int(c) for c in counts if c > 0) and sum(shown) == 90
    assert ece == M.expected_calibration_error(probs, labels, 10)
    plt.close(fig)
