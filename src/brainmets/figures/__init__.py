"""Figures of studies and cohorts (matplotlib, no display needed)."""
