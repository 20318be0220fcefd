"""What SWAG costs on top of plain LoRA, on this machine's CPU: one process, medians over repeats.

    .venv/bin/python bench/perf.py --quick          # 2-4 minutes (240 s budget), no demo
    .venv/bin/python bench/perf.py                  # more repeats and S = 15 (about 10 minutes)
    .venv/bin/python bench/perf.py --demo           # also times `swag-lora demo`

Writes ``bench/results/perf.json`` (``--out`` to change). Figures (docs/performance.md):

* ``collect_ms`` / ``sample_ms`` (draw one sample and write it into the model) at
  P = 460,800 (SmolLM2-135M, LoRA r=8 on q and v, K = 5) and at P = 4,194,304 (the LoRA
  size of Llama-2-7B), on parameter sets of exactly those shapes;
* ``train_overhead_ratio``: time of an optimizer step with a SWAG collection (through
  ``SwagCallback.on_step_end``, as the Trainer calls it) over a step without, on the real
  SmolLM2-135M with real ARC-Easy batches of 8, interleaved on the same batches;
* ``bma_overhead_ratio``: time of an S-sample SWAG evaluation (drawing included) over
  S MAP evaluation passes of the same data, interleaved;
* ``posterior_bytes`` (``SwagPosterior.state_nbytes()``), every byte the posterior object
  holds, the saved file size, and ``posterior_bytes_minimal`` = (K + 2)·P·4;
* ``demo_seconds`` with ``--demo``.

The machine's cores may be shared, so every ratio comes from interleaved runs (ABBA order,
so a linear drift in machine speed cancels) and is given with its spread, next to the
ratio that the separately measured costs predict. ``--threads`` sets
``torch.set_num_threads`` for everything (default 1). Every time is taken on two clocks:
``cpu``, the CPU time of the thread doing the work (``time.thread_time``; with one torch
thread all of the work runs on it, so time spent descheduled while other jobs share the
cores is left out), and ``wall`` (``time.perf_counter``). The headline figures use ``cpu``
with one thread and ``wall`` with more (where one thread's CPU time would miss the others');
both are in the JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "src") not in sys.path:  # run from a source tree without installing too
    sys.path.insert(0, str(REPO / "src"))

from swag_lora.bayes.posterior import SwagPosterior  # noqa: E402

MAX_RANK = 5
BYTES_PER_NUMBER = 4  # float32 state
CLOCKS = ("cpu", "wall")

# LoRA r=8 on q_proj and v_proj: (layers, hidden, q_out, v_out)
SHAPES = {
    "smollm2-135m": (30, 576, 576, 192),  # 3 KV heads of 64: v_proj is 576 -> 192
    "llama-2-7b": (32, 4096, 4096, 4096),
}
TARGETS = {
    "collect_ms": 2.0,
    "sample_ms": 5.0,
    "train_overhead_ratio": 1.01,
    "bma_overhead_ratio": 1.02,
    "posterior_bytes_ratio": 1.01,
}


# ---------------------------------------------------------------------------- helpers
def spread(values: list[float], digits: int = 4) -> dict:
    """Median, quartiles and extremes of repeated measurements."""
    values = sorted(values)
    q = statistics.quantiles(values, n=4) if len(values) >= 2 else [values[0]] * 3
    r = lambda v: round(v, digits)  # noqa: E731
    return {
        "median": r(statistics.median(values)),
        "q1": r(q[0]),
        "q3": r(q[2]),
        "min": r(values[0]),
        "max": r(values[-1]),
        "n": len(values),
    }


def timed(fn) -> dict[str, float]:
    """Seconds ``fn()`` takes on both clocks: this thread's CPU time and wall time."""
    wall, cpu = time.perf_counter(), time.thread_time()
    fn()
    return {"cpu": time.thread_time() - cpu, "wall": time.perf_counter() - wall}


class Series:
    """Repeated measurements on both clocks."""

    def __init__(self):
        self.values: dict[str, list[float]] = {clock: [] for clock in CLOCKS}

    def clear(self) -> None:
        for values in self.values.values():
            values.clear()

    def add(self, t: dict[str, float], scale: float = 1.0) -> None:
        for clock in CLOCKS:
            self.values[clock].append(t[clock] * scale)

    def median(self, clock: str) -> float:
        return statistics.median(self.values[clock])

    def total(self, clock: str) -> float:
        return sum(self.values[clock])

    def spreads(self, digits: int = 4) -> dict:
        return {clock: spread(v, digits) for clock, v in self.values.items()}


def out_of_time(deadline: float | None, done: int, last_s: float, minimum: int = 2) -> bool:
    """Whether another repeat lasting about ``last_s`` would overrun ``deadline`` (a
    ``time.perf_counter()`` value), once at least ``minimum`` repeats are done."""
    return deadline is not None and done >= minimum and time.perf_counter() + last_s > deadline


def log(msg: str) -> None:
    print(f"[perf {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class LoraShaped(nn.Module):
    """Only the trainable tensors of a model with LoRA r on q_proj and v_proj (A: [r, in], B: [out, r])."""

    def __init__(self, layers: int, hidden: int, q_out: int, v_out: int, r: int = 8):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        params = {}
        for i in range(layers):
            for name, out in (("q_proj", q_out), ("v_proj", v_out)):
                params[f"layers.{i}.{name}.lora_A"] = torch.randn(r, hidden, generator=gen) * 0.01
                params[f"layers.{i}.{name}.lora_B"] = torch.randn(out, r, generator=gen) * 0.01
        self.weights = nn.ParameterDict({k.replace(".", "_"): nn.Parameter(v) for k, v in params.items()})


def held_bytes(posterior: SwagPosterior, model: nn.Module) -> int:
    """Every byte of tensor storage reachable from the posterior object, less the model's own
    parameters (shared views counted once): what keeping the posterior really costs."""
    excluded = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def visit(obj, depth=0):
        if isinstance(obj, torch.Tensor):
            storage = obj.untyped_storage()
            ptr = storage.data_ptr()
            if ptr not in excluded:
                seen[ptr] = max(seen.get(ptr, 0), storage.nbytes())
        elif isinstance(obj, (list, tuple)) and depth < 4:
            for item in obj:
                visit(item, depth + 1)
        elif isinstance(obj, dict) and depth < 4:
            for item in obj.values():
                visit(item, depth + 1)
        elif hasattr(obj, "__dict__") and depth < 2 and not isinstance(obj, nn.Module):
            visit(vars(obj), depth + 1)

    visit(vars(posterior))
    return sum(seen.values())


# ------------------------------------------------------------- posterior micro-benchmark
def bench_posterior(label: str, repeats: int) -> dict:
    """collect / sample / write at the P of ``label``, interleaved per repeat."""
    model = LoraShaped(*SHAPES[label])
    posterior = SwagPosterior(model, max_rank=MAX_RANK)
    P = posterior.num_parameters
    params = [p for p in model.parameters()]
    with torch.no_grad():  # K + 1 distinct iterates: the ring buffer is full, the low-rank term on
        for _ in range(MAX_RANK + 1):
            for p in params:
                p.add_(torch.randn_like(p) * 1e-3)
            posterior.collect()
    gen = torch.Generator().manual_seed(0)
    vector = posterior.sample(generator=gen)
    times = {name: Series() for name in ("collect", "draw", "draw_diag", "write", "sample", "randn")}

    def sample_and_write():
        posterior.write(posterior.sample(generator=gen))

    ops = [
        ("collect", posterior.collect),
        ("draw", lambda: posterior.sample(generator=gen)),
        ("draw_diag", lambda: posterior.sample(diag_only=True, generator=gen)),
        ("write", lambda: posterior.write(vector)),
        ("sample", sample_and_write),
        ("randn", lambda: torch.randn(P, generator=gen)),
    ]
    gc.collect()
    gc.disable()
    try:
        for _name, fn in ops:  # warm-up
            fn()
        for r in range(repeats):
            for name, fn in ops if r % 2 == 0 else ops[::-1]:
                times[name].add(timed(fn), 1e3)
    finally:
        gc.enable()
    out = {"num_parameters": P, "max_rank": MAX_RANK, "repeats": repeats}
    for name, series in times.items():
        out[f"{name}_ms"] = series.spreads()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "swag_posterior.safetensors"
        out["save_ms_wall"] = round(timed(lambda: posterior.save(path))["wall"] * 1e3, 2)
        out["file_bytes"] = path.stat().st_size
        out["load_ms_wall"] = round(timed(lambda: SwagPosterior.load(path, model))["wall"] * 1e3, 2)
    out["state_bytes"] = posterior.state_nbytes()
    out["held_bytes"] = held_bytes(posterior, model)
    out["minimal_bytes"] = (MAX_RANK + 2) * P * BYTES_PER_NUMBER
    return out


# ------------------------------------------------------------------ SmolLM2 setting up
def data_dir(given: str | None) -> Path:
    for candidate in (given, os.environ.get("SWAG_LORA_DATA"), REPO.parent / "shared" / "data"):
        if candidate and Path(candidate, "arc-easy").is_dir():
            return Path(candidate)
    raise SystemExit("ARC-Easy not found: pass --data-dir or set SWAG_LORA_DATA (a folder holding arc-easy/)")


def load_smollm2(seed: int):
    from swag_lora.lm.loading import apply_lora, load_causal_lm
    from swag_lora.lm.multiple_choice import MultipleChoiceLM
    from swag_lora.lm.smollm2 import smollm2_path

    lm, tokenizer = load_causal_lm(str(smollm2_path()))
    torch.manual_seed(seed)
    model = MultipleChoiceLM(apply_lora(lm), tokenizer, mode="cloze", n_slots=5)
    return model, tokenizer


def arc_features(tokenizer, split: str, n: int, root: Path) -> list[dict]:
    from swag_lora.lm.encoding import encode_rows
    from swag_lora.tasks import load_task

    return encode_rows(list(load_task("arc-easy", split, data_dir=root, limit=n)), tokenizer, "cloze")


def swag_collector(posterior: SwagPosterior):
    """A function that collects as training does: ``SwagCallback.on_step_end`` with collection
    at every step (finite check included); the bare ``collect`` if the callback is unavailable."""
    try:
        from swag_lora.training.callbacks import SwagCallback
        from swag_lora.training.settings import SwagSettings

        callback = SwagCallback(
            posterior, SwagSettings(swag_start_step=0, collect_every_steps=1, max_rank=MAX_RANK)
        )
        args = SimpleNamespace(num_train_epochs=1, output_dir=tempfile.gettempdir())
        state = SimpleNamespace(global_step=0, max_steps=10**9, is_world_process_zero=True, log_history=[])
        control = SimpleNamespace()
        callback.on_train_begin(args, state, control)

        def collect():
            state.global_step += 1
            callback.on_step_end(args, state, control)

        before = posterior.n_collected
        collect()
        if posterior.n_collected != before + 1:
            raise RuntimeError("SwagCallback did not collect")
        return collect, "SwagCallback.on_step_end (collect_every_steps=1)"
    except Exception as err:  # the training module is being changed: measure the bare collection
        log(f"SwagCallback unusable ({type(err).__name__}: {err}); timing SwagPosterior.collect instead")
        posterior.collect()
        return posterior.collect, "SwagPosterior.collect"


# ------------------------------------------------------------------- training overhead
def bench_training(
    model,
    collator,
    features,
    n_batches: int,
    rounds: int,
    warmup: int,
    lr: float,
    deadline: float | None = None,
) -> tuple[dict, SwagPosterior]:
    """Optimizer steps with and without SWAG collection on the same batches, ABBA-interleaved."""
    batches = [collator(features[i * 8 : (i + 1) * 8]) for i in range(n_batches)]
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0)
    posterior = SwagPosterior(model, max_rank=MAX_RANK)
    # Time the bare SwagPosterior.collect inside the callback's collection too (an instance
    # attribute shadows the method; removed below).
    bare = Series()
    bare_collect = posterior.collect
    posterior.collect = lambda **kw: bare.add(timed(lambda: bare_collect(**kw)), 1e3)
    collect, path = swag_collector(posterior)
    in_loop = Series()
    bare.clear()
    model.train()

    def run_step(batch, with_swag: bool) -> None:
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if with_swag:
            in_loop.add(timed(collect), 1e3)

    for i in range(warmup):
        run_step(batches[i % len(batches)], with_swag=False)
    with_steps, without_steps, ratios = Series(), Series(), Series()
    gc.collect()
    plan = [(r, b) for r in range(rounds) for b in range(len(batches))]
    last_s = 0.0
    for r, b in plan:
        if out_of_time(deadline, len(ratios.values["cpu"]), last_s):
            log(f"train: time budget reached after {len(ratios.values['cpu'])} of {len(plan)} groups")
            break
        started = time.perf_counter()
        batch = batches[b]
        order = (True, False, False, True) if (r + b) % 2 == 0 else (False, True, True, False)
        group = {True: Series(), False: Series()}
        for with_swag in order:
            t = timed(lambda: run_step(batch, with_swag))  # noqa: B023 (called at once)
            group[with_swag].add(t)
            (with_steps if with_swag else without_steps).add(t, 1e3)
        ratios.add({c: group[True].total(c) / group[False].total(c) for c in CLOCKS})
        log(
            f"train round {r} batch {b} {tuple(batch['input_ids'].shape)}: ratio cpu "
            f"{ratios.values['cpu'][-1]:.4f} wall {ratios.values['wall'][-1]:.4f}"
        )
        last_s = time.perf_counter() - started
    del posterior.collect
    result = {
        "model": "SmolLM2-135M-Instruct + LoRA r=8 (q_proj, v_proj), cloze scoring, 5 choice slots",
        "num_parameters": posterior.num_parameters,
        "batch_size": 8,
        "batch_shapes": [list(b["input_ids"].shape) for b in batches],
        "optimizer": f"AdamW lr={lr} weight_decay=0",
        "collection": path,
        "design": "per batch: steps with (W) and without (O) collection in order WOOW or OWWO; "
        "ratio = (W1+W2)/(O1+O2); median over batches and rounds",
        "warmup_steps": warmup,
        "groups": len(ratios.values["cpu"]),
        "groups_planned": len(plan),
        "ratio": ratios.spreads(),
        "ratio_of_totals": {c: round(with_steps.total(c) / without_steps.total(c), 4) for c in CLOCKS},
        "step_ms_without": without_steps.spreads(1),
        "step_ms_with": with_steps.spreads(1),
        "collect_in_loop_ms": in_loop.spreads(3),
        "bare_collect_in_loop_ms": bare.spreads(3),
        "modelled_ratio": {c: round(1 + in_loop.median(c) / without_steps.median(c), 6) for c in CLOCKS},
    }
    return result, posterior


# ----------------------------------------------------------------------- BMA overhead
def bench_bma(
    model,
    collator,
    features,
    posterior: SwagPosterior,
    n_samples: int,
    reps: int,
    deadline: float | None = None,
) -> dict:
    """An S-sample SWAG evaluation (drawing included) against S MAP passes, interleaved."""
    from swag_lora.bayes.predictive import fixed_weights, member_log_probs, swag_samples
    from swag_lora.bayes.sampling import SamplingOptions

    map_vector = posterior.read()
    map_method = fixed_weights("map", posterior, map_vector)

    def swag_eval():
        method = swag_samples(posterior, SamplingOptions(n_samples=n_samples, scale=1.0, seed=0))
        return member_log_probs(model, features, collator, method, batch_size=8)

    def map_evals():
        return [
            member_log_probs(model, features, collator, map_method, batch_size=8) for _ in range(n_samples)
        ]

    member_log_probs(model, features, collator, map_method, batch_size=8)  # warm-up
    ratios, swag_times, map_times = Series(), Series(), Series()
    gc.collect()
    last_s = 0.0
    for r in range(reps):
        if out_of_time(deadline, r, last_s):
            log(f"bma: time budget reached after {r} of {reps} reps")
            break
        started = time.perf_counter()
        t = {}
        for name in ("swag", "map") if r % 2 == 0 else ("map", "swag"):
            t[name] = timed(swag_eval if name == "swag" else map_evals)
        swag_times.add(t["swag"])
        map_times.add(t["map"])
        ratios.add({c: t["swag"][c] / t["map"][c] for c in CLOCKS})
        log(
            f"bma rep {r}: S={n_samples} swag {t['swag']['cpu']:.2f}s cpu, {n_samples} x MAP "
            f"{t['map']['cpu']:.2f}s cpu, ratio cpu {ratios.values['cpu'][-1]:.4f} wall {ratios.values['wall'][-1]:.4f}"
        )
        last_s = time.perf_counter() - started
    draws = Series()
    gen = torch.Generator().manual_seed(1)
    for _ in range(20):
        draws.add(timed(lambda: posterior.sample(generator=gen)), 1e3)
    torch.testing.assert_close(posterior.read(), map_vector, rtol=0, atol=0)  # weights restored
    pass_ms = {c: map_times.median(c) / n_samples * 1e3 for c in CLOCKS}
    return {
        "n_samples": n_samples,
        "n_questions": len(features),
        "batch_size": 8,
        "design": "rep r: the S-sample evaluation (swag_samples + member_log_probs) and S "
        "member_log_probs passes with fixed_weights(MAP), order alternating; ratio per rep",
        "reps": len(ratios.values["cpu"]),
        "reps_planned": reps,
        "ratio": ratios.spreads(),
        "ratio_of_totals": {c: round(swag_times.total(c) / map_times.total(c), 4) for c in CLOCKS},
        "swag_eval_s": swag_times.spreads(2),
        "map_passes_s": map_times.spreads(2),
        "map_pass_ms": {c: round(v, 1) for c, v in pass_ms.items()},
        "draw_ms": draws.spreads(3),
        "modelled_ratio": {c: round(1 + draws.median(c) / pass_ms[c], 6) for c in CLOCKS},
    }


# ------------------------------------------------------------------- reference design
def reference_design_costs(model: nn.Module, posterior: SwagPosterior, repeats: int = 3) -> dict:
    """What two choices of the paper's code would cost here: a deep copy of the model at every
    collection, and saving the whole model (base weights included) with the posterior."""
    import copy

    times = Series()
    for _ in range(repeats):
        holder: list = []
        times.add(timed(lambda: holder.append(copy.deepcopy(model))), 1e3)  # noqa: B023
        holder.clear()
        gc.collect()
    model_bytes = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    return {
        "deepcopy_model_ms": {c: round(times.median(c), 1) for c in CLOCKS},
        "model_bytes": model_bytes,
        "posterior_state_bytes": posterior.state_nbytes(),
        "note": "per collection, a deep copy of the model costs deepcopy_model_ms against collect_ms here; "
        "a saved run holding the whole model costs model_bytes against the posterior file",
    }


# ------------------------------------------------------------------------------- demo
def time_demo(extra: list[str]) -> dict:
    """Wall time of ``swag-lora demo`` (the console script beside this Python, else on PATH)."""
    beside = Path(sys.executable).parent / "swag-lora"
    exe = str(beside) if beside.is_file() else shutil.which("swag-lora")
    if exe is None:
        return {
            "demo_seconds": None,
            "demo_status": "not run: no swag-lora command found (make setup installs it)",
        }
    command = [exe, "demo", *extra]
    log(f"running {' '.join(command)}")
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    except OSError as err:
        return {"demo_seconds": None, "demo_status": f"could not start {exe}: {err}"}
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
        return {
            "demo_seconds": None,
            "demo_status": f"failed with exit status {proc.returncode} after {seconds:.1f}s",
            "demo_error_tail": tail,
        }
    return {
        "demo_seconds": round(seconds, 1),
        "demo_status": "ok",
        "demo_command": " ".join(["swag-lora", *command[1:]]),
    }


# ------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats (under 5 minutes); never runs the demo"
    )
    parser.add_argument(
        "--demo", action="store_true", help="also time `swag-lora demo` (ignored with --quick)"
    )
    parser.add_argument("--demo-args", default="", help="extra arguments for `swag-lora demo`, one string")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "perf.json"))
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder holding arc-easy/ (default: $SWAG_LORA_DATA or ../shared/data)",
    )
    parser.add_argument(
        "--skip-model", action="store_true", help="posterior figures only (no SmolLM2 training/BMA)"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds: stop repeating the training and BMA comparisons (after at least 2 groups each) "
        "so the run ends within about this long (default: 240 with --quick, none otherwise)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    wall = time.perf_counter()
    torch.set_num_threads(args.threads)
    quick = args.quick
    budget = args.budget if args.budget is not None else (240.0 if quick else None)
    train_deadline = None if budget is None else wall + 0.55 * budget
    bma_deadline = None if budget is None else wall + 0.95 * budget
    cfg = {
        "micro_repeats": {"smollm2-135m": 100 if quick else 300, "llama-2-7b": 20 if quick else 60},
        "train_batches": 4 if quick else 8,
        "train_rounds": 1 if quick else 2,
        "train_warmup": 1 if quick else 2,
        "bma_samples": 4 if quick else 15,
        "bma_questions": 4 if quick else 8,
        "bma_reps": 4,
    }
    result: dict = {
        "command": " ".join(["bench/perf.py", *(argv if argv is not None else sys.argv[1:])]),
        "mode": "quick" if quick else "full",
        "torch_num_threads": torch.get_num_threads(),
        "headline_clock": "cpu" if torch.get_num_threads() == 1 else "wall",
        "clocks": "cpu: time.thread_time() of the thread running the work (with one torch thread, all "
        "of it); wall: time.perf_counter(). Headline figures use headline_clock; the others are "
        "suffixed with the other clock's name",
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "machine": {
            "cpu": cpu_name(),
            "logical_cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "settings": {**cfg, "budget_s": budget},
    }

    sizes = {}
    for label in SHAPES:
        log(f"posterior micro-benchmark, {label}-shaped LoRA")
        sizes[label] = bench_posterior(label, cfg["micro_repeats"][label])
    small, large = sizes["smollm2-135m"], sizes["llama-2-7b"]
    h = result["headline_clock"]
    other = "wall" if h == "cpu" else "cpu"
    result.update(
        num_parameters=small["num_parameters"],
        max_rank=MAX_RANK,
        collect_ms=small["collect_ms"][h]["median"],
        sample_ms=small["sample_ms"][h]["median"],
        randn_ms=small["randn_ms"][h]["median"],
        **{
            f"collect_ms_{other}": small["collect_ms"][other]["median"],
            f"sample_ms_{other}": small["sample_ms"][other]["median"],
        },
        num_parameters_large=large["num_parameters"],
        collect_ms_large=large["collect_ms"][h]["median"],
        sample_ms_large=large["sample_ms"][h]["median"],
        randn_ms_large=large["randn_ms"][h]["median"],
        posterior_bytes=small["state_bytes"],
        posterior_bytes_minimal=small["minimal_bytes"],
        posterior_bytes_ratio=round(small["state_bytes"] / small["minimal_bytes"], 6),
        posterior_held_bytes=small["held_bytes"],
        posterior_file_bytes=small["file_bytes"],
        posterior_file_bytes_ratio=round(small["file_bytes"] / small["minimal_bytes"], 6),
        posterior_bytes_large=large["state_bytes"],
        posterior_bytes_minimal_large=large["minimal_bytes"],
        posterior_file_bytes_large=large["file_bytes"],
    )

    if not args.skip_model:
        root = data_dir(args.data_dir)
        log("loading SmolLM2-135M-Instruct with LoRA")
        model, tokenizer = load_smollm2(args.seed)
        from swag_lora.lm.encoding import MultipleChoiceCollator

        collator = MultipleChoiceCollator(tokenizer.pad_token_id, model.n_slots)
        train_features = arc_features(tokenizer, "train", 8 * cfg["train_batches"], root)
        train, posterior = bench_training(
            model,
            collator,
            train_features,
            cfg["train_batches"],
            cfg["train_rounds"],
            cfg["train_warmup"],
            lr=1e-4,
            deadline=train_deadline,
        )
        step_ms = train["step_ms_without"][h]["median"]
        collect_in_loop = train["collect_in_loop_ms"][h]["median"]
        result.update(
            train_overhead_ratio=train["ratio"][h]["median"],
            train_overhead_ratio_spread=train["ratio"][h],
            **{
                f"train_overhead_ratio_{other}": train["ratio"][other]["median"],
                f"train_overhead_ratio_{other}_spread": train["ratio"][other],
            },
            train_step_ms=step_ms,
            train_collect_ms=collect_in_loop,
            train_bare_collect_ms=train["bare_collect_in_loop_ms"][h]["median"],
            train_collect_over_step=round(collect_in_loop / step_ms, 7),
            train_overhead_ratio_modelled=train["modelled_ratio"][h],
        )
        log("BMA evaluation overhead")
        eval_features = arc_features(tokenizer, "validation", cfg["bma_questions"], root)
        bma = bench_bma(
            model,
            collator,
            eval_features,
            posterior,
            cfg["bma_samples"],
            cfg["bma_reps"],
            deadline=bma_deadline,
        )
        draw_ms = bma["draw_ms"][h]["median"]
        result.update(
            bma_overhead_ratio=bma["ratio"][h]["median"],
            bma_overhead_ratio_spread=bma["ratio"][h],
            **{
                f"bma_overhead_ratio_{other}": bma["ratio"][other]["median"],
                f"bma_overhead_ratio_{other}_spread": bma["ratio"][other],
            },
            bma_draw_ms=draw_ms,
            bma_map_pass_ms=bma["map_pass_ms"][h],
            bma_draw_over_pass=round(draw_ms / bma["map_pass_ms"][h], 7),
            bma_overhead_ratio_modelled=bma["modelled_ratio"][h],
        )
        result["train"] = train
        result["bma"] = bma
        log("reference-design costs (deep copy per collection, whole-model save)")
        result["reference_design"] = reference_design_costs(model, posterior)

    if args.demo and not quick:
        result.update(time_demo(args.demo_args.split()))
    else:
        result.update(
            demo_seconds=None, demo_status="not run (" + ("--quick" if quick else "no --demo") + ")"
        )

    targets = {}
    for key, limit in TARGETS.items():
        value = result.get(key)
        targets[key] = {
            "value": value,
            "target": f"<= {limit}",
            "met": None if value is None else value <= limit,
        }
    result["targets"] = targets
    result["sizes"] = sizes
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    result["wall_seconds"] = round(time.perf_counter() - wall, 1)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    log(f"wrote {out} in {result['wall_seconds']} s")
    for key, t in targets.items():
        log(
            f"  {key} = {t['value']} (target {t['target']}): {'met' if t['met'] else 'NOT met' if t['met'] is False else 'n/a'}"
        )
    return result


if __name__ == "__main__":
    main()
