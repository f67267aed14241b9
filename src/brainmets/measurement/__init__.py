"""Lesions of one label map and their geometry: connected components, diameters, volumes, in mm from the affine."""
