"""What the answering commands (``predict``, ``generate``) share: the options that say where their
JSON lines and summary go, and writing them."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..files import atomic_write, write_json

__all__ = ["add_output_options", "write_answers"]


def add_output_options(p: argparse.ArgumentParser, summary: str) -> None:
    """``--summary`` (described as ``summary``), ``--allow_base_mismatch`` and ``--no_progress``."""
    p.add_argument("--summary", default=None, help=f"also write the summary ({summary}) as JSON here")
    p.add_argument("--allow_base_mismatch", action="store_true",
                   help="go on (with a warning) when the base model's weights differ from the ones the run recorded")
    p.add_argument("--no_progress", action="store_true", help="no progress bars")


def write_answers(records: list[dict], output: str | None, summary: dict, summary_path: str | None,
                  description: str) -> None:
    """One JSON line per record to ``output`` (atomically) or standard output; the summary as JSON to
    ``summary_path`` if given; ``description`` to standard error."""
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if output:
        atomic_write(output, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    if summary_path:
        write_json(summary_path, summary)
    print(description, file=sys.stderr)
