"""brainmets: brain-metastasis lesion features from segmentation label maps (research use only).

The Python API (:mod:`brainmets.api`): ``measure``, ``locate``, ``indicate``, ``cohort``, ``follow_up``,
``load_config``.
"""

__version__ = "0.1.0"

_API = ("Cohort", "Measurement", "cohort", "compare", "follow_up", "indicate", "load_config", "locate", "measure")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    """The API's names, imported on first use (so that ``brainmets --version`` stays fast)."""
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'brainmets' has no attribute {name!r}")
