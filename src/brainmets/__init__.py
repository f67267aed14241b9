"""brainmets: brain-metastasis lesion features from segmentation label maps (research use only).

The Python API (:mod:`brainmets.api`): ``measure``, ``locate``, ``indicate``, ``cohort``, ``follow_up``,
``compare``, ``load_config``; a small demo to try it on: ``brainmets.datasets.demo()``.
"""

from brainmets._version import __version__

_API = (
    "Cohort",
    "Comparison",
    "FollowUp",
    "Measurement",
    "cohort",
    "compare",
    "follow_up",
    "indicate",
    "load_config",
    "locate",
    "measure",
)
#: Submodules reached as attributes (``brainmets.datasets.demo()``) without an import of their own.
_SUBMODULES = ("datasets",)
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    """The API's names, imported on first use (so that ``brainmets --version`` stays fast)."""
    if name in _API:
        from brainmets import api

        return getattr(api, name)
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'brainmets' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The API's names (imported lazily, so not yet globals) and the module's own."""
    return sorted({*globals(), *_API, *_SUBMODULES})
