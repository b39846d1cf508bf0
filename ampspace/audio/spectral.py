"""Spectrogram helpers (NumPy/librosa) for plots, the VAE and diagnostics."""

from __future__ import annotations

import numpy as np
import librosa

from ampspace import SAMPLE_RATE


def log_mel(
  x: np.ndarray,
  sample_rate: int = SAMPLE_RATE,
  n_fft: int = 2048,
  hop: int = 256,
  n_mels: int = 256,
) -> np.ndarray:
  """log(1 + mel power) with the paper's VAE front end defaults: FFT 2048, 256 mels, hop 256."""
  m = librosa.feature.melspectrogram(
    y=np.asarray(x, np.float32),
    sr=sample_rate,
    n_fft=n_fft,
    hop_length=hop,
    n_mels=n_mels,
    power=2.0,
  )
  return np.log1p(m).astype(np.float32)


def spectrogram_figure(signals: dict[str, np.ndarray], sample_rate: int = SAMPLE_RATE):
  """A matplotlib figure: one log-frequency dB spectrogram per named signal, stacked.

  Leaves the backend alone (inline in notebooks; matplotlib picks Agg when headless)."""
  import matplotlib.pyplot as plt
  import librosa.display  # noqa: F401  (registers specshow)

  fig, axes = plt.subplots(len(signals), 1, figsize=(9, 2.4 * len(signals)), squeeze=False)
  for ax, (name, x) in zip(axes[:, 0], signals.items()):
    s = librosa.amplitude_to_db(
      np.abs(librosa.stft(np.asarray(x, np.float32), n_fft=1024, hop_length=256)),
      ref=1.0,
      top_db=90,
    )
    librosa.display.specshow(
      s, sr=sample_rate, hop_length=256, x_axis="time", y_axis="log", ax=ax, cmap="magma"
    )
    ax.set_title(name)
  fig.tight_layout()
  return fig


def save_spectrogram_png(
  path: str, signals: dict[str, np.ndarray], sample_rate: int = SAMPLE_RATE
) -> None:
  import matplotlib.pyplot as plt

  from ampspace.files import atomic_path

  fig = spectrogram_figure(signals, sample_rate)
  try:
    with atomic_path(path, suffix=".png") as tmp:
      fig.savefig(tmp, dpi=90, format="png")
  finally:
    plt.close(fig)
