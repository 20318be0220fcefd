"""The calibration benchmark (issue: evidence): train and evaluate the grid of
``bench/calibration.yaml``, skipping what is done, and write ``bench/results/calibration.json``;
``report`` regenerates ``docs/results.md`` and its plots from the results alone.

    .venv/bin/python bench/calibration.py run                  # all of it, resumable
    .venv/bin/python bench/calibration.py run --tasks obqa --hours 2
    .venv/bin/python bench/calibration.py status               # what is done, what is left, ETA
    .venv/bin/python bench/calibration.py report               # docs/results.md + docs/img/
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train and evaluate every unit not yet done")
    run.add_argument("--config", default=str(ROOT / "bench" / "calibration.yaml"))
    run.add_argument("--work", default=str(ROOT / "runs" / "calibration"), help="run directories and evaluations")
    run.add_argument("--results", default=str(ROOT / "bench" / "results"))
    run.add_argument("--tasks", nargs="+", default=None, help="only these tasks of the config")
    run.add_argument("--hours", type=float, default=None, help="start no new unit after this many hours")
    run.add_argument("--parts", nargs="+", choices=["study", "grid"], default=["study", "grid"],
                     help="the SWAG-exploration study's units, the grid's, or both (study first)")
    status = sub.add_parser("status", help="list the grid's units, done or to do, with times and what is left")
    status.add_argument("--config", default=str(ROOT / "bench" / "calibration.yaml"))
    status.add_argument("--work", default=str(ROOT / "runs" / "calibration"), help="run directories and evaluations")
    report = sub.add_parser("report", help="write docs/results.md and its plots from the results")
    report.add_argument("--config", default=str(ROOT / "bench" / "calibration.yaml"))
    report.add_argument("--results", default=str(ROOT / "bench" / "results"))
    report.add_argument("--work", default=str(ROOT / "runs" / "calibration"),
                        help="for the tuning tables and unit times, when present")
    report.add_argument("--out", default=str(ROOT / "docs" / "results.md"))
    args = p.parse_args(argv)

    from swag_lora.benchmark import BenchConfig, BenchConfigError, Driver
    from swag_lora.benchmark.report import write_results_report

    try:
        config = BenchConfig.load(args.config)
        if args.command == "run":
            deadline = time.time() + 3600 * args.hours if args.hours else None
            driver = Driver(config, args.work, args.results, log=lambda s: print(s, flush=True))
            ran = driver.run(args.tasks, deadline, tuple(args.parts))
            print(f"[bench] {len(ran)} unit(s) run; results in {args.results}", flush=True)
        elif args.command == "status":
            from swag_lora.benchmark.progress import grid_status, status_table

            print(status_table(grid_status(Driver(config, args.work, None, log=lambda s: None))))
        else:
            path = write_results_report(config, args.results, args.out, work=args.work)
            print(f"report written to {path}")
    except BenchConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
