"""The base of every error swag-lora raises for something a user can fix.

The command line prints an error of a :class:`SwagLoraError` subclass as one line and exits
with status 2; any other exception is a bug and shows its traceback (exit status 1). Each
layer defines its own subclasses next to the code that raises them (``RunError``,
``PosteriorFileError``, ``DataFormatError``, ...); most also derive from the built-in type a
Python caller would expect (``ValueError``, ``FileNotFoundError``), so ``except ValueError``
keeps working.
"""

from __future__ import annotations

__all__ = ["InvalidSettingError", "MissingDependencyError", "SwagLoraError", "UsageError"]


class SwagLoraError(Exception):
    """Something the user asked for cannot be done as asked; the message says why and what to do."""


class InvalidSettingError(SwagLoraError, ValueError):
    """A setting or argument is out of range or contradicts another one."""


class MissingDependencyError(SwagLoraError, ModuleNotFoundError):
    """An optional package that a requested feature needs is not installed; the message names it."""


class UsageError(SwagLoraError):
    """A command was called wrongly (a flag missing, or two flags that exclude each other)."""
