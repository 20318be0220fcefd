"""``swag-lora``: train | evaluate | report | demo | predict.

``train`` parses its flags with ``transformers.HfArgumentParser`` over the model, data,
LoRA and SWAG arguments and the full ``TrainingArguments``, so every Trainer flag works;
a YAML or JSON file given first (or as ``--config FILE``) supplies values that later flags
override. Errors a user can make end with one line on stderr and exit status 2; set
``SWAG_LORA_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from . import __version__

EXIT_USAGE = 2


class UserError(Exception):
    """An error in what the user asked for; printed as one line, no traceback."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from .experiment import RunError
    from .posterior import PosteriorFileError, PosteriorMismatchError
    from .tasks import DataFormatError, DataNotFoundError, UnknownTaskError
    from .training import TrainingDivergedError

    return (UserError, RunError, PosteriorFileError, PosteriorMismatchError, DataFormatError, DataNotFoundError,
            TrainingDivergedError, UnknownTaskError, FileNotFoundError, NotADirectoryError, PermissionError, ModuleNotFoundError, ValueError,
            OSError)


# --------------------------------------------------------------------------- train
def _train_parser():
    from transformers import HfArgumentParser, TrainingArguments

    from .config import TRAINING_DEFAULTS, DataArguments, LoraArguments, ModelArguments, SwagArguments

    parser = HfArgumentParser(
        (ModelArguments, DataArguments, LoraArguments, SwagArguments, TrainingArguments),
        prog="swag-lora train",
        description="Fine-tune with LoRA and collect a SWAG posterior; writes a run directory (--output_dir).",
    )
    parser.set_defaults(**TRAINING_DEFAULTS)
    return parser


def cmd_train(argv: list[str]) -> int:
    from .config import config_to_argv, load_config_file
    from .experiment import train_run

    argv = list(argv)
    if argv and not argv[0].startswith("-") and argv[0].endswith((".yaml", ".yml", ".json")):
        argv = config_to_argv(load_config_file(argv[0])) + argv[1:]
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            raise UserError("--config needs a file path")
        argv = config_to_argv(load_config_file(argv[i + 1])) + argv[:i] + argv[i + 2 :]
    parser = _train_parser()
    try:
        model_args, data_args, lora_args, swag_args, training_args = parser.parse_args_into_dataclasses(argv)
    except ValueError as err:  # TrainingArguments' own validation
        raise UserError(str(err)) from err
    if training_args.remove_unused_columns:
        training_args.remove_unused_columns = False  # batches carry fields the model's signature does not name
    if os.path.isdir(training_args.output_dir) and os.listdir(training_args.output_dir) and not (
        training_args.resume_from_checkpoint or getattr(training_args, "overwrite_output_dir", False)
    ):
        raise UserError(
            f"output directory {training_args.output_dir} is not empty: pass --resume_from_checkpoint true "
            "to continue it, --overwrite_output_dir true to reuse it, or choose another --output_dir"
        )
    # --resume_from_checkpoint true: SwagTrainer.train picks the newest *complete* checkpoint
    run_dir = train_run(model_args, data_args, lora_args, swag_args, training_args)
    print(f"run written to {run_dir}")
    return 0


# ------------------------------------------------------------------------ evaluate
def _evaluate_parser() -> argparse.ArgumentParser:
    from .laplace_lora import DEFAULT_PRIOR_GRID, PRIOR_METHODS
    from .methods import DEFAULT_SCALE_GRID, METHODS
    from .metrics import DEFAULT_ECE_BINS

    p = argparse.ArgumentParser(
        prog="swag-lora evaluate",
        description="Evaluate methods of run directories on in-distribution and OOD tasks, all in one protocol.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="methods:\n" + "\n".join(f"  {n:<12} {e.summary}{' (all runs together)' if e.multi_run else ''}"
                                       for n, e in METHODS.items()),
    )
    p.add_argument("runs", nargs="+", help="run directories written by `swag-lora train`")
    p.add_argument("--methods", nargs="+", default=["map", "swa", "swag"], help=f"methods ({', '.join(METHODS)})")
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
    p.add_argument("--fit_limit", type=int, default=None,
                   help="training questions for the Laplace curvature (default: the run's training split)")
    p.add_argument("--seed", type=int, default=0, help="seed of the posterior samples (fixed across datasets)")
    p.add_argument("--sample_study", action="store_true",
                   help="also run the sample-count study (NLL/ECE against S, i.i.d. vs antithetic) on SWAG")
    p.add_argument("--study_max_samples", type=int, default=30)
    p.add_argument("--study_replicates", type=int, default=3)
    p.add_argument("--ece_bins", type=int, default=DEFAULT_ECE_BINS)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--data_dir", default=None, help="local data folder (default $SWAG_LORA_DATA, else hub)")
    p.add_argument("--subset_seed", type=int, default=0, help="seed of the test subsets (same for every run)")
    p.add_argument("--output_dir", default=None,
                   help="where results go: with one run, all of them (default RUN/eval); with several runs, the "
                        "multi-run methods' (single-run methods always write to RUN/eval)")
    p.add_argument("--no_progress", action="store_true", help="no progress bars")
    return p


def _check_evaluate_args(args) -> None:
    from .methods import METHODS

    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        raise UserError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    if args.n_samples < 1:
        raise UserError("--n_samples must be at least 1")
    if args.antithetic and args.n_samples % 2:
        raise UserError(f"--antithetic draws pairs: --n_samples must be even, got {args.n_samples}")
    if args.ece_bins < 1:
        raise UserError("--ece_bins must be at least 1")
    multi = [m for m in args.methods if METHODS[m].multi_run]
    if multi and len(args.runs) > 1 and not args.output_dir:
        raise UserError(f"{', '.join(multi)} combine{'s' if len(multi) == 1 else ''} several runs: "
                        "give --output_dir for their results")


def cmd_evaluate(argv: list[str]) -> int:
    from pathlib import Path

    from . import distributed as D
    from .evaluation import evaluate_methods, make_context, prepare_data
    from .experiment import EvalSpec, attach_run, load_run
    from .laplace_lora import LaplaceOptions
    from .methods import METHODS
    from .report import summary_table
    from .sample_study import STUDY_FOLDER, run_sample_study, write_sample_study

    args = _evaluate_parser().parse_args(argv)
    _check_evaluate_args(args)
    device = D.init_from_env()  # under torchrun / accelerate launch: questions split across processes
    host = load_run(args.runs[0], device=device)
    runs = [host] + [attach_run(r, host) for r in args.runs[1:]]
    train_tasks = {r.config["data"]["task"] for r in runs}
    multi = [m for m in args.methods if METHODS[m].multi_run]
    single = [m for m in args.methods if not METHODS[m].multi_run]
    if multi and len(train_tasks) > 1:
        raise UserError(f"{', '.join(multi)} need runs trained on one task; these were trained on "
                        f"{', '.join(sorted(train_tasks))}")
    settings = dict(
        n_samples=args.n_samples, scale=args.scale, seed=args.seed, antithetic=args.antithetic, dropout=args.dropout,
        scale_grid=tuple(args.scale_grid), batch_size=args.batch_size, progress=not args.no_progress,
        fit_limit=args.fit_limit,
        laplace=LaplaceOptions(prior=args.laplace_prior, prior_grid=tuple(args.laplace_prior_grid),
                               n_samples=args.laplace_samples),
    )

    def specs_for(run):
        specs = [EvalSpec.parse(t) for t in (args.tasks or [f"{run.config['data']['task']}:test"])]
        specs += [EvalSpec.parse(t, ood=True) for t in args.ood_tasks]
        for spec in specs:
            spec.limit = spec.limit if spec.limit is not None else args.limit
            spec.data_dir = args.data_dir or run.config["data"].get("data_dir")
            spec.subset_seed = args.subset_seed
        return specs

    def single_root(run) -> Path:
        return Path(args.output_dir) if args.output_dir and len(runs) == 1 else run.path / "eval"

    records, studies = [], []
    for run in runs:
        datas = [prepare_data(run, spec) for spec in specs_for(run)]
        if single:
            ctx = make_context([run], **settings)
            records += evaluate_methods(ctx, datas, single, single_root(run), args.ece_bins, args.temperature)
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
        root = Path(args.output_dir) if args.output_dir else host.path / "eval"
        datas = [prepare_data(host, spec) for spec in specs_for(host)]
        records += evaluate_methods(ctx, datas, multi, root, args.ece_bins, args.temperature)
    if D.is_main_process():
        print(summary_table(records))
        for path in studies:
            print(f"sample study written to {path}")
    return 0


# -------------------------------------------------------------------------- report
def cmd_report(argv: list[str]) -> int:
    from .report import write_report

    p = argparse.ArgumentParser(prog="swag-lora report", description="Markdown report + PNG plots from evaluations.")
    p.add_argument("paths", nargs="+", help="run directories, evaluation folders or metrics.json files")
    p.add_argument("--output_dir", default="report", help="folder for report.md and the PNGs")
    p.add_argument("--title", default="swag-lora report")
    args = p.parse_args(argv)
    path = write_report(args.paths, args.output_dir, args.title)
    print(f"report written to {path}")
    return 0


# ---------------------------------------------------------------------------- demo
def cmd_demo(argv: list[str]) -> int:
    from .demo import demo_parser, run_demo

    args = demo_parser().parse_args(argv)
    started = time.time()
    run_demo(args)
    print(f"demo finished in {time.time() - started:.0f} s")
    return 0


def cmd_predict(argv: list[str]) -> int:
    from .cli_predict import cmd_predict as predict_command

    return predict_command(argv)


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "report": cmd_report, "demo": cmd_demo,
            "predict": cmd_predict}


def _quiet_library_warnings() -> None:
    """Silence deprecation chatter from libraries that users cannot act on."""
    import warnings

    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*is deprecated", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*pin_memory.*no accelerator is found", category=UserWarning)


def main(argv: list[str] | None = None) -> int:
    _quiet_library_warnings()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: swag-lora {{{','.join(COMMANDS)}}} [options]   (swag-lora COMMAND --help for each)\n"
              f"swag-lora {__version__}: Bayesian LoRA fine-tuning of causal LMs with SWAG.")
        return 0 if argv else EXIT_USAGE
    if argv[0] == "--version":
        print(__version__)
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"swag-lora: error: unknown command {command!r}; choose from {', '.join(COMMANDS)}", file=sys.stderr)
        return EXIT_USAGE
    if os.environ.get("SWAG_LORA_DEBUG"):
        return COMMANDS[command](rest)
    try:
        return COMMANDS[command](rest)
    except _user_errors() as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"swag-lora {command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"swag-lora {command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
