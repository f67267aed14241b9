"""One study measured: its lesions, edema-only components and cavities located and assembled into the features
document (columns, rows, study summary, provenance)."""
