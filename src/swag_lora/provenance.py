"""What produced a file: package and library versions, git revision, posterior format."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess

from . import __version__
from .posterior import FORMAT_VERSION

LIBRARIES = ("torch", "transformers", "peft", "accelerate", "datasets", "safetensors", "numpy")


def _git_revision() -> str | None:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    rev = out.stdout.strip()
    return rev if out.returncode == 0 and rev else None


def provenance() -> dict:
    """Versions of swag-lora and the libraries it runs on, the git revision when available."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "swag_lora_version": __version__,
        "git_revision": _git_revision(),
        "posterior_format_version": FORMAT_VERSION,
        "python": platform.python_version(),
        "libraries": versions,
    }
