"""The package version, in a module of its own so that every layer can record it without
importing the package's public API."""

__version__ = "0.1.0"

__all__ = ["__version__"]
