"""The package version (one place: pyproject.toml reads it, every output records it)."""

__version__ = "0.1.0"
