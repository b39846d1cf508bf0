"""Grain input pipeline: aligned windows, context padding, targets, sharding, determinism, state."""

from __future__ import annotations

import numpy as np
import pytest

from ampspace import conditioning as cond
from ampspace.audio import mulaw
from ampspace.data import pipeline


def _record(n=1000, seed=0):
  rng = np.random.default_rng(seed)
  di = (rng.uniform(-0.5, 0.5, n) * pipeline.PCM_SCALE).astype(np.int16)
  out = np.roll(di, 3)  # any deterministic function of the DI
  return {
    "di": di,
    "output": out,
    "knobs": np.full(len(cond.KNOB_VOCAB), 0.5, np.float32),
    "knob_mask": np.eye(len(cond.KNOB_VOCAB), dtype=np.float32)[0],
    "device_id": np.int32(1),
    "attributes": np.zeros(len(cond.ATTRIBUTE_VOCAB), np.int32),
  }


def test_crop_window_aligns_input_context_and_target():
  rec = _record()
  spec = pipeline.WindowSpec(window=50, left_context=20, right_context=5)
  di = pipeline.decode_audio(rec, "di")
  out = pipeline.decode_audio(rec, "output")
  for start in (0, 7, 950):
    ex = pipeline.crop_window(rec, start, spec)
    assert ex["input"].shape == (75, 1) and ex["target"].shape == (50,)
    padded = np.concatenate([np.zeros(20), di, np.zeros(5)])
    np.testing.assert_array_equal(ex["input"][:, 0], padded[start : start + 75].astype(np.float32))
    # Target sample t sits at input index t + left_context.
    np.testing.assert_array_equal(ex["input"][20:70, 0], di[start : start + 50])
    np.testing.assert_array_equal(ex["target"], out[start : start + 50])
    np.testing.assert_array_equal(ex["classes"], mulaw.quantize(ex["target"]))
    assert ex["start"] == start


def test_conditioning_vector_knobs_and_one_hots():
  c = pipeline.conditioning_of(_record())
  k = len(cond.KNOB_VOCAB)
  assert c.shape == (cond.conditioning_dim(),)
  assert c[0] == 0.5 and np.all(c[1:k] == 0) and c[k] == 1  # masked knob values, mask
  device = c[2 * k : 2 * k + len(cond.DEVICE_VOCAB)]
  assert device.sum() == 1 and device[1] == 1
  assert np.all((c >= 0) & (c <= 1))


def _batches(ds, n):
  it = iter(ds)
  return it, [next(it) for _ in range(n)]


def test_train_dataset_is_deterministic_sharded_and_resumable():
  source = [_record(seed=i) for i in range(6)]
  spec = pipeline.WindowSpec(window=32, left_context=8)
  make = lambda seed, **kw: pipeline.train_dataset(
    source, spec, batch_size=2, seed=seed, read_threads=1, **kw
  )
  _, a = _batches(make(0), 5)
  _, b = _batches(make(0), 5)
  _, other = _batches(make(1), 5)
  for x, y in zip(a, b):
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])
  assert any(not np.array_equal(x["input"], y["input"]) for x, y in zip(a, other))
  assert a[0]["input"].shape == (2, 40, 1) and a[0]["cond"].shape == (2, cond.conditioning_dim())
  # Iterator state: restoring it replays exactly the batches that followed.
  it, _ = _batches(make(0), 2)
  state = it.get_state()
  after = [next(it) for _ in range(3)]
  it2 = iter(make(0))
  it2.set_state(state)
  for x, y in zip(after, [next(it2) for _ in range(3)]):
    np.testing.assert_array_equal(x["input"], y["input"])
  # Per-host sharding: two processes read disjoint records.
  firsts = []
  for p in range(2):
    ds = pipeline.train_dataset(
      source, spec, batch_size=1, seed=0, process_index=p, process_count=2, read_threads=1
    )
    it = iter(ds)
    firsts.append(
      {bytes(next(it)["cond"].tobytes() + next(it)["target"].tobytes()) for _ in range(6)}
    )
  assert not firsts[0] & firsts[1]


def test_multiprocess_workers_give_the_same_batches():
  source = [_record(seed=i) for i in range(4)]
  spec = pipeline.WindowSpec(window=16, left_context=4)
  _, plain = _batches(pipeline.train_dataset(source, spec, batch_size=2, seed=3, read_threads=1), 3)
  _, workers = _batches(
    pipeline.train_dataset(source, spec, batch_size=2, seed=3, read_threads=1, worker_count=2), 3
  )
  for x, y in zip(plain, workers):
    np.testing.assert_array_equal(x["input"], y["input"])


def test_empty_source_is_an_error():
  with pytest.raises(ValueError, match="empty"):
    pipeline.train_dataset([], pipeline.WindowSpec(8, 0), batch_size=1, seed=0)


def test_class_counts_histogram():
  rec = _record()
  counts = pipeline.class_counts([rec, rec])
  assert counts.sum() == 2 * len(rec["output"])
  np.testing.assert_array_equal(
    counts, 2 * np.bincount(mulaw.quantize(pipeline.decode_audio(rec, "output")), minlength=256)
  )
