"""Readers (one per format, all returning :class:`LabelMap`) and atomic writers."""

from .labelmap import LabelMap
from .readers import load_segmentation

__all__ = ["LabelMap", "load_segmentation"]
