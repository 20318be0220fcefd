"""``swag-lora generate RUN [RUN ...] --input FILE|-``: answers written by the model, with their uncertainty.

Answers go to ``--output`` or standard output, one JSON object per input line (see
:class:`~swag_lora.generation.answers.GeneratedAnswer`); the settings and, for inputs with
reference answers, accuracy and the AUROC, PRR and AURC of every uncertainty score go to standard
error (and to ``--summary`` as JSON).
"""

from __future__ import annotations

import argparse

from ..errors import UsageError
from ..generation.answers import MODES
from ..generation.generator import generate
from ..generation.members import GENERATION_METHODS
from .answers_output import add_output_options, write_answers

__all__ = ["describe", "parser", "run"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="swag-lora generate",
        description="Answers written by a run's model, with their uncertainty (ensemble decoding or "
                    "sample-then-decode over posterior members).",
    )
    p.add_argument("runs", nargs="+", help="run directory written by `swag-lora train` (several for ensemble and "
                                           "multiswag)")
    p.add_argument("--input", required=True,
                   help="JSON lines {prompt, answers?, id?} or {question, choices?, answers?, id?} (or .json, .csv, "
                        ".tsv, .parquet); - reads JSON lines from standard input")
    p.add_argument("--output", default=None, help="write the JSON lines here instead of standard output")
    p.add_argument("--mode", default="ensemble", choices=MODES,
                   help="ensemble: decode from the members' averaged next-token distribution; sample: each member "
                        "writes its own answer, answers grouped by meaning")
    p.add_argument("--method", default="swag", choices=GENERATION_METHODS)
    p.add_argument("--n_samples", type=int, default=10, help="S, members (swag methods, mc-dropout)")
    p.add_argument("--scale", type=float, default=1.0, help="SWAG covariance scale")
    p.add_argument("--seed", type=int, default=0, help="seed of the members (and of sampled decoding)")
    p.add_argument("--dropout", type=float, default=None, help="mc-dropout rate (default: the LoRA layers' own)")
    p.add_argument("--max_new_tokens", type=int, default=32)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--do_sample", action="store_true", help="sample tokens instead of greedy decoding")
    p.add_argument("--temperature", type=float, default=1.0, help="temperature of sampled decoding")
    p.add_argument("--no_newline_stop", action="store_true", help="do not end an answer at a newline")
    p.add_argument("--no_tokens", action="store_true", help="leave the per-token detail out of the output")
    add_output_options(p, "settings, quality")
    return p


def describe(summary: dict) -> str:
    """The summary as a few lines for people."""
    members = f"{summary['members']} member{'s' if summary['members'] != 1 else ''}"
    lines = [f"{summary['n_inputs']} answers, method {summary['method']} ({members}), mode {summary['mode']}"]
    quality = summary.get("quality") or {}
    if quality.get("n"):
        lines.append(f"on the {quality['n']} inputs with references: exact match {quality['accuracy']:.3f}, "
                     f"F1 {quality['f1']:.3f}")
        lines.append("  score                AUROC    PRR   PRR50   AURC")
        fmt = lambda v: "    –" if v is None else f"{v:6.3f}"  # noqa: E731
        for name, q in quality["scores"].items():
            lines.append(f"  {name:<19} {fmt(q['auroc'])} {fmt(q['prr'])} {fmt(q['prr_50'])} {fmt(q['aurc'])}")
    return "\n".join(lines)


def run(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.n_samples < 1:
        raise UsageError("--n_samples must be at least 1")
    if args.max_new_tokens < 1:
        raise UsageError("--max_new_tokens must be at least 1")
    result = generate(
        args.runs, args.input, method=args.method, mode=args.mode, n_samples=args.n_samples, scale=args.scale,
        seed=args.seed, dropout=args.dropout, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
        do_sample=args.do_sample, temperature=args.temperature, stop_at_newline=not args.no_newline_stop,
        progress=not args.no_progress, allow_base_mismatch=args.allow_base_mismatch,
    )
    write_answers([a.to_dict(with_tokens=not args.no_tokens) for a in result.answers], args.output, result.summary,
                  args.summary, describe(result.summary))
    return 0
