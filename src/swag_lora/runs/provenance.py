"""What produced a file, and whether this swag-lora can read it.

:func:`provenance` is recorded in every run directory (``run_config.json``), every evaluation
(``metrics.json``) and every prediction summary: the package version, the git revision of the
swag-lora checkout when it runs from one (with a ``git_dirty`` flag), the posterior file's
format version, Python and the versions of the libraries it runs on.

:func:`check_compatible` is what :func:`~swag_lora.runs.load.load_run` asks before reading a
run: a run written by a newer release series (a newer major version; for 0.x, a newer minor
version) or with another posterior format is refused with a message that says which versions
are involved and what to do.
"""

from __future__ import annotations

import copy
import functools
import importlib.metadata
import os
import platform
import re
import subprocess

from ..bayes.posterior import FORMAT_VERSION
from ..errors import SwagLoraError
from ..version import __version__

__all__ = ["IncompatibleRunError", "check_compatible", "git_revision", "provenance", "release_series"]

LIBRARIES = ("torch", "transformers", "peft", "accelerate", "datasets", "safetensors", "numpy")
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the swag_lora folder


class IncompatibleRunError(SwagLoraError, ValueError):
    """A run (or file) written by a swag-lora this one cannot read; the message says why."""


def _git(args: list[str], cwd: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_revision(package_dir: str = PACKAGE_DIR) -> tuple[str | None, bool | None]:
    """``(revision, dirty)`` of the swag-lora checkout holding ``package_dir``, or ``(None, None)``.

    Only a repository whose ``pyproject.toml`` names the ``swag-lora`` project counts, so a
    package installed into some other project's repository (a virtual environment inside it)
    does not record that project's revision.
    """
    top = _git(["rev-parse", "--show-toplevel"], package_dir)
    if not top:
        return None, None
    try:
        with open(os.path.join(top, "pyproject.toml"), encoding="utf-8") as handle:
            if not re.search(r'^name\s*=\s*"swag-lora"', handle.read(), re.MULTILINE):
                return None, None
    except OSError:
        return None, None
    rev = _git(["rev-parse", "HEAD"], package_dir)
    if not rev:
        return None, None
    status = _git(["status", "--porcelain", "--untracked-files=no"], top)
    return rev, (bool(status) if status is not None else None)


@functools.lru_cache(maxsize=1)
def _provenance() -> dict:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    revision, dirty = git_revision()
    return {
        "swag_lora_version": __version__,
        "git_revision": revision,
        "git_dirty": dirty,
        "posterior_format_version": FORMAT_VERSION,
        "python": platform.python_version(),
        "libraries": versions,
    }


def provenance() -> dict:
    """Versions of swag-lora and the libraries it runs on, the git revision when available, and
    the posterior format version (a fresh copy; computed once per process)."""
    return copy.deepcopy(_provenance())


def release_series(version: str) -> tuple[int, ...]:
    """The releases that read each other's runs: the major version, or (0, minor) before 1.0."""
    match = re.match(r"^\s*v?(\d+)(?:\.(\d+))?", str(version))
    if not match:
        raise ValueError(f"cannot read version {version!r}")
    major, minor = int(match.group(1)), int(match.group(2) or 0)
    return (major,) if major >= 1 else (0, minor)


def _series_text(series: tuple[int, ...]) -> str:
    return f"{series[0]}.x" if len(series) == 1 else f"{series[0]}.{series[1]}.x"


def check_compatible(record: dict | None, what: str, current_version: str = __version__) -> None:
    """Raise :class:`IncompatibleRunError` unless this swag-lora can read what ``record`` (a
    :func:`provenance` dict) describes; ``what`` names the file or run in the message.

    Refused: no provenance at all; a newer release series than this one; another posterior
    format version. Older series with the same posterior format are read.
    """
    if not isinstance(record, dict) or "swag_lora_version" not in record:
        raise IncompatibleRunError(
            f"{what} has no provenance record (swag_lora_version, posterior_format_version), so this "
            f"swag-lora ({current_version}) cannot tell whether it can read it; it was not written by swag-lora train"
        )
    written_by = str(record["swag_lora_version"])
    try:
        theirs = release_series(written_by)
    except ValueError:
        raise IncompatibleRunError(f"{what}: unreadable swag_lora_version {written_by!r} in its provenance") from None
    ours = release_series(current_version)
    if theirs > ours:
        raise IncompatibleRunError(
            f"{what} was written by swag-lora {written_by}, a newer release series ({_series_text(theirs)}) than "
            f"this swag-lora {current_version} ({_series_text(ours)}) can read: upgrade swag-lora "
            f"(pip install -U swag-lora) to read it"
        )
    fmt = record.get("posterior_format_version")
    if fmt != FORMAT_VERSION:
        if isinstance(fmt, int) and fmt > FORMAT_VERSION:
            advice = "upgrade swag-lora (pip install -U swag-lora) to read it"
        else:
            advice = f"read it with swag-lora {written_by}, or train the run again"
        raise IncompatibleRunError(
            f"{what} was written by swag-lora {written_by} with posterior format {fmt}; this swag-lora "
            f"{current_version} reads posterior format {FORMAT_VERSION}: {advice}"
        )
