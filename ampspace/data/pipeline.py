"""Grain pipeline: tfds.data_source -> random aligned windows -> conditioning -> mu-law targets -> batches.

Each training example is a window of `window` target samples. The model is a valid-padded
dilated convolution, so its input is the DI window extended by the receptive field:
`left_context` samples before (zero-padded at the clip start) and `right_context` after
(lookahead; 0 for a causal model).
"""

from __future__ import annotations

import dataclasses

import grain
import numpy as np

from ampspace import conditioning as cond
from ampspace.audio import mulaw

PCM_SCALE = 32767.0


@dataclasses.dataclass(frozen=True)
class WindowSpec:
  window: int
  left_context: int
  right_context: int = 0

  @property
  def input_length(self) -> int:
    return self.window + self.left_context + self.right_context


def decode_audio(record: dict, key: str) -> np.ndarray:
  return np.asarray(record[key], np.float32) / PCM_SCALE


def conditioning_of(record: dict) -> np.ndarray:
  return cond.conditioning_vector(
    np.asarray(record["knobs"], np.float32),
    np.asarray(record["knob_mask"], np.float32),
    np.asarray(record["device_id"]),
    np.asarray(record["attributes"]),
  ).astype(np.float32)


def padded_input(di: np.ndarray, spec: WindowSpec) -> np.ndarray:
  """The whole DI with the model's context padding on both sides (for full-clip inference)."""
  return np.pad(di, (spec.left_context, spec.right_context))


def crop_window(record: dict, start: int, spec: WindowSpec) -> dict:
  """The aligned training example whose first target sample is `start` of the clip."""
  di = decode_audio(record, "di")
  target = decode_audio(record, "output")
  x = padded_input(di, spec)[start : start + spec.input_length]
  y = target[start : start + spec.window]
  if len(y) < spec.window:  # clip shorter than a window: zero-pad (rare; tiny configs)
    x = np.pad(x, (0, spec.input_length - len(x)))
    y = np.pad(y, (0, spec.window - len(y)))
  return {
    "input": x[:, None],
    "target": y,
    "classes": mulaw.quantize(y),
    "cond": conditioning_of(record),
    "start": np.int32(start),
  }


class RandomWindow(grain.transforms.RandomMap):
  """Picks a window start uniformly in the clip, from Grain's per-record seeded generator."""

  def __init__(self, spec: WindowSpec):
    self.spec = spec

  def random_map(self, record: dict, rng: np.random.Generator) -> dict:
    n = len(record["output"])
    start = int(rng.integers(0, max(1, n - self.spec.window + 1)))
    return crop_window(record, start, self.spec)


def train_dataset(
  source,
  spec: WindowSpec,
  *,
  batch_size: int,
  seed: int,
  process_index: int = 0,
  process_count: int = 1,
  worker_count: int = 0,
  read_threads: int = 4,
) -> grain.IterDataset:
  """Infinite, shuffled, per-host-sharded batches; its iterator state can be checkpointed."""
  if len(source) == 0:
    raise ValueError("training split is empty")
  ds = grain.MapDataset.source(source)[process_index::process_count]
  ds = ds.shuffle(seed=seed).repeat(None)
  ds = ds.random_map(RandomWindow(spec), seed=seed + 1)
  ds = ds.batch(batch_size, drop_remainder=True)
  it_ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=8))
  if worker_count > 0:
    from absl import flags

    if not flags.FLAGS.is_parsed():  # Grain's workers read absl flags; a notebook never parses
      flags.FLAGS.mark_as_parsed()
    it_ds = it_ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count))
  return it_ds


def class_counts(
  source, max_records: int = 256, num_classes: int = mulaw.NUM_CLASSES
) -> np.ndarray:
  """mu-law class histogram of the targets of (up to) `max_records` records, for loss weights."""
  counts = np.zeros(num_classes, np.int64)
  step = max(1, len(source) // max_records)
  for i in range(0, len(source), step):
    counts += np.bincount(mulaw.quantize(decode_audio(source[i], "output")), minlength=num_classes)
  return counts
