"""Pure audio utilities: WAV I/O and validation, mu-law, spectra, metrics, alignment."""
