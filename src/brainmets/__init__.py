"""brainmets: brain-metastasis lesion features from segmentation label maps (research use only)."""

__version__ = "0.1.0"
