"""``swag-lora evaluate``: every requested method of one or more runs on in-distribution and
OOD data, in one protocol; prints the results table and writes each evaluation's files.

Under ``torchrun`` or ``accelerate launch`` the questions are split across processes.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path

from .. import distributed as D
from ..bayes.fitting import DEFAULT_SCALE_GRID
from ..bayes.laplace import DEFAULT_PRIOR_GRID, PRIOR_METHODS, LaplaceOptions
from ..bayes.registry import METHODS, MethodUnavailableError, unavailable_reason
from ..bayes.sampling import SamplingOptions
from ..bayes.tfb import TFB_METRICS, TfbOptions
from ..errors import UsageError
from ..evaluation.data import EvalSpec, prepare_data
from ..evaluation.harness import evaluate_methods, make_context
from ..evaluation.sample_study import STUDY_FOLDER, run_sample_study, write_sample_study
from ..metrics import DEFAULT_ECE_BINS
from ..report.tables import summary_table
from ..runs.layout import EVAL_DIR
from ..runs.load import attach_run, check_run_quantization, load_run, read_run_config
from ..runs.lock import lock_folder_for, run_lock
from ..tasks.locate import DataDirs
from .quantization import add_quantization_flags, requested_quantization

__all__ = ["DEFAULT_METHODS", "HelpFormatter", "parser", "run"]

# --methods by default, by how the first run was trained
DEFAULT_METHODS = {"swag": ["map", "swa", "swag"], "blob": ["map", "blob", "blob-mean"], "ivon": ["map", "ivon", "ivon-mean"]}
_DEFAULTS_TEXT = "; ".join(f"{kind} runs: {' '.join(names)}" for kind, names in DEFAULT_METHODS.items())


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the epilog's layout and shows every option's default."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="swag-lora evaluate",
        description="Evaluate methods of run directories on in-distribution and OOD tasks, all in one protocol.",
        formatter_class=HelpFormatter,
        epilog="methods:\n" + "\n".join(f"  {n:<12} {e.summary}{' (all runs together)' if e.multi_run else ''}"
                                       for n, e in METHODS.items()),
    )
    p.add_argument("runs", nargs="+", help="run directories written by `swag-lora train`")
    p.add_argument("--methods", nargs="+", default=None,
                   help=f"methods ({', '.join(METHODS)}); default: map and the first run's own posterior "
                        f"({_DEFAULTS_TEXT})")
    p.add_argument("--tasks", nargs="+", default=None,
                   help="data as TASK[:SPLIT[:LIMIT]] (default: the training task's test split); OOD when the "
                        "task is not the training task")
    p.add_argument("--ood_tasks", nargs="*", default=[],
                   help="out-of-distribution data, TASK[:SPLIT[:LIMIT]]: scored against the first in-distribution "
                        "dataset (AUROC/AUPR in its metrics.json)")
    p.add_argument("--limit", type=int, default=None, help="default question limit per dataset (seeded subset)")
    p.add_argument("--n_samples", type=int, default=10, help="S: samples / passes per run for sampling methods")
    p.add_argument("--scale", type=float, default=1.0, help="SWAG covariance scale")
    p.add_argument("--antithetic", action="store_true", help="SWAG draws in antithetic pairs θ̄ ± δ (even S)")
    p.add_argument("--scale_grid", type=float, nargs="+", default=list(DEFAULT_SCALE_GRID),
                   help="scales tried by swag-tuned on validation NLL (same draws for every scale)")
    p.add_argument("--dropout", type=float, default=None,
                   help="mc-dropout rate (default: the run's LoRA dropout)")
    p.add_argument("--temperature", action="store_true",
                   help="also evaluate every method with a temperature fitted on validation NLL (METHOD+ts)")
    p.add_argument("--laplace_prior", choices=PRIOR_METHODS, default="marglik",
                   help="Laplace prior precision: marginal likelihood or validation NLL over --laplace_prior_grid")
    p.add_argument("--laplace_prior_grid", type=float, nargs="+", default=list(DEFAULT_PRIOR_GRID))
    p.add_argument("--laplace_samples", type=int, default=100, help="logit draws per question of the Laplace predictive")
    p.add_argument("--tfb_metric", choices=TFB_METRICS, default=TfbOptions.metric,
                   help="TFB: what may change on the validation split, labelled with MAP's own predictions: the "
                        "fraction of flipped predictions (accuracy) or the relative NLL change (nll)")
    p.add_argument("--tfb_tolerance", type=float, default=None,
                   help="TFB: the largest change allowed (default 0.01 for accuracy, 0.003 for nll)")
    p.add_argument("--tfb_max_sigma", type=float, default=TfbOptions.max_sigma, help="TFB: upper end of the σ search")
    p.add_argument("--tfb_iterations", type=int, default=TfbOptions.iterations, help="TFB: bisection steps")
    p.add_argument("--fit_limit", type=int, default=None,
                   help="training questions for the Laplace curvature (default: the run's training split)")
    p.add_argument("--seed", type=int, default=0, help="seed of the posterior samples (fixed across datasets)")
    p.add_argument("--sample_study", action="store_true",
                   help="also run the sample-count study (NLL/ECE against S, i.i.d. vs antithetic) on SWAG")
    p.add_argument("--study_max_samples", type=int, default=30)
    p.add_argument("--study_replicates", type=int, default=3)
    p.add_argument("--ece_bins", type=int, default=DEFAULT_ECE_BINS)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--data_dir", nargs="+", default=None,
                   help="local data: DIR (a data root or a task folder, for every task: replaces the run's "
                        "recorded folders) and/or TASK=DIR pairs (one task each, added to the run's). Each task "
                        "is looked for on its own: its pair, DIR, the data root beside DIR when DIR is another "
                        "task's folder, $SWAG_LORA_DATA, else the hub (default: the folders the run recorded)")
    p.add_argument("--subset_seed", type=int, default=0, help="seed of the test subsets (same for every run)")
    p.add_argument("--output_dir", default=None,
                   help="where results go: with one run, all of them (default RUN/eval); with several runs, the "
                        "multi-run methods' (single-run methods always write to RUN/eval)")
    p.add_argument("--resume", action="store_true",
                   help="go on after an interrupted evaluate: every method and dataset already written in the "
                        "result folders for the same run (its run_config.json), questions, method settings and "
                        "sampling is read back instead of computed")
    p.add_argument("--allow_base_mismatch", action="store_true",
                   help="go on (with a warning) when the base model's weights differ from the ones a run recorded")
    p.add_argument("--no_progress", action="store_true", help="no progress bars (a line per method and dataset "
                   "is printed either way)")
    add_quantization_flags(p)
    return p


def _check(args) -> None:
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        raise UsageError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    if args.n_samples < 1:
        raise UsageError("--n_samples must be at least 1")
    if args.antithetic and args.n_samples % 2:
        raise UsageError(f"--antithetic draws pairs: --n_samples must be even, got {args.n_samples}")
    if args.ece_bins < 1:
        raise UsageError("--ece_bins must be at least 1")
    multi = [m for m in args.methods if METHODS[m].multi_run]
    if multi and len(args.runs) > 1 and not args.output_dir:
        raise UsageError(f"{', '.join(multi)} combine{'s' if len(multi) == 1 else ''} several runs: "
                         "give --output_dir for their results")


def _log(line: str) -> None:
    print(f"[evaluate] {line}", file=sys.stderr, flush=True)


def run(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    configs = {path: read_run_config(path) for path in args.runs}  # a missing or unfinished run stops here
    if args.methods is None:
        args.methods = DEFAULT_METHODS[configs[args.runs[0]].trained_with]
    _check(args)
    for name in args.methods:  # from the run configs, before any model is loaded
        for path in args.runs:  # single-run methods run on every run, multi-run ones over all
            reason = unavailable_reason(name, configs[path].trained_with, f"run {path}")
            if reason is not None:
                raise MethodUnavailableError(reason)
    device = D.init_from_env()  # under torchrun / accelerate launch: questions split across processes
    with ExitStack() as locks:
        if D.is_main_process():  # every folder results go to: writable, and ours alone, before any work
            for root in _result_roots(args):
                locks.enter_context(run_lock(lock_folder_for(root), "swag-lora evaluate"))
        return _evaluate(args, device)


def _result_roots(args) -> list[Path]:
    if args.output_dir and len(args.runs) == 1:
        return [Path(args.output_dir)]
    roots = [Path(r) / EVAL_DIR for r in args.runs]
    return roots + ([Path(args.output_dir)] if args.output_dir else [])


def _evaluate(args, device) -> int:
    quantization = requested_quantization(args)
    host = load_run(args.runs[0], device=device, allow_base_mismatch=args.allow_base_mismatch,
                    quantization=quantization)
    runs = [host] + [attach_run(r, host, args.allow_base_mismatch) for r in args.runs[1:]]
    for run in runs[1:]:
        check_run_quantization(run.config, quantization, f"run {run.path}")
    train_tasks = {r.config.data.task for r in runs}
    multi = [m for m in args.methods if METHODS[m].multi_run]
    single = [m for m in args.methods if not METHODS[m].multi_run]
    if multi and len(train_tasks) > 1:
        raise UsageError(f"{', '.join(multi)} need runs trained on one task; these were trained on "
                         f"{', '.join(sorted(train_tasks))}")
    sampling = SamplingOptions(n_samples=args.n_samples, scale=args.scale, seed=args.seed, antithetic=args.antithetic)
    settings = dict(
        sampling=sampling, dropout=args.dropout, scale_grid=tuple(args.scale_grid), batch_size=args.batch_size,
        progress=not args.no_progress, fit_limit=args.fit_limit,
        laplace=LaplaceOptions(prior=args.laplace_prior, prior_grid=tuple(args.laplace_prior_grid),
                               n_samples=args.laplace_samples),
        tfb=TfbOptions(metric=args.tfb_metric, tolerance=args.tfb_tolerance, max_sigma=args.tfb_max_sigma,
                       iterations=args.tfb_iterations),
    )

    def specs_for(run):
        specs = [EvalSpec.parse(t) for t in (args.tasks or [f"{run.config.data.task}:test"])]
        specs += [EvalSpec.parse(t, ood=True) for t in args.ood_tasks]
        for spec in specs:
            spec.limit = spec.limit if spec.limit is not None else args.limit
            recorded = DataDirs.parse(run.config.data.data_dir).pinned(run.config.data.task)
            spec.data_dir = DataDirs.parse(args.data_dir).merged_over(recorded)
            spec.subset_seed = args.subset_seed
        return specs

    def single_root(run) -> Path:
        return Path(args.output_dir) if args.output_dir and len(runs) == 1 else run.path / EVAL_DIR

    records, studies = [], []
    for run in runs:
        datas = [prepare_data(run, spec) for spec in specs_for(run)]
        if single:
            ctx = make_context([run], **settings)
            records += evaluate_methods(ctx, datas, single, single_root(run), args.ece_bins, args.temperature, _log,
                                        resume=args.resume)
        if args.sample_study:
            for data in (d for d in datas if not d.ood):
                study, arrays = run_sample_study(
                    run, data, args.study_max_samples, args.study_replicates, args.scale, args.seed,
                    ece_bins=args.ece_bins, batch_size=args.batch_size, progress=not args.no_progress,
                    saved_root=single_root(run))
                studies.append(write_sample_study(single_root(run) / data.task / data.split / STUDY_FOLDER,
                                                  study, arrays))
    if multi:
        ctx = make_context(runs, saved_roots={str(r.path): single_root(r) for r in runs}, **settings)
        root = Path(args.output_dir) if args.output_dir else host.path / EVAL_DIR
        datas = [prepare_data(host, spec) for spec in specs_for(host)]
        records += evaluate_methods(ctx, datas, multi, root, args.ece_bins, args.temperature, _log,
                                    resume=args.resume)
    if D.is_main_process():
        print(summary_table(records))
        for path in studies:
            print(f"sample study written to {path}")
    return 0
