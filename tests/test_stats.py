"""Paired bootstrap intervals."""

import numpy as np
import pytest

from swag_lora.metrics.bootstrap import paired_bootstrap


def test_identical_methods_have_zero_difference_and_zero_width():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), size=100)
    y = rng.integers(0, 4, 100)
    out = paired_bootstrap(p, p, y, "nll", n_boot=200)
    assert out["diff"] == 0 and out["lo"] == 0 and out["hi"] == 0


def test_interval_covers_the_point_and_excludes_zero_for_a_clear_win():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 300)
    good = np.full((300, 4), 0.1)
    good[np.arange(300), y] = 0.7
    bad = np.full((300, 4), 0.25)
    out = paired_bootstrap(good, bad, y, "acc", n_boot=500)
    assert out["lo"] <= out["diff"] <= out["hi"]
    assert out["diff"] == pytest.approx(1.0 - np.mean(bad.argmax(1) == y))
    nll = paired_bootstrap(good, bad, y, "nll", n_boot=500)
    assert nll["hi"] < 0  # good has lower NLL on every resample


def test_runs_are_averaged_and_pairing_is_kept():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 50)
    base = rng.dirichlet(np.ones(3), size=(3, 50))
    shifted = base.copy()
    out = paired_bootstrap(shifted, base, y, "brier", n_boot=100)
    assert out["diff"] == 0 and out["lo"] == out["hi"] == 0  # same runs, same questions: no noise
    with pytest.raises(ValueError, match="labels"):
        paired_bootstrap(base, base, y[:10], "acc")


def test_b_weight_compares_with_a_fraction_of_b():
    from swag_lora import metrics as M

    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 80)
    a = rng.dirichlet(np.ones(4), size=80)
    b = rng.dirichlet(np.ones(4) * 0.3, size=80)
    out = paired_bootstrap(a, b, y, "ece", n_boot=50, b_weight=0.5)
    expected = M.expected_calibration_error(a, y) - 0.5 * M.expected_calibration_error(b, y)
    assert out["diff"] == pytest.approx(expected)
    assert out["lo"] <= out["hi"]


def test_covariance_table_pairs_each_swag_variant_with_its_tempered_mean_over_common_seeds():
    """The "beyond the mean" rows are swag(+tuned)+ts − swa+ts on the seeds both have, with the
    NLL difference a brute-force mean over seeds; no SWA + temperature, no table."""
    from swag_lora import metrics as M
    from swag_lora.benchmark.comparisons import covariance_table

    rng = np.random.default_rng(4)
    y = rng.integers(0, 4, 120)
    preds = {"labels": y}
    for method in ("swa+ts", "swag+ts", "swag-tuned+ts"):
        for seed in (0, 1, 2):
            preds[f"{method}|{seed}"] = np.log(rng.dirichlet(np.ones(4), size=120)).astype(np.float32)
    groups = {"swa+ts": [{"method": "swa+ts", "seed": s} for s in (0, 1, 2)],
              "swag+ts": [{"method": "swag+ts", "seed": s} for s in (0, 2)],  # seed 1 missing: pair 0 and 2
              "swag-tuned+ts": [{"method": "swag-tuned+ts", "seed": s} for s in (0, 1, 2)]}
    table = covariance_table(preds, groups).splitlines()
    assert [row.split(" | ")[0] for row in table[2:]] == ["| swag-tuned+ts − swa+ts", "| swag+ts − swa+ts"]

    def nll(method, seeds):
        return np.mean([M.negative_log_likelihood(preds[f"{method}|{s}"].astype(np.float64), y) for s in seeds])

    for row, method, seeds in ((table[2], "swag-tuned+ts", (0, 1, 2)), (table[3], "swag+ts", (0, 2))):
        shown = float(row.split(" | ")[1].split(" [")[0])
        assert shown == pytest.approx(nll(method, seeds) - nll("swa+ts", seeds), abs=5e-4)
    assert covariance_table(preds, {k: v for k, v in groups.items() if k != "swa+ts"}) == ""


def test_verdict_rows_decide_the_tools_aurc_bar_for_every_swag_variant():
    """A MultiSWAG whose confidence separates right from wrong answers holds the AURC bar against
    a MAP whose confidence does not; a SWAG identical to MAP is inconclusive (interval [0, 0])."""
    from swag_lora.benchmark.verdicts import verdict_rows

    rng = np.random.default_rng(5)
    n = 300
    y = rng.integers(0, 4, n)
    pick = np.where(rng.random(n) < 0.6, y, (y + 1) % 4)  # the answer given: right 60% of the time
    sharp = np.where(pick == y, 0.9, 0.4)  # confident exactly when right
    blind = rng.uniform(0.4, 0.9, n)  # confidence unrelated to being right

    def predictive(top):
        p = np.repeat(((1 - top) / 3)[:, None], 4, axis=1)
        p[np.arange(n), pick] = top
        return np.log(p)

    preds = {"labels": y, "map|0": predictive(blind), "swag|0": predictive(blind), "multiswag|all": predictive(sharp)}
    groups = {"map": [{"method": "map", "seed": 0}], "swag": [{"method": "swag", "seed": 0}],
              "multiswag": [{"method": "multiswag", "seed": None}]}
    rows = {where: (verdict, evidence) for claim, where, verdict, evidence in verdict_rows({"t": {"groups": groups,
                                                                                                   "preds": preds}})
            if claim == "tool's bar: SWAG's AURC below MAP's"}
    assert set(rows) == {"t: swag − map", "t: multiswag − map"}
    assert rows["t: multiswag − map"][0] == "holds"
    assert rows["t: swag − map"] == ("inconclusive", "ΔAURC +0.000 [+0.000, +0.000]")
