"""The maths of BLoB, TFB and IVON on small cases (plain torch, no language model): BLoB's KL
against a Monte-Carlo estimate, its σ parameterisation, flipout and KL schedule; the Gaussian
draws' moments; TFB's isotropic noise and its σ search; IVON's posterior against the optimizer's
own samples; the posterior file."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from swag_lora.bayes import blob
from swag_lora.bayes.parameters import FlatParameterView
from swag_lora.bayes.tfb import metric_change, search_sigma, unit_deviations
from swag_lora.bayes.variational import DiagonalGaussian, VariationalFileError
from swag_lora.errors import InvalidSettingError


class TinyLora(nn.Module):
    """One LoRA layer as PEFT lays it out (lora_A / lora_B ModuleDicts of nn.Linear), plus a head."""

    def __init__(self, d_in=6, d_out=5, r=3, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.base = nn.Linear(d_in, d_out)
        self.base.requires_grad_(False)
        self.lora_A = nn.ModuleDict({"default": nn.Linear(d_in, r, bias=False)})
        self.lora_B = nn.ModuleDict({"default": nn.Linear(r, d_out, bias=False)})
        nn.init.normal_(self.lora_B["default"].weight)
        self.head = nn.Linear(d_out, 2)

    def forward(self, x):
        h = self.base(x) + self.lora_B["default"](self.lora_A["default"](x))
        return self.head(h)


# ------------------------------------------------------------------ BLoB
def test_blob_kl_closed_form_matches_a_monte_carlo_estimate():
    gen = torch.Generator().manual_seed(0)
    mean = torch.randn(4, 5, generator=gen, dtype=torch.float64) * 0.3
    sigma = torch.rand(4, 5, generator=gen, dtype=torch.float64) * 0.2 + 0.02
    prior = 0.2
    closed = float(blob.gaussian_kl(mean, sigma, prior))
    n = 200_000
    z = torch.randn(n, *mean.shape, generator=gen, dtype=torch.float64)
    w = mean + sigma * z
    log_q = torch.distributions.Normal(mean, sigma).log_prob(w).sum((1, 2))
    log_p = torch.distributions.Normal(0.0, prior).log_prob(w).sum((1, 2))
    terms = (log_q - log_p).numpy()
    mc, se = terms.mean(), terms.std() / math.sqrt(n)
    assert abs(closed - mc) < 4 * se, (closed, mc, se)
    assert float(blob.gaussian_kl(torch.zeros(3), torch.full((3,), prior), prior)) == pytest.approx(0.0, abs=1e-12)


def test_blob_sigma_is_g_squared_initialised_in_the_papers_range():
    g = blob.init_g((2000,), eps=0.05, generator=torch.Generator().manual_seed(0))
    assert float(g.min()) >= 0.05 / math.sqrt(2) and float(g.max()) <= 0.05
    sigma = blob.sigma_of(g, 0.05)
    assert torch.equal(sigma, g.square()) and float(sigma.max()) <= 0.05**2
    g_neg = blob.init_g((2000,), eps=-3.0)
    assert float(g_neg.min()) >= -4.0 and float(g_neg.max()) <= -3.0
    assert torch.allclose(blob.sigma_of(g_neg, -3.0), torch.nn.functional.softplus(g_neg))
    with pytest.raises(InvalidSettingError):
        blob.init_g((2,), eps=0.0)


def test_flipout_noise_has_the_distribution_of_a_weight_perturbation_per_token():
    torch.manual_seed(0)
    x = torch.randn(3, 6)  # three tokens
    sigma = torch.rand(4, 6) * 0.5
    draws = torch.stack([blob.flipout_noise(x, sigma * torch.randn_like(sigma)) for _ in range(40_000)])
    expected_var = (x.square() @ sigma.square().T)  # Var(x·Δa_i) = Σ_j x_j² σ_ij²
    assert torch.allclose(draws.mean(0), torch.zeros(3, 4), atol=4 * float(expected_var.sqrt().max()) / 200)
    assert torch.allclose(draws.var(0), expected_var, rtol=0.05)
    # the signs decorrelate tokens that share one Δ: token 0 and 1 are uncorrelated
    corr = np.corrcoef(draws[:, 0, 0].numpy(), draws[:, 1, 0].numpy())[0, 1]
    assert abs(corr) < 0.03


def test_kl_weights_follow_the_papers_schedule_within_a_cycle():
    M = 7
    weights = [blob.kl_weight(i, M) for i in range(1, M + 1)]
    assert weights == sorted(weights) and weights[-1] == pytest.approx(2**M / (2 ** (M + 1) - 1))
    assert sum(weights) == pytest.approx(1 - 1 / (2 ** (M + 1) - 1))
    assert [blob.kl_weight(i, M) for i in range(M + 1, 2 * M + 1)] == weights  # cycles repeat
    assert blob.kl_weight(3, M, reweighting=False) == pytest.approx(1 / M)
    assert 0 < blob.kl_weight(5000, 5000) < 1 and blob.kl_weight(1, 5000) == 0.0  # no overflow
    assert blob.kl_cycle_length(320, 8, 40) == int(100 * 320 ** (math.pi / 8) / 8)
    assert blob.kl_cycle_length(320, 8, 40, gamma=None) == 40


def test_blob_variational_hooks_add_noise_in_training_only_and_train_sigma():
    model = TinyLora()
    view = FlatParameterView.of_model(model)
    q = blob.BlobVariational(model, view, eps=0.3)
    q.attach()
    x = torch.randn(4, 6)
    model.eval()
    assert torch.equal(model(x), model(x))  # the mean in eval mode
    model.train()
    assert not torch.equal(model(x), model(x))
    with q.inactive():  # training mode at the mean
        assert torch.equal(model(x), model(x))
    model(x).sum().backward()
    assert q.g[0].grad is not None and float(q.g[0].grad.abs().sum()) > 0  # the NLL reaches σ
    std = q.std_vector()
    a = view.slice_of(model.lora_A["default"].weight)
    assert torch.allclose(std[a], q.sigmas()[0].reshape(-1)) and float(std.sum() - std[a].sum()) == 0.0


# ------------------------------------------------------------------ Gaussian draws and file
def test_diagonal_gaussian_draws_have_its_mean_and_std_and_are_nested(tmp_path):
    mean = torch.tensor([1.0, -2.0, 0.5, 3.0])
    std = torch.tensor([0.1, 0.0, 2.0, 0.5])
    q = DiagonalGaussian(mean, std, ["w"], [(4,)], "test")
    draws = torch.stack(q.draw_deviations(20_000, seed=3)) + mean
    assert torch.allclose(draws.mean(0), mean, atol=4 * float(std.max()) / math.sqrt(20_000))
    assert torch.allclose(draws.std(0), std, rtol=0.03, atol=1e-6)
    assert torch.equal(torch.stack(q.draw_deviations(5, seed=3)), torch.stack(q.draw_deviations(9, seed=3)[:5]))
    pairs = q.draw_deviations(4, seed=1, antithetic=True)
    assert torch.equal(pairs[0], -pairs[1]) and torch.equal(pairs[2], -pairs[3])
    q.save(tmp_path / "q.safetensors")
    back = DiagonalGaussian.load(tmp_path / "q.safetensors", ["w"], [(4,)])
    assert torch.equal(back.mean, mean) and torch.equal(back.std, std) and back.method == "test"
    with pytest.raises(VariationalFileError, match="has shape"):
        DiagonalGaussian.load(tmp_path / "q.safetensors", ["w"], [(5,)])
    with pytest.raises(InvalidSettingError):
        DiagonalGaussian(mean, -std, ["w"], [(4,)], "test")
    # a byte changed since saving (size kept) is refused by the file's checksum, naming the file
    path = tmp_path / "q.safetensors"
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(VariationalFileError, match="q.safetensors is damaged"):
        DiagonalGaussian.load(path)


# ------------------------------------------------------------------ TFB
def test_tfb_noise_is_isotropic_in_the_column_space_of_b_and_only_on_a():
    model = TinyLora(d_in=6, d_out=5, r=3)
    view = FlatParameterView.of_model(model)
    vector = view.read()
    a, b = view.slice_of(model.lora_A["default"].weight), view.slice_of(model.lora_B["default"].weight)
    deltas = unit_deviations(model, view, vector, 4000, seed=0)
    B = vector[b].reshape(5, 3).double()
    U, _, _ = torch.linalg.svd(B, full_matrices=False)
    products = torch.stack([B @ d[a].reshape(3, 6).double() for d in deltas])  # [S, out, in]
    cov = torch.einsum("sij,skj->ik", products, products) / (len(deltas) * 6)  # E[(BΔA)(BΔA)ᵀ] per input column
    assert torch.allclose(cov, U @ U.T, atol=0.05)  # σ = 1: the projector onto B's columns
    outside = torch.ones(view.numel, dtype=torch.bool)
    outside[a] = False
    assert all(float(d[outside].abs().max()) == 0.0 for d in deltas[:10])
    assert torch.equal(unit_deviations(model, view, vector, 3, seed=0)[2], deltas[2])  # nested


def test_tfb_search_returns_the_largest_sigma_within_tolerance():
    k, tolerance, top, steps = 40.0, 0.01, 0.05, 8
    change = lambda s: k * s * s  # noqa: E731 - increasing; boundary at sqrt(tolerance / k)
    boundary = math.sqrt(tolerance / k)
    sigma, tried = search_sigma(change, tolerance, top, steps)
    assert change(sigma) <= tolerance and sigma <= boundary
    assert boundary - sigma <= top / 2**steps
    assert all(c > tolerance for s, c in tried.items() if s > sigma)  # every larger σ tried broke it
    assert len(tried) == steps + 1
    assert search_sigma(change, 1.0, top, steps) == (top, {top: change(top)})  # the bound itself is fine
    assert search_sigma(lambda s: 1.0 if s > 0 else 0.0, 0.5, top, 4)[0] == 0.0  # none is: the MAP
    assert search_sigma(change, tolerance, top, 0)[0] == 0.0


def test_tfb_metric_change_counts_flipped_predictions_and_relative_nll():
    ref = np.log(np.array([[[0.7, 0.3]], [[0.2, 0.8]], [[0.6, 0.4]], [[0.9, 0.1]]]))
    same = np.repeat(ref, 3, axis=1)
    assert metric_change("accuracy", ref, same) == 0.0 and metric_change("nll", ref, same) == pytest.approx(0.0)
    flipped = same.copy()
    flipped[0] = np.log(np.array([0.4, 0.6]))
    assert metric_change("accuracy", ref, flipped) == 0.25
    nll_ref = -np.mean(np.log([0.7, 0.8, 0.6, 0.9]))
    nll_new = -np.mean(np.log([0.4, 0.8, 0.6, 0.9]))
    assert metric_change("nll", ref, flipped) == pytest.approx(abs(nll_new - nll_ref) / nll_ref)


# ------------------------------------------------------------------ IVON
def test_ivon_posterior_has_the_optimizers_mean_and_variance():
    ivon = pytest.importorskip("ivon")
    from swag_lora.bayes.ivon import ivon_posterior, ivon_std

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 1))
    x, y = torch.randn(64, 4), torch.randn(64, 1)
    view = FlatParameterView.of_model(model)
    opt = ivon.IVON(view.params, lr=0.05, ess=64, hess_init=0.5, weight_decay=1e-3)
    for _ in range(30):
        with opt.sampled_params(train=True):
            opt.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    q = ivon_posterior(opt, view)
    hess = opt.param_groups[0]["hess"]
    assert torch.equal(q.mean, view.read())
    assert torch.allclose(q.std, (64 * (hess + 1e-3)).rsqrt()) and torch.allclose(q.std, ivon_std(hess, 64, 1e-3))
    assert float(hess.std()) > 0  # the Hessian estimate moved: σ differs per parameter
    # the optimizer's own test-time samples have the same spread
    samples = []
    for _ in range(4000):
        with opt.sampled_params():
            samples.append(view.read())
    samples = torch.stack(samples)
    assert torch.allclose(samples.mean(0), q.mean, atol=4 * float(q.std.max()) / math.sqrt(4000))
    assert torch.allclose(samples.std(0), q.std, rtol=0.05)
    ours = torch.stack(q.draw_deviations(4000, seed=0)) + q.mean
    assert torch.allclose(ours.std(0), q.std, rtol=0.05)
    assert torch.equal(view.read(), q.mean)  # sampling restored the mean
