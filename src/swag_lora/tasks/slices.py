"""Slices of a release that ship with swag-lora, and the rule that keeps them honest.

The package holds the ARC-Easy questions ``swag-lora demo`` draws with its default sizes
(:func:`packaged_data_dir`, a data root with one folder, ``arc-easy/``), so the demo runs with no
data and no network. A slice folder holds release files cut to the rows one subset draw of the
full data takes, in file order, and ``swag-lora-slice.json`` saying which draw. Because a subset
is ranked row by row (:func:`~swag_lora.tasks.splits.draw_subset`), a smaller draw with the same
seed takes the same rows from the slice as from the full data. So a slice serves a split only
when it gives exactly the rows the full data would: a ``limit`` no larger than the rows it holds,
the same subset seed, and a split that is a whole release file (no carve). Anything else is
refused with a message saying how to give the full data; a slice never stands in for it
silently.

``tools/cut_data.py demo`` writes the packaged slice from the full data.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import DataNotFoundError

__all__ = ["SLICE_FILE", "check_slice", "packaged_data_dir", "read_slice"]

SLICE_FILE = "swag-lora-slice.json"
_PACKAGED = Path(__file__).resolve().parent / "packaged"


def packaged_data_dir() -> Path:
    """The data root inside the package: ``arc-easy/``, the demo's questions (a slice)."""
    return _PACKAGED


def read_slice(folder: Path) -> dict | None:
    """The slice record of a task folder, or None for a folder of full release files."""
    path = Path(folder) / SLICE_FILE
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def check_slice(record: dict, folder: Path, task: str, split: str, whole_file: bool, limit: int | None,
                subset_seed: int, advice: str) -> tuple[int, str]:
    """``(release rows, rule note)`` when the slice in ``folder`` serves this request exactly as the
    full data would; otherwise :class:`DataNotFoundError` naming what it holds and ``advice``."""
    held = record.get("splits", {}).get(split)
    seed = record.get("subset_seed")
    if held is None:
        holds = ", ".join(f"{n} {s}" for s, n in ((s, v["rows"]) for s, v in record.get("splits", {}).items()))
        raise DataNotFoundError(f"task {task}: {str(folder)!r} is a slice of the release holding only {holds} "
                                f"questions, no {split} split; {advice}")
    rows, release = int(held["rows"]), int(held["release_rows"])
    what = (f"{str(folder)!r} is a slice of the release: the {rows} of its {release:,} {split} questions that a "
            f"subset of {rows} with subset seed {seed} draws (what swag-lora demo uses)")
    if not whole_file:
        problem = f"the {split} split is carved from another file"
    elif limit is None:
        problem = f"all {release:,} {split} questions were asked for"
    elif limit > rows:
        problem = f"a subset of {limit} was asked for"
    elif subset_seed != seed:
        problem = f"subset seed {subset_seed} was asked for"
    else:
        return release, f"a slice: the {rows} of the release's {release:,} questions drawn with subset seed {seed}"
    raise DataNotFoundError(f"task {task}: {what}, and {problem}; {advice}")
