"""amp_space: paired guitar DI / device-output audio with the paper's annotations.

Configs:
  tiny          renders a few seconds of plucked-string DIs through `tube_amp` over a gain
                sweep (tests, quickstart); needs no input.
  synthetic     renders DIs x devices x a sweep in memory (DIs: the WAVs in `manual_dir`, or
                plucked-string phrases when none is given), or reads a folder written by
                `python -m ampspace.render` when `manual_dir` holds one. Also runs on Beam.
  real          the user's recordings of physical devices from `manual_dir` (three layouts,
                see MANUAL_DOWNLOAD_INSTRUCTIONS), validated on ingest; strict.
  real_lenient  as `real`, but resamples, downmixes and skips invalid files (listed in
                ingest_report.json in the dataset folder).
Users make their own with `AmpSpaceConfig(name=..., devices=..., sweep=...)`.

Audio is stored as int16 PCM tensors (not `tfds.features.Audio`, which imports TensorFlow), so
building and reading need no TensorFlow. Read with `tfds.data_source`; see README.md.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import hashlib
import json
import logging
import os

import numpy as np
import tensorflow_datasets as tfds

from ampspace import SAMPLE_RATE
from ampspace import conditioning as cond
from ampspace.audio import alignment
from ampspace.errors import AmpSpaceError
from tfds_ampspace.amp_space import ingest, layouts

PCM_SCALE = 32767.0
# Measured by benchmarks/bench_dataset.py: see README.md "Storage".
AUDIO_DTYPE = np.int16
AUDIO_ENCODING = tfds.features.Encoding.BYTES  # raw int16 bytes: 3x cheaper than an int64 list
REPORT_FILE = "ingest_report.json"
MIN_DIS_FOR_DI_SPLIT = 10


@dataclasses.dataclass
class AmpSpaceConfig(tfds.core.BuilderConfig):
  """What to render or ingest, and how to validate and split it.

  Rendering (`synthetic`, `tiny`): `devices`, `sweep`, `num_dis` x `di_seconds` of generated DIs
  (when `manual_dir` gives no DI folder), `seed`.
  Ingest (`real`): `layout` ('auto', 'release', 'csv', 'nam') and the validation options of
  `ingest.IngestOptions` (`resample`, `downmix`, `length_tolerance`, `max_lag`,
  `max_clipped_fraction`, `silence_dbfs`, `skip_invalid`, `latency_from_music`, opt-in: a
  recording's latency comes from its annotation, calibration blip or loopback recording).
  Splits: DI-disjoint by a hash of the DI id; `segment_seconds` > 0 cuts long recordings into
  segments, and with fewer than 10 distinct DIs ('auto' `split_unit`) the split unit becomes the
  DI segment, still disjoint in DI audio.
  """

  source_kind: str = "render"  # "render" or "recordings"
  devices: tuple[str, ...] = ("tube_amp",)
  sweep: str = "one_knob:gain"
  num_dis: int = 10
  di_seconds: float = 4.0
  seed: int = 0
  layout: str = "auto"
  latency_from_music: bool = False
  resample: bool = False
  downmix: bool = False
  length_tolerance: int = 4096
  max_lag: int = alignment.DEFAULT_MAX_LAG
  max_clipped_fraction: float = 0.01
  silence_dbfs: float = -60.0
  skip_invalid: bool = False
  segment_seconds: float = 0.0
  split_unit: str = "auto"  # "di", "segment" or "auto"
  validation_fraction: float = 0.1
  test_fraction: float = 0.1

  def ingest_options(self) -> ingest.IngestOptions:
    return ingest.IngestOptions(
      resample=self.resample,
      downmix=self.downmix,
      length_tolerance=self.length_tolerance,
      latency_from_music=self.latency_from_music,
      max_lag=self.max_lag,
      max_clipped_fraction=self.max_clipped_fraction,
      silence_dbfs=self.silence_dbfs,
      skip_invalid=self.skip_invalid,
    )


def to_pcm16(x: np.ndarray) -> np.ndarray:
  return np.round(np.clip(x, -1.0, 1.0) * PCM_SCALE).astype(np.int16)


def from_pcm16(x: np.ndarray) -> np.ndarray:
  return np.asarray(x, np.float32) / PCM_SCALE


def decode_audio(example: dict, key: str) -> np.ndarray:
  """float32 audio in [-1, 1] of a decoded example's `di` or `output`, whatever the storage."""
  return from_pcm16(example[key])


def di_disjoint_splits(di_ids, validation_fraction: float, test_fraction: float) -> dict[str, str]:
  """Assigns every DI id to train/validation/test by the rank of its hash: stable, DI-disjoint.

  With at least 3 DIs, validation and test each get at least one DI, unless its fraction is 0.
  """
  ids = sorted(set(di_ids), key=lambda s: hashlib.sha1(s.encode()).hexdigest())
  n = len(ids)
  n_test = max(1, round(test_fraction * n)) if n >= 3 and test_fraction > 0 else 0
  n_val = max(1, round(validation_fraction * n)) if n >= 3 and validation_fraction > 0 else 0
  split = {}
  for i, di in enumerate(ids):
    split[di] = "test" if i < n_test else "validation" if i < n_test + n_val else "train"
  return split


def pinned_splits(items) -> dict[str, str]:
  """DI id -> the split its recordings' annotations pin it to (`split:`); every clip of a DI
  must name the same split, or none of them any."""
  named: dict[str, set] = {}
  for it in items:
    clip = getattr(it, "clip", None)
    if clip is not None:
      named.setdefault(clip.di_id, set()).add(clip.split)
  out = {}
  for di, splits in sorted(named.items()):
    if splits == {None}:
      continue
    if len(splits) > 1:
      names = ", ".join(sorted(str(s) for s in splits))
      raise AmpSpaceError(
        f"DI {di!r}: its recordings name different splits ({names}); a DI "
        f"belongs to one split, or every clip of it leaves `split` out"
      )
    out[di] = splits.pop()
  return out


# --- work items: what one generator call (or one Beam element) turns into examples ---------


@dataclasses.dataclass(frozen=True)
class RenderJob:
  """One DI through one device at several settings: rendered in memory, no files written."""

  device: str
  sweep: str
  di_path: str
  di_id: str
  settings: tuple[tuple[int, tuple[tuple[str, float], ...]], ...]  # (index, knob items)


@dataclasses.dataclass(frozen=True)
class RecordingItem:
  """One ingested pair (or some of its segments), with its setting's latency."""

  clip: layouts.Clip
  lag: int
  segments: tuple[tuple[int, int, int], ...] | None  # (k, start, end) after alignment; None: whole


def _annotation(
  clip_id,
  di_id,
  di_start,
  di_end,
  device,
  brand,
  source,
  device_type,
  settings: dict,
  knob_specs,
  attributes: dict,
  where: str,
) -> dict:
  knobs, mask = cond.knob_vector(layouts.normalise_settings(settings, knob_specs), where=where)
  names = sorted(settings)
  return {
    "clip_id": clip_id,
    "di_id": di_id,
    "di_start": int(di_start),
    "di_end": int(di_end),
    "device": device,
    "brand": brand,
    "source": source,
    "device_type": device_type,
    "knob_names": names,
    "knob_values": np.array([settings[n] for n in names], np.float32),
    "attributes_json": json.dumps(attributes, sort_keys=True),
    "knobs": knobs,
    "knob_mask": mask,
    "device_id": np.int32(cond.device_index(device)),
    "attributes": cond.attribute_indices(attributes),
    "setting": ingest.setting_name(brand, device, settings),
  }


def render_examples(job: RenderJob):
  """Yields (key, example) for every setting of a RenderJob (pure: safe on Beam workers)."""
  from ampspace.devices import get_device
  from ampspace.render import check_rendered
  from ampspace.sweeps import sweep_dirname

  device = get_device(job.device)
  desc = device.describe()
  di, _ = ingest.load_audio(job.di_path, ingest.IngestOptions())
  pcm_di = to_pcm16(di)
  for index, items in job.settings:
    settings = dict(items)
    clip_id = f"{device.name}/{sweep_dirname(job.sweep)}/{job.di_id}/{index:08d}"
    out = device.process(di, settings, SAMPLE_RATE)
    clipped = check_rendered(out, clip_id)
    ex = _annotation(
      clip_id,
      job.di_id,
      0,
      len(di),
      device.name,
      device.brand,
      device.source,
      device.device_type,
      settings,
      desc["knobs"],
      dict(desc["attributes"]),
      clip_id,
    )
    ex.update(
      di=pcm_di,
      output=to_pcm16(out),
      latency_samples=np.int32(0),
      clipped_fraction=np.float32(clipped),
      original_sample_rate=np.int32(SAMPLE_RATE),
    )
    yield clip_id, ex


def recording_examples(item: RecordingItem, opts: ingest.IngestOptions):
  """Yields (key, example) for a validated recording: latency-corrected, maybe segmented."""
  clip = item.clip
  pair = ingest.load_pair(clip, opts)
  di, out, offset = alignment.apply_latency(pair.di, pair.out, item.lag)
  segments = item.segments or ((0, 0, len(di)),)
  for k, a, b in segments:
    clip_id = clip.clip_id if item.segments is None else f"{clip.clip_id}#{k:04d}"
    start = clip.di_start + offset + a
    ex = _annotation(
      clip_id,
      clip.di_id,
      start,
      start + (b - a),
      clip.device,
      clip.brand,
      clip.source,
      clip.device_type,
      clip.settings,
      clip.knob_specs,
      clip.attributes,
      clip.output_path,
    )
    ex.update(
      di=to_pcm16(di[a:b]),
      output=to_pcm16(out[a:b]),
      latency_samples=np.int32(pair.latency + item.lag),
      clipped_fraction=np.float32(ingest.clipped_fraction(out[a:b])),
      original_sample_rate=np.int32(pair.original_sample_rate),
    )
    yield clip_id, ex


def _items_examples(items, opts: ingest.IngestOptions):
  for item in items:
    if isinstance(item, RenderJob):
      yield from render_examples(item)
    else:
      yield from recording_examples(item, opts)


def _item_examples_list(item, opts):
  return list(_items_examples([item], opts))


def resolve_devices(devices, sweep: str, seed: int = 0) -> list[tuple[str, list[dict]]]:
  """[(device, settings list)]; the token "native" stands for every native device the sweep
  applies to (for one_knob:KNOB, those that have KNOB), so new native devices join by default."""
  from ampspace import devices as zoo
  from ampspace.sweeps import parse_sweep

  get_device, native_names = zoo.get_device, getattr(zoo, "NATIVE_DEVICES", zoo.ALL_DEVICES)
  out = []
  for name in devices:
    if name == "native":
      for native in sorted(native_names):
        try:
          out.append((native, parse_sweep(sweep, get_device(native), seed)))
        except AmpSpaceError:
          continue  # the sweep names a knob this device does not have
    else:
      out.append((name, parse_sweep(sweep, get_device(name), seed)))
  if not out:
    raise AmpSpaceError(f"amp_space: no device in {list(devices)} accepts sweep {sweep!r}")
  return out


def segment_bounds(
  n: int, segment_samples: int, min_samples: int = SAMPLE_RATE
) -> tuple[tuple[int, int], ...]:
  """[0, n) cut into segment_samples pieces; a remainder shorter than min_samples is dropped."""
  if segment_samples <= 0 or n <= segment_samples:
    return ((0, n),)
  bounds = [(a, min(a + segment_samples, n)) for a in range(0, n, segment_samples)]
  return tuple(b for b in bounds if b[1] - b[0] >= min(min_samples, segment_samples))


class Builder(tfds.core.GeneratorBasedBuilder):
  """DatasetBuilder for amp_space."""

  VERSION = tfds.core.Version("1.4.0")
  RELEASE_NOTES = {
    "1.0.0": "Initial release: tiny, synthetic and real configs.",
    "1.1.0": "Release/csv/NAM layouts, ingest validation, GCC-PHAT latency, clipped_fraction,"
    " setting and original_sample_rate features, in-memory and Beam rendering.",
    "1.2.0": "Audio stored as raw int16 bytes (not int64-packed); conditioning vocabulary v2 "
    "(the device zoo's names appended).",
    "1.3.0": "Latency measured, never guessed: from an annotation, a calibration blip or a "
    "loopback recording; the GCC-PHAT estimate on music is opt-in and reported. "
    "NAM's standard v3 capture recognised (blips, training region, replicate "
    "check); DIs found in di/ folders above a recording; folder-level metadata; "
    "real_heldout and synthetic_lenient configs; conditioning vocabulary v3.",
    "1.4.0": "A recording's annotation may pin its split (`split: train|validation|test`); "
    "the hash fills only the splits no annotation names, from the other DIs.",
  }
  BUILDER_CONFIGS = [
    AmpSpaceConfig(
      name="tiny",
      description="A few seconds per DI, tube_amp gain sweep.",
      num_dis=5,
      di_seconds=2.0,
      sweep="one_knob:gain=2,5,8",
    ),
    AmpSpaceConfig(
      name="synthetic",
      description="Every native device with a gain knob, "
      "rendered over the paper's 1..10 gain grid.",
      devices=("native",),
    ),
    AmpSpaceConfig(
      name="real",
      description="Recordings of physical devices (manual_dir), strict validation.",
      source_kind="recordings",
      segment_seconds=10.0,
    ),
    AmpSpaceConfig(
      name="real_lenient",
      description="As real; resamples, downmixes, skips "
      "invalid files and lists them in ingest_report.json.",
      source_kind="recordings",
      segment_seconds=10.0,
      resample=True,
      downmix=True,
      skip_invalid=True,
    ),
    # For held-out evaluation (sim-to-real): half of the DIs test, so every test gain has
    # tens of seconds of audio even from a short recording session.
    AmpSpaceConfig(
      name="real_heldout",
      description="As real, with half of the DIs in test "
      "and a sixth in validation (sim-to-real's split).",
      source_kind="recordings",
      segment_seconds=10.0,
      validation_fraction=0.17,
      test_fraction=0.5,
    ),
    AmpSpaceConfig(
      name="synthetic_lenient",
      description="A rendered folder, leaving out (and listing) the takes that clip.",
      devices=("native",),
      skip_invalid=True,
    ),
  ]
  DEFAULT_CONFIG_NAME = "tiny"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  `real` / `real_lenient` read your recordings from `--manual_dir=DIR`, in any of three layouts
  (found by what DIR holds):

  1. Amp-Space release layout (what `python -m ampspace.render` writes): folders
     <brand>/<vst_name>/<device>/<sweep>/<di>/ holding the device outputs NNNNNNNN.wav and a
     settings.yaml with device, brand, device_type, source, attributes, di_file (the DI, relative
     to DIR), di_id, di_start, di_end, knob_specs and files: [{filename, settings: [{knob: v}]}].
  2. Flattened: DIR/data.csv, one row per clip with the global keys (device, brand,
     device_type, source, di_file, di_id, di_start, di_end), `filename` (relative to DIR), one
     column per knob (empty: the device has no such knob) and attr_<name> attribute columns.
  3. NAM-style capture pairs: any folder with output*.wav and an input.wav in it or above it;
     knob values and device fields in capture.yaml/.json (or knobs.yaml/.json) in the folder, or
     <output stem>.yaml/.json beside each output: {device: ..., brand: ..., device_type: ...,
     attributes: {...}, knobs: {gain: 5, ...}}.

  Audio: WAV/FLAC, mono, 44.1 kHz (real_lenient resamples and downmixes). The output starts
  with its DI segment, late by the capture chain's latency (at most 2048 samples), which the
  annotation gives in one of three ways: `latency_samples` (or `time-delay`), `blip_at` (a
  calibration blip at that DI sample; the output then spans the whole DI file) or
  `loopback_file` (the DI recorded through the interface alone). With none, the output is not
  shifted; `--config.latency_from_music` opts in to a GCC-PHAT estimate, reported in
  ingest_report.json. `synthetic` accepts a release-layout folder too, or a folder
  of DI .wav files to render through its devices.
  """

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self._use_beam = False

  def _info(self) -> tfds.core.DatasetInfo:
    audio = lambda doc: tfds.features.Tensor(
      shape=(None,), dtype=AUDIO_DTYPE, encoding=AUDIO_ENCODING, doc=doc
    )
    vec = lambda dtype, n, doc: tfds.features.Tensor(shape=(n,), dtype=dtype, doc=doc)
    return self.dataset_info_from_configs(
      features=tfds.features.FeaturesDict(
        {
          "di": audio("DI, int16 PCM at 44.1 kHz (decode_audio / from_pcm16: / 32767)."),
          "output": audio("Device output aligned to the DI, int16 PCM, same length."),
          "clip_id": tfds.features.Text(doc="Unique key: the output's path (+ #segment)."),
          "di_id": tfds.features.Text(doc="DI identity; splits are disjoint in it."),
          "di_start": tfds.features.Scalar(np.int64, doc="First DI sample of this pair."),
          "di_end": tfds.features.Scalar(np.int64, doc="One past the last DI sample."),
          "device": tfds.features.Text(),
          "brand": tfds.features.Text(),
          "source": tfds.features.Text(doc="'synthetic' or 'real'."),
          "device_type": tfds.features.Text(doc="amp, overdrive, fuzz, compressor, ..."),
          "knob_names": tfds.features.Sequence(tfds.features.Text()),
          "knob_values": tfds.features.Sequence(np.float32, doc="In the device's units."),
          "attributes_json": tfds.features.Text(doc="{attribute: value} as JSON."),
          "setting": tfds.features.Text(doc="brand/device[knob=v,...]: the latency group."),
          "latency_samples": tfds.features.Scalar(
            np.int32, doc="Lag removed from the output (positive: it was late)."
          ),
          "clipped_fraction": tfds.features.Scalar(
            np.float32, doc="Fraction of output samples at full scale."
          ),
          "original_sample_rate": tfds.features.Scalar(np.int32),
          "knobs": vec(
            np.float32, len(cond.KNOB_VOCAB), "Knob values in [0,1] on conditioning.KNOB_VOCAB."
          ),
          "knob_mask": vec(np.float32, len(cond.KNOB_VOCAB), "1 where the device has it."),
          "device_id": tfds.features.Scalar(np.int32, doc="Index in DEVICE_VOCAB (0 other)."),
          "attributes": vec(
            np.int32, len(cond.ATTRIBUTE_VOCAB), "Index per ATTRIBUTE_VOCAB entry (0 unknown)."
          ),
        }
      ),
      supervised_keys=("di", "output"),
      homepage="https://github.com/amp-space/amp-space",
      metadata=tfds.core.MetadataDict(vocab_version=cond.VOCAB_VERSION),
    )

  def _download_and_prepare(self, dl_manager, download_config=None):
    # Beam is used when the caller configured it (tfds build --beam_pipeline_options=...).
    self._use_beam = bool(
      download_config and (download_config.beam_runner or download_config.beam_options)
    )
    return super()._download_and_prepare(dl_manager, download_config)

  # --- what to generate ---------------------------------------------------------------------

  def _manual(self, dl_manager) -> str | None:
    manual = dl_manager._manual_dir  # pylint: disable=protected-access
    return os.fspath(manual) if manual and os.path.isdir(os.fspath(manual)) else None

  def _render_jobs(self, di_dir: str) -> list[RenderJob]:
    cfg: AmpSpaceConfig = self.builder_config
    di_paths = sorted(glob.glob(os.path.join(di_dir, "*.wav")))
    if not di_paths:
      raise AmpSpaceError(f"{di_dir}: no .wav DI files found")
    jobs = []
    for device_name, settings in resolve_devices(cfg.devices, cfg.sweep, cfg.seed):
      items = tuple(
        (i, tuple(sorted((k, float(v)) for k, v in s.items()))) for i, s in enumerate(settings)
      )
      for p in di_paths:
        jobs.append(
          RenderJob(device_name, cfg.sweep, p, os.path.splitext(os.path.basename(p))[0], items)
        )
    return jobs

  def _generated_dis(self, scratch: str) -> str:
    from ampspace.audio.wav_io import write_wav
    from ampspace.di import karplus

    cfg: AmpSpaceConfig = self.builder_config
    di_dir = os.path.join(scratch, f"di_karplus_{cfg.seed}_{cfg.di_seconds:g}s")
    for i in range(cfg.num_dis):
      path = os.path.join(di_dir, f"karplus_{cfg.seed}_{i:04d}.wav")
      if not os.path.exists(path):
        write_wav(path, karplus.phrase(cfg.seed * 100003 + i, cfg.di_seconds))
    return di_dir

  def _recording_items(self, root: str) -> list[RecordingItem]:
    cfg: AmpSpaceConfig = self.builder_config
    reader = {
      "auto": layouts.read_any,
      "release": layouts.read_release_layout,
      "nam": layouts.read_nam_layout,
      "csv": lambda r: layouts.read_csv_layout(os.path.join(r, layouts.CSV_FILE)),
    }
    if cfg.layout not in reader:
      raise AmpSpaceError(
        f"amp_space/{cfg.name}: unknown layout {cfg.layout!r}; known: {sorted(reader)}"
      )
    clips = reader[cfg.layout](root)
    opts = cfg.ingest_options()
    result = ingest.validate_clips(clips, opts)
    result.report.update(config=cfg.name, manual_dir=root)
    report_path = os.path.join(os.fspath(self.data_dir), REPORT_FILE)
    ingest.write_report(report_path, result.report)  # lands in the final folder on success
    if result.report["skipped"]:
      logging.warning(
        "amp_space/%s: skipped %d invalid recordings; see %s",
        cfg.name,
        len(result.report["skipped"]),
        REPORT_FILE,
      )
    items = []
    seg = int(round(cfg.segment_seconds * SAMPLE_RATE))
    for clip in result.clips:
      lag = result.latency.get(ingest.setting_key(clip), 0)
      segments = None
      if seg > 0:
        bounds = segment_bounds(result.lengths[clip.clip_id] - abs(lag), seg)
        segments = tuple((k, a, b) for k, (a, b) in enumerate(bounds)) if len(bounds) > 1 else None
      items.append(RecordingItem(clip, lag, segments))
    return items

  def _split_generators(self, dl_manager):
    cfg: AmpSpaceConfig = self.builder_config
    manual = self._manual(dl_manager)
    if cfg.source_kind == "recordings":
      if not manual:
        raise AmpSpaceError(
          f"amp_space/{cfg.name}: needs --manual_dir, a folder of "
          f"recordings;{self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
        )
      items = self._recording_items(manual)
    elif manual and glob.glob(os.path.join(manual, "**", "settings.yaml"), recursive=True):
      items = self._recording_items(manual)  # a folder ampspace.render wrote
    elif manual:
      items = self._render_jobs(manual)  # a folder of DIs
    else:
      items = self._render_jobs(self._generated_dis(os.fspath(dl_manager.download_dir)))
    return {
      name: self._generate_examples(part)
      for name, part in self._assign_splits(items).items()
      if part
    }

  def _assign_splits(self, items) -> dict[str, list]:
    cfg: AmpSpaceConfig = self.builder_config
    di_of = lambda it: it.di_id if isinstance(it, RenderJob) else it.clip.di_id
    unit = cfg.split_unit
    if unit == "auto":
      few = len({di_of(it) for it in items}) < MIN_DIS_FOR_DI_SPLIT
      unit = "segment" if few and cfg.segment_seconds > 0 else "di"
    if unit not in ("di", "segment"):
      raise AmpSpaceError(f"amp_space/{cfg.name}: split_unit must be di, segment or auto")
    parts = {"train": [], "validation": [], "test": []}
    pinned = pinned_splits(items)
    val_fraction, test_fraction = cfg.validation_fraction, cfg.test_fraction
    if pinned:  # annotations name splits: they hold, and the hash fills only the splits
      # that no annotation names, from the other DIs
      named = set(pinned.values())
      val_fraction = 0.0 if "validation" in named else val_fraction
      test_fraction = 0.0 if "test" in named else test_fraction
      free = [it for it in items if di_of(it) not in pinned]
      for it in items:
        if di_of(it) in pinned:
          parts[pinned[di_of(it)]].append(it)
      if not free:
        return parts
      items = free
    if unit == "di":
      assignment = di_disjoint_splits([di_of(it) for it in items], val_fraction, test_fraction)
      for it in items:
        parts[assignment[di_of(it)]].append(it)
      return parts
    # Segment unit: segment k of a DI lands in the same split for every device and setting.
    segs_of = lambda it: it.segments or ((0, 0, -1),)
    keys = lambda it: [f"{it.clip.di_id}#{k}" for k, _, _ in segs_of(it)]
    assignment = di_disjoint_splits(
      [k for it in items for k in keys(it)], val_fraction, test_fraction
    )
    for it in items:
      segs = segs_of(it)
      for split in parts:
        mine = tuple(s for s, k in zip(segs, keys(it)) if assignment[k] == split)
        if mine:
          parts[split].append(dataclasses.replace(it, segments=mine if it.segments else None))
    return parts

  def _generate_examples(self, items):
    opts = self.builder_config.ingest_options()
    if self._use_beam:
      beam = tfds.core.lazy_imports.apache_beam
      return beam.Create(items) | beam.FlatMap(functools.partial(_item_examples_list, opts=opts))
    return _items_examples(items, opts)
