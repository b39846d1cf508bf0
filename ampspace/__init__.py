"""Amp-Space: learning how amps, pedals and studio effects transform sound."""

__version__ = "0.1.0"
SAMPLE_RATE = 44100
