"""``python -m swag_lora.tasks``: a markdown table of every task's splits as they load here.

Usage: ``python -m swag_lora.tasks [--data-dir DIR] [--source auto|local|hub] [TASK ...]``.
A split that cannot be loaded is listed with the reason.
"""

from __future__ import annotations

import argparse
import sys

from .errors import DataFormatError, DataNotFoundError
from .loading import SOURCES, load_task
from .registry import SPLITS, list_tasks


def split_table(tasks, data_dir=None, source: str = "auto") -> list[str]:
    """Markdown lines: one row per task and split, with size, source and rule."""
    lines = ["| task | split | size | source | rule |", "|---|---|---|---|---|"]
    for task in tasks:
        for split in SPLITS:
            try:
                loaded = load_task(task, split, data_dir, source=source)
            except (DataNotFoundError, DataFormatError, OSError, ImportError, ValueError) as err:
                lines.append(f"| {task} | {split} | - | not loaded | {type(err).__name__}: {err} |")
                continue
            lines.append(f"| {task} | {split} | {loaded.size:,} | `{loaded.source}` | {loaded.rule} |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m swag_lora.tasks", description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="*", help="task names (default: every registered task)")
    parser.add_argument(
        "--data-dir", default=None, help="a data root or task folder (default: $SWAG_LORA_DATA)"
    )
    parser.add_argument(
        "--source", default="local", choices=SOURCES, help="where to read from (default: local)"
    )
    args = parser.parse_args(argv)
    print("\n".join(split_table(args.tasks or list_tasks(), args.data_dir, args.source)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
