"""Grain pipeline for the mel-spectrogram VAE: device outputs -> random log-mel windows -> batches.

An example is `num_frames` consecutive frames of `spectral.log_mel` of a clip's *output* audio
(the sound the device makes; the DI is not used), laid out time-major [frames, mels] so that
the mel bands are the channels of the VAE's 1-D convolutions over time.

A window is computed from just the audio it needs, yet equals the same frames of the
whole-clip log-mel exactly (librosa's centred STFT zero-pads n_fft/2 samples at both ends, and
`log_mel_window` reproduces that padding). Training windows and the windows a whole clip is
cut into at inference therefore see one and the same front end.

The dataset is deterministic for a seed (Grain's per-record seeded RandomMap) and its
iterator state is checkpointable, like `pipeline.train_dataset`.
"""

from __future__ import annotations

import dataclasses

import grain
import librosa
import numpy as np

from ampspace import SAMPLE_RATE
from ampspace.audio import spectral
from ampspace.data.pipeline import decode_audio
from ampspace.errors import AmpSpaceError


@dataclasses.dataclass(frozen=True)
class MelSpec:
  """The paper's VAE front end (FFT 2048, 256 mels, hop 256) and the window length in frames."""

  num_frames: int = 64
  n_fft: int = 2048
  hop: int = 256
  n_mels: int = 256
  sample_rate: int = SAMPLE_RATE

  def frames_of(self, num_samples: int) -> int:
    """Frames librosa's centred STFT gives for a clip of `num_samples`."""
    return 1 + num_samples // self.hop


def log_mel_window(audio: np.ndarray, start_frame: int, spec: MelSpec) -> np.ndarray:
  """Frames [start_frame, start_frame + num_frames) of log(1 + mel power), shape [frames, mels].

  Frames past the clip's end are computed over zeros (log1p(0) = 0: silence).
  """
  audio = np.asarray(audio, np.float32)
  half = spec.n_fft // 2
  a = start_frame * spec.hop - half
  b = a + (spec.num_frames - 1) * spec.hop + spec.n_fft
  seg = audio[max(a, 0) : max(min(b, len(audio)), 0)]
  seg = np.pad(seg, (max(0, -a), b - a - max(0, -a) - len(seg)))
  m = librosa.feature.melspectrogram(
    y=seg,
    sr=spec.sample_rate,
    n_fft=spec.n_fft,
    hop_length=spec.hop,
    n_mels=spec.n_mels,
    power=2.0,
    center=False,
  )
  return np.log1p(m).T.astype(np.float32)


def clip_log_mel(audio: np.ndarray, spec: MelSpec) -> np.ndarray:
  """The whole clip's log-mel, time-major [frames, mels]."""
  return spectral.log_mel(audio, spec.sample_rate, spec.n_fft, spec.hop, spec.n_mels).T


def split_windows(log_mel_tm: np.ndarray, num_frames: int) -> np.ndarray:
  """[frames, mels] -> [ceil(frames / num_frames), num_frames, mels], zero-padded (silence)."""
  n = log_mel_tm.shape[0]
  w = max(1, -(-n // num_frames))
  padded = np.pad(log_mel_tm, ((0, w * num_frames - n), (0, 0)))
  return padded.reshape(w, num_frames, log_mel_tm.shape[1])


def join_windows(windows: np.ndarray, num_frames_total: int) -> np.ndarray:
  """Inverse of `split_windows`: [W, T, mels] -> [num_frames_total, mels]."""
  w, t, m = windows.shape
  return np.asarray(windows).reshape(w * t, m)[:num_frames_total]


def labels_of(record: dict) -> dict:
  """The numeric annotations carried beside each window (device, knobs) for plots and probes."""
  return {
    "device_id": np.int32(record["device_id"]),
    "knobs": np.asarray(record["knobs"], np.float32),
    "knob_mask": np.asarray(record["knob_mask"], np.float32),
  }


def mel_example(record: dict, start_frame: int, spec: MelSpec) -> dict:
  return {
    "mel": log_mel_window(decode_audio(record, "output"), start_frame, spec),
    **labels_of(record),
  }


class RandomMelWindow(grain.transforms.RandomMap):
  """A window start uniform over the clip's frames, from Grain's per-record seeded generator."""

  def __init__(self, spec: MelSpec):
    self.spec = spec

  def random_map(self, record: dict, rng: np.random.Generator) -> dict:
    frames = self.spec.frames_of(len(record["output"]))
    start = int(rng.integers(0, max(1, frames - self.spec.num_frames + 1)))
    return mel_example(record, start, self.spec)


def train_dataset(
  source,
  spec: MelSpec,
  *,
  batch_size: int,
  seed: int,
  process_index: int = 0,
  process_count: int = 1,
  worker_count: int = 0,
  read_threads: int = 4,
) -> grain.IterDataset:
  """Infinite, shuffled, per-host-sharded batches {"mel": [B, T, M], labels}; checkpointable."""
  if len(source) == 0:
    raise AmpSpaceError("mel pipeline: the training split is empty")
  if spec.num_frames < 1:
    raise AmpSpaceError(f"mel pipeline: num_frames must be positive, got {spec.num_frames}")
  ds = grain.MapDataset.source(source)[process_index::process_count]
  ds = ds.shuffle(seed=seed).repeat(None)
  ds = ds.random_map(RandomMelWindow(spec), seed=seed + 1)
  ds = ds.batch(batch_size, drop_remainder=True)
  it_ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=8))
  if worker_count > 0:
    it_ds = it_ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count))
  return it_ds


def fixed_batch(source, spec: MelSpec, count: int) -> dict | None:
  """The centre window of each of the first `count` records: the same every evaluation."""
  n = min(len(source), count)
  if n == 0:
    return None
  examples = []
  for i in range(n):
    record = source[i]
    frames = spec.frames_of(len(record["output"]))
    examples.append(mel_example(record, max(0, (frames - spec.num_frames) // 2), spec))
  return {k: np.stack([e[k] for e in examples]) for k in examples[0]}
