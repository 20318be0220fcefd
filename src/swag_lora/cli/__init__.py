"""The ``swag-lora`` command: :func:`main` dispatches to one module per command."""

from .commands import main

__all__ = ["main"]
