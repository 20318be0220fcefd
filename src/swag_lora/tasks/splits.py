"""Deterministic carve-outs and subsets of rows.

Both rank rows by a keyed hash of the row's content (question, choices and passage), so the
rows chosen depend only on the seed and on which questions there are: not on file order, row
ids, the data source (hub or local copy) or any training seed. Chosen rows keep their
original order.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from .base import Row

__all__ = [
    "carve",
    "carve_size",
    "draw_subset",
    "fingerprint",
]



def fingerprint(row: Row) -> str:
    """A digest of what a row asks: question, choices and passage (not its id or label); for a
    row of a text task (:class:`~swag_lora.tasks.text.TextRow`), its prompt."""
    prompt = getattr(row, "prompt", None)
    parts = [prompt] if prompt is not None else [row.question, *row.choices, str(row.meta.get("passage", ""))]
    return hashlib.sha256("\x1e".join(parts).encode("utf-8")).hexdigest()


def _ranked(rows: Sequence[Row], purpose: str, seed: int) -> list[int]:
    def key(i: int) -> tuple[str, int]:
        digest = hashlib.sha256(f"{purpose}\x1f{seed}\x1f{fingerprint(rows[i])}".encode()).hexdigest()
        return digest, i

    return sorted(range(len(rows)), key=key)


def carve_size(n: int, fraction: float) -> int:
    """How many of ``n`` rows a carve of ``fraction`` takes: ``fraction * n`` rounded half up."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"carve fraction must be in (0, 1), got {fraction}")
    return int(math.floor(fraction * n + 0.5))


def carve(rows: Sequence[Row], fraction: float, seed: int) -> tuple[list[Row], list[Row]]:
    """Split ``rows`` into ``(rest, carved)``, ``carved`` holding :func:`carve_size` rows.

    The same rows and seed always give the same split; the two parts are disjoint and together
    are ``rows``.
    """
    chosen = set(_ranked(rows, "carve", seed)[: carve_size(len(rows), fraction)])
    rest = [row for i, row in enumerate(rows) if i not in chosen]
    carved = [row for i, row in enumerate(rows) if i in chosen]
    return rest, carved


def draw_subset(rows: Sequence[Row], limit: int, seed: int) -> list[Row]:
    """``limit`` rows drawn pseudo-randomly with ``seed`` (all rows when there are no more).

    For one seed, a smaller limit draws a subset of what a larger limit draws.
    """
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if limit >= len(rows):
        return list(rows)
    chosen = set(_ranked(rows, "subset", seed)[:limit])
    return [row for i, row in enumerate(rows) if i in chosen]
