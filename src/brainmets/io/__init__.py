"""Readers (one per format, all returning :class:`LabelMap`) and atomic writers."""

from brainmets.io.labelmap import LabelMap
from brainmets.io.readers import load_segmentation

__all__ = ["LabelMap", "load_segmentation"]
