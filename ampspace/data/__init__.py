"""Grain input pipelines over `amp_space` data sources."""
