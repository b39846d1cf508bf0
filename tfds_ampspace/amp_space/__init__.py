"""The `amp_space` dataset builder."""
