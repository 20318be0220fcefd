"""``swag-lora predict RUN_DIR --input FILE|-``: JSON lines of predictions with their uncertainty.

Predictions go to ``--output`` or standard output, one JSON object per input line (see
:class:`~swag_lora.prediction.predictor.Prediction`); the settings, and with a threshold its coverage and
accuracy on validation data, go to standard error (and to ``--summary`` as JSON).
"""

from __future__ import annotations

import argparse

from ..bayes.registry import BASE_METHODS
from ..errors import UsageError
from ..prediction.predictor import predict
from .answers_output import add_output_options, write_answers
from .quantization import add_quantization_flags, requested_quantization

__all__ = ["describe", "parser", "run"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="swag-lora predict",
        description="Averaged answer probabilities, the predicted answer and its uncertainty for each input.",
    )
    p.add_argument("run", help="run directory written by `swag-lora train`")
    p.add_argument("--input", required=True,
                   help="JSON lines {question, choices, id?} (a custom task's run: its columns, any format it reads); "
                        "- reads JSON lines from standard input")
    p.add_argument("--output", default=None, help="write the JSON lines here instead of standard output")
    p.add_argument("--method", default=None, choices=BASE_METHODS,
                   help="default: the run's own posterior (swag, blob or ivon, as it was trained)")
    p.add_argument("--n_samples", type=int, default=10, help="S, posterior samples (swag methods)")
    p.add_argument("--scale", type=float, default=1.0, help="SWAG covariance scale")
    p.add_argument("--seed", type=int, default=0, help="seed of the posterior samples, drawn once per call")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--min_confidence", type=float, default=None,
                   help="abstain unless the confidence (max probability) is at least this")
    p.add_argument("--max_mutual_information", type=float, default=None,
                   help="abstain unless the mutual information (nats) is at most this")
    p.add_argument("--validation", default=None,
                   help="labelled data to report the threshold on, TASK[:SPLIT[:LIMIT]] (default: the run's validation split)")
    add_output_options(p, "settings, threshold report")
    add_quantization_flags(p)
    return p


def describe(summary: dict) -> str:
    """The summary as a few lines for people."""
    settings = f"method {summary['method']}"
    if summary.get("n_samples", 1) > 1 or summary["method"].startswith("swag"):
        settings += f" (S={summary['n_samples']}, scale {summary.get('scale', 1.0):g}, seed {summary.get('seed')})"
    lines = [f"{summary['n_inputs']} predictions, {settings}, run {summary['run']}"]
    report = summary.get("threshold")
    if report:
        rule = " and ".join(
            t for t in (
                f"confidence >= {report['min_confidence']:g}" if report["min_confidence"] is not None else "",
                f"mutual information <= {report['max_mutual_information']:g}"
                if report["max_mutual_information"] is not None else "",
            ) if t
        )
        data = report.get("data", {})
        where = f"{data.get('task', 'validation')}/{data.get('split', '')}".rstrip("/")
        accuracy = "–" if report["accuracy"] is None else f"{report['accuracy']:.3f}"
        lines.append(f"answering only when {rule}: abstained on {summary['abstained']} of {summary['n_inputs']} inputs")
        lines.append(f"on {where} ({report['n']} questions) this threshold answers {report['coverage']:.1%} "
                     f"({report['answered']}) with accuracy {accuracy}; answering all: {report['accuracy_all']:.3f}")
        lines.append("thresholds that reach other coverages on the same data:")
        lines.append("  coverage  min_confidence  accuracy")
        for r in _distinct(report["by_coverage"], "min_confidence"):
            lines.append(f"  {r['coverage']:8.1%}  {r['min_confidence']:14.4f}  {r['accuracy']:8.3f}")
        if "by_coverage_mutual_information" in report:
            lines.append("  coverage  max_mutual_information  accuracy")
            for r in _distinct(report["by_coverage_mutual_information"], "max_mutual_information"):
                lines.append(f"  {r['coverage']:8.1%}  {r['max_mutual_information']:22.6g}  {r['accuracy']:8.3f}")
    return "\n".join(lines)


def _distinct(rows: list[dict], key: str) -> list[dict]:
    """Rows of a threshold table, each threshold once (small data reach one coverage many ways)."""
    out: list[dict] = []
    for row in rows:
        if not out or row[key] != out[-1][key]:
            out.append(row)
    return out


def run(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.n_samples < 1:
        raise UsageError("--n_samples must be at least 1")
    if args.min_confidence is not None and not 0.0 <= args.min_confidence <= 1.0:
        raise UsageError("--min_confidence must be between 0 and 1")
    if args.max_mutual_information is not None and args.max_mutual_information < 0:
        raise UsageError("--max_mutual_information must be at least 0")
    result = predict(
        args.run, args.input, method=args.method, n_samples=args.n_samples, scale=args.scale, seed=args.seed,
        batch_size=args.batch_size, min_confidence=args.min_confidence,
        max_mutual_information=args.max_mutual_information, validation=args.validation,
        progress=not args.no_progress, allow_base_mismatch=args.allow_base_mismatch,
        quantization=requested_quantization(args),
    )
    write_answers([p.to_dict() for p in result.predictions], args.output, result.summary, args.summary,
                  describe(result.summary))
    return 0
