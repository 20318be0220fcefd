"""``swag-lora report``: a markdown report and PNG plots from saved evaluations."""

from __future__ import annotations

import argparse

from ..report.run_report import write_report

__all__ = ["parser", "run"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="swag-lora report", description="Markdown report + PNG plots from evaluations.")
    p.add_argument("paths", nargs="+", help="run directories, evaluation folders or metrics.json files")
    p.add_argument("--output_dir", default="report", help="folder for report.md and the PNGs")
    p.add_argument("--title", default="swag-lora report")
    return p


def run(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    path = write_report(args.paths, args.output_dir, args.title)
    print(f"report written to {path}")
    return 0
