"""SWAG maths against brute-force float64 references."""

import json

import pytest
import torch
from torch import nn

from swag_lora import SwagPosterior
from swag_lora.bayes.posterior import PosteriorFileError, PosteriorMismatchError


class Tiny(nn.Module):
    """Two trainable tensors and one frozen one."""

    def __init__(self, sizes=(3, 4), frozen=5, dtype=torch.float32):
        super().__init__()
        self.a = nn.Parameter(torch.zeros(sizes[0], dtype=dtype))
        self.frozen = nn.Parameter(torch.zeros(frozen, dtype=dtype), requires_grad=False)
        self.b = nn.Parameter(torch.zeros(sizes[1], 1, dtype=dtype))

    def set_flat(self, vec):
        with torch.no_grad():
            self.a.copy_(vec[: self.a.numel()])
            self.b.copy_(vec[self.a.numel() :].view_as(self.b))


def collect_iterates(model, iterates, max_rank=5):
    post = SwagPosterior(model, max_rank=max_rank)
    for x in iterates:
        model.set_flat(x)
        post.collect()
    return post


def reference_moments(iterates, max_rank):
    """Brute force: mean, population variance and last-K deviations from the running mean, in float64."""
    xs = [x.double() for x in iterates]
    devs = []
    for i in range(len(xs)):
        running_mean = torch.stack(xs[: i + 1]).mean(0)
        devs.append(xs[i] - running_mean)
    stack = torch.stack(xs)
    return stack.mean(0), stack.var(0, unbiased=False), torch.stack(devs[-max_rank:]) if max_rank else None


def test_tracks_only_trainable_parameters_in_order():
    post = SwagPosterior(Tiny(), max_rank=3)
    assert post.names == ["a", "b"]
    assert post.num_parameters == 7


@pytest.mark.parametrize("n", [1, 3, 5, 12])
def test_moments_match_bruteforce(n):
    torch.manual_seed(n)
    iterates = [torch.randn(7) * 2 + 1 for _ in range(n)]
    post = collect_iterates(Tiny(), iterates, max_rank=5)
    mean, var, dev = reference_moments(iterates, 5)
    assert post.n_collected == n
    torch.testing.assert_close(post.mean().double(), mean, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(post.variance().double(), var, rtol=1e-5, atol=1e-6)
    assert post.deviations().shape == (min(n, 5), 7)
    torch.testing.assert_close(post.deviations().double(), dev, rtol=1e-5, atol=1e-6)


def test_ring_buffer_is_oldest_first_after_wraparound():
    iterates = [torch.full((7,), float(i * i)) for i in range(8)]
    post = collect_iterates(Tiny(), iterates, max_rank=3)
    _, _, dev = reference_moments(iterates, 3)
    torch.testing.assert_close(post.deviations().double(), dev)
    # the newest deviation is last: iterate 7 (49) minus the mean of 0..49 squares
    assert post.deviations()[-1, 0].item() == pytest.approx(49 - sum(i * i for i in range(8)) / 8)


def test_large_mean_tiny_spread_variance_is_accurate():
    """Mean 1e3, spread 1e-3: a float32 second moment E[θ²] − θ̄² would be pure rounding noise.

    float32 values near 1e3 sit on a grid of 6e-5, so the running float32 mean itself is
    only known to a few percent of the spread; Welford keeps the variance at that level,
    and a float64 state is exact.
    """
    torch.manual_seed(0)
    n_params = 2000

    class Wide(Tiny):
        def __init__(self, dtype=torch.float32):
            super().__init__(sizes=(1000, 1000))

    iterates = [torch.full((n_params,), 1e3) + 1e-3 * torch.randn(n_params) for _ in range(50)]
    _, var, _ = reference_moments(iterates, 5)  # float64 reference from the float32 values
    assert var.min() > 1e-7  # the spread survives float32 rounding

    rel = (collect_iterates(Wide(), iterates).variance().double() - var).abs() / var
    assert rel.median() < 0.02 and rel.max() < 0.25, (rel.median(), rel.max())

    naive = torch.stack(iterates).pow(2).mean(0) - torch.stack(iterates).mean(0).pow(2)  # float32
    naive_rel = (naive.double() - var).abs() / var
    assert naive_rel.median() > 1.0  # what Welford avoids

    post64 = SwagPosterior(Wide(), dtype=torch.float64)
    model = post64._view.params
    for x in iterates:
        with torch.no_grad():
            model[0].copy_(x[:1000])
            model[1].copy_(x[1000:].view(1000, 1))
        post64.collect()
    rel64 = (post64.variance() - var).abs() / var
    assert rel64.max() < 1e-6


def test_bf16_parameters_accumulate_in_float32():
    model = Tiny(dtype=torch.bfloat16)
    post = SwagPosterior(model)
    iterates = [torch.randn(7).bfloat16() for _ in range(4)]
    for x in iterates:
        model.set_flat(x)
        post.collect()
    assert post.mean().dtype == torch.float32
    assert post.variance().dtype == torch.float32
    assert post.deviations().dtype == torch.float32
    mean, var, _ = reference_moments([x.float() for x in iterates], 5)
    torch.testing.assert_close(post.mean().double(), mean, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(post.variance().double(), var, rtol=1e-5, atol=1e-7)
    sample = post.sample()
    assert sample.dtype == torch.float32
    post.write(sample)
    assert model.a.dtype == torch.bfloat16


def empirical_covariance_error(post, scale, diag_only, n_samples=40000):
    gen = torch.Generator().manual_seed(1234)
    samples = torch.stack([post.sample(scale=scale, diag_only=diag_only, generator=gen) for _ in range(n_samples)])
    samples = samples.double()
    emp = torch.cov(samples.T, correction=0)
    var = post.variance().double()
    dev = post.deviations().double()
    k = dev.shape[0]
    expected = torch.diag(var)
    if not diag_only and k >= 2:
        expected = expected + dev.T @ dev / (k - 1)
    expected = scale * expected
    mean_err = (samples.mean(0) - post.mean().double()).abs().max().item()
    return (torch.linalg.norm(emp - expected) / torch.linalg.norm(expected)).item(), mean_err


@pytest.mark.parametrize(
    "n_iterates,max_rank,scale,diag_only",
    [(12, 5, 1.0, False), (12, 5, 0.5, False), (3, 5, 1.0, False), (12, 5, 2.0, True), (2, 5, 1.0, False)],
)
def test_sample_covariance_matches_formula(n_iterates, max_rank, scale, diag_only):
    torch.manual_seed(7)
    # correlated iterates so that the low-rank part matters
    direction = torch.randn(7)
    iterates = [torch.randn(7) * 0.3 + direction * torch.randn(()) * 2 for _ in range(n_iterates)]
    post = collect_iterates(Tiny(), iterates, max_rank=max_rank)
    if n_iterates == 3:
        assert post.rank == 3 < max_rank  # the k < max_rank case: divide by k - 1 = 2, not K - 1
    rel, mean_err = empirical_covariance_error(post, scale, diag_only)
    assert rel < 0.05, rel
    assert mean_err < 0.1


def test_low_rank_term_uses_rows_held_not_max_rank():
    """With k=3 of K=5 rows held, dividing by K-1 would shrink the low-rank covariance by half."""
    torch.manual_seed(3)
    iterates = [torch.zeros(7), torch.ones(7) * 4, -torch.ones(7) * 4]
    post = collect_iterates(Tiny(), iterates, max_rank=5)
    gen = torch.Generator().manual_seed(0)
    samples = torch.stack([post.sample(generator=gen) for _ in range(20000)]).double()
    dev = post.deviations().double()
    expected_lowrank = (dev.T @ dev / 2)[0, 0]  # k - 1 = 2
    total = post.variance().double()[0] + expected_lowrank
    assert samples[:, 0].var().item() == pytest.approx(total.item(), rel=0.05)


def test_scale_zero_is_swa_and_diag_only_has_no_low_rank():
    iterates = [torch.arange(7.0) * i for i in range(4)]
    post = collect_iterates(Tiny(), iterates)
    torch.testing.assert_close(post.sample(scale=0.0), post.mean())


def test_sample_before_collect_raises():
    with pytest.raises(RuntimeError, match="no collected iterates"):
        SwagPosterior(Tiny()).sample()


def test_sampled_context_restores_weights_also_on_exception():
    model = Tiny()
    post = collect_iterates(model, [torch.randn(7) for _ in range(4)])
    before = [p.detach().clone() for p in model.parameters()]
    with post.sampled(scale=1.0, seed=0) as vec:
        assert not torch.equal(model.a.detach(), before[0])
        torch.testing.assert_close(post.read(), vec)
    for p, q in zip(model.parameters(), before):
        assert torch.equal(p.detach(), q)
    with pytest.raises(KeyError):
        with post.sampled(seed=1):
            raise KeyError("boom")
    for p, q in zip(model.parameters(), before):
        assert torch.equal(p.detach(), q)


def test_seeded_samples_are_reproducible():
    post = collect_iterates(Tiny(), [torch.randn(7) for _ in range(4)])
    with post.sampled(seed=5) as a:
        a = a.clone()
    with post.sampled(seed=5) as b:
        pass
    torch.testing.assert_close(a, b)


def test_save_load_round_trip_continues_collection_exactly(tmp_path):
    torch.manual_seed(0)
    iterates = [torch.randn(7) for _ in range(9)]
    model = Tiny()
    full = collect_iterates(model, iterates, max_rank=4)
    half = collect_iterates(model, iterates[:6], max_rank=4)
    path = tmp_path / "post.safetensors"
    half.save(path)
    resumed = SwagPosterior.load(path, model)
    assert resumed.n_collected == 6 and resumed.max_rank == 4
    for x in iterates[6:]:
        model.set_flat(x)
        resumed.collect()
    torch.testing.assert_close(resumed.mean(), full.mean(), rtol=0, atol=0)
    torch.testing.assert_close(resumed.variance(), full.variance(), rtol=0, atol=0)
    torch.testing.assert_close(resumed.deviations(), full.deviations(), rtol=0, atol=0)
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_load_into_mismatched_model_names_the_parameter(tmp_path):
    post = collect_iterates(Tiny(), [torch.randn(7)])
    path = tmp_path / "post.safetensors"
    post.save(path)
    with pytest.raises(PosteriorMismatchError, match="'b'.*shape \\[4, 1\\].*\\[5, 1\\]"):
        SwagPosterior.load(path, Tiny(sizes=(3, 5)))

    class Renamed(Tiny):
        def __init__(self):
            super().__init__()
            self.c = self.b
            del self.b

    with pytest.raises(PosteriorMismatchError, match="'b'.*'c'"):
        SwagPosterior.load(path, Renamed())


def test_truncated_or_foreign_file_is_rejected(tmp_path):
    post = collect_iterates(Tiny(), [torch.randn(7), torch.randn(7)])
    path = tmp_path / "post.safetensors"
    post.save(path)
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) - 10])
    with pytest.raises(PosteriorFileError, match="truncated or corrupted"):
        SwagPosterior.load(tmp_path / "cut.safetensors", Tiny())
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(PosteriorFileError, match="not a swag-lora posterior"):
        SwagPosterior.load(tmp_path / "other.safetensors", Tiny())


def test_saved_metadata_is_complete(tmp_path):
    from safetensors import safe_open

    post = collect_iterates(Tiny(), [torch.randn(7) for _ in range(7)], max_rank=5)
    post.save(tmp_path / "p.safetensors")
    with safe_open(str(tmp_path / "p.safetensors"), "pt") as f:
        meta = json.loads(f.metadata()["swag_lora"])
    assert meta["format_version"] == 1
    assert meta["names"] == ["a", "b"] and meta["shapes"] == [[3], [4, 1]]
    assert meta["n_collected"] == 7 and meta["next_slot"] == 2 and meta["max_rank"] == 5
    assert meta["param_dtypes"] == ["float32", "float32"]


def test_state_memory_is_minimal():
    post = SwagPosterior(Tiny(sizes=(100, 100)), max_rank=5)
    assert post.state_nbytes() == (5 + 2) * 200 * 4
