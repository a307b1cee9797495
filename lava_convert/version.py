"""The package version (written into every export)."""

__version__ = "0.1.0"
