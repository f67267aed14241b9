"""Treatment indications: the source review's Table 1 as an auditable rule table (research use only)."""

from brainmets.indications.engine import DISCLAIMER, MODALITIES, RuleSet, evaluate_study

__all__ = ["DISCLAIMER", "MODALITIES", "RuleSet", "evaluate_study"]
