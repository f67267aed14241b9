"""Two segmentations of one study compared: BraTS-METS lesion-wise metrics and feature agreement."""
