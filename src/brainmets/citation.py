"""How to cite brainmets and the review its indications encode (the results' dataset_description.json and
README, the indication documents' provenance, CITATION.cff)."""

from __future__ import annotations

from brainmets._version import __version__

#: Where the code lives (BIDS ``GeneratedBy.CodeURL``).
CODE_URL = "https://github.com/brainmets/brainmets"

#: The source review of the indication module (its Table 1 and the thresholds in its text).
REVIEW = (
    "Sun P, Zhang X, Li F, Zhu Y, Xu J. The evolving role of surgery in brain metastatic disease. "
    "Eurasian Journal of Medicine and Oncology. 2026;10(2):025160125. "
    "https://journal.hep.com.cn/ejmo/EN/1263932307485220902"
)


def how_to_acknowledge() -> str:
    """The ``HowToAcknowledge`` text of a results folder."""
    return (
        f"Please cite brainmets (brainmets developers, brainmets version {__version__}, {CODE_URL}; CITATION.cff "
        f"in its repository) and, when you report its treatment indications, the review they encode: {REVIEW} "
        "Research use only: brainmets is not a medical device and its indications are not treatment "
        "recommendations."
    )
