"""One exception hierarchy: data errors subclass ValueError, the CLI maps them to exit codes."""

from __future__ import annotations


class BrainmetsError(Exception):
    """Base class of every error brainmets raises on purpose."""


class InputDataError(BrainmetsError, ValueError):
    """An input file is unreadable or inconsistent; the message names the file and the problem."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class LabelSchemeError(BrainmetsError, ValueError):
    """A label map holds values its label scheme does not know, or the scheme itself is invalid."""


class ConfigError(BrainmetsError, ValueError):
    """A configuration value or command-line option is invalid."""
