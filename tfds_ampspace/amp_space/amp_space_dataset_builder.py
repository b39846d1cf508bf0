"""amp_space: paired guitar DI / device-output audio with the paper's annotations.

Configs:
  tiny       renders a few seconds of plucked-string DIs through `tube_amp` over a gain sweep
             (tests, quickstart); needs no input.
  synthetic  reads a folder written by `python -m ampspace.render` from `manual_dir`, or, when
             none is given, renders the default device list itself.
  real       reads the user's recordings of physical devices from `manual_dir`.

Audio is stored as int16 PCM tensors (not `tfds.features.Audio`, which imports TensorFlow), so
building and reading need no TensorFlow. Read with `tfds.data_source`; see README.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import numpy as np
import tensorflow_datasets as tfds

from ampspace import SAMPLE_RATE
from ampspace import conditioning as cond
from ampspace.audio.wav_io import read_wav
from ampspace.errors import AmpSpaceError
from tfds_ampspace.amp_space import layouts

PCM_SCALE = 32767.0


@dataclasses.dataclass
class AmpSpaceConfig(tfds.core.BuilderConfig):
  """What to ingest or render. `devices`/`sweep`/`num_dis`/`di_seconds` apply when rendering."""
  devices: tuple[str, ...] = ("tube_amp",)
  sweep: str = "one_knob:gain"
  num_dis: int = 10
  di_seconds: float = 4.0
  seed: int = 0
  validation_fraction: float = 0.1
  test_fraction: float = 0.1


def to_pcm16(x: np.ndarray) -> np.ndarray:
  return np.round(np.clip(x, -1.0, 1.0) * PCM_SCALE).astype(np.int16)


def from_pcm16(x: np.ndarray) -> np.ndarray:
  return np.asarray(x, np.float32) / PCM_SCALE


def di_disjoint_splits(di_ids, validation_fraction: float, test_fraction: float) -> dict[str, str]:
  """Assigns every DI id to train/validation/test by the rank of its hash: stable, DI-disjoint.

  With at least 3 DIs, validation and test each get at least one DI.
  """
  ids = sorted(set(di_ids), key=lambda s: hashlib.sha1(s.encode()).hexdigest())
  n = len(ids)
  n_test = max(1, round(test_fraction * n)) if n >= 3 else 0
  n_val = max(1, round(validation_fraction * n)) if n >= 3 else 0
  split = {}
  for i, di in enumerate(ids):
    split[di] = "test" if i < n_test else "validation" if i < n_test + n_val else "train"
  return split


class Builder(tfds.core.GeneratorBasedBuilder):
  """DatasetBuilder for amp_space."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release: tiny, synthetic and real configs."}
  BUILDER_CONFIGS = [
      AmpSpaceConfig(name="tiny", description="A few seconds per DI, tube_amp gain sweep.",
                     num_dis=5, di_seconds=2.0, sweep="one_knob:gain=2,5,8"),
      AmpSpaceConfig(name="synthetic", description="Native devices rendered over knob sweeps."),
      AmpSpaceConfig(name="real", description="Recordings of physical devices (manual_dir)."),
  ]
  DEFAULT_CONFIG_NAME = "tiny"
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  `synthetic` (optional) and `real` read `manual_dir`, a folder in the Amp-Space release
  layout that `python -m ampspace.render` writes: <brand>/<vst_name>/<device>/<sweep>/<di>/
  with NNNNNNNN.wav device outputs and a settings.yaml per folder naming the DI file
  (`di_file`, relative to the root), the device, and each file's knob settings.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    audio = lambda doc: tfds.features.Tensor(shape=(None,), dtype=np.int16, doc=doc)
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "di": audio("DI, int16 PCM at 44.1 kHz (divide by 32767)."),
            "output": audio("Device output aligned to the DI, int16 PCM."),
            "clip_id": tfds.features.Text(),
            "di_id": tfds.features.Text(),
            "di_start": np.int64,
            "di_end": np.int64,
            "device": tfds.features.Text(),
            "brand": tfds.features.Text(),
            "source": tfds.features.Text(),
            "device_type": tfds.features.Text(),
            "knob_names": tfds.features.Sequence(tfds.features.Text()),
            "knob_values": tfds.features.Sequence(np.float32),
            "attributes_json": tfds.features.Text(),
            "latency_samples": np.int32,
            "knobs": tfds.features.Tensor(shape=(len(cond.KNOB_VOCAB),), dtype=np.float32),
            "knob_mask": tfds.features.Tensor(shape=(len(cond.KNOB_VOCAB),), dtype=np.float32),
            "device_id": np.int32,
            "attributes": tfds.features.Tensor(shape=(len(cond.ATTRIBUTE_VOCAB),),
                                               dtype=np.int32),
        }),
        supervised_keys=("di", "output"),
        homepage="https://github.com/amp-space/amp-space",
    )

  def _clips(self, dl_manager) -> list[layouts.Clip]:
    cfg: AmpSpaceConfig = self.builder_config
    manual = dl_manager._manual_dir  # pylint: disable=protected-access
    if cfg.name == "real" or (cfg.name == "synthetic" and manual and os.path.isdir(manual)):
      if not manual or not os.path.isdir(manual):
        raise AmpSpaceError(f"amp_space/{cfg.name}: needs --manual_dir, a folder of recordings"
                            f"; {self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
      return layouts.read_release_layout(os.fspath(manual))
    return layouts.read_release_layout(self._render(os.fspath(dl_manager.download_dir)))

  def _render(self, scratch: str) -> str:
    from ampspace.audio.wav_io import write_wav
    from ampspace.di import karplus
    from ampspace.render import render

    cfg: AmpSpaceConfig = self.builder_config
    root = os.path.join(scratch, f"rendered_{cfg.name}")
    di_dir = os.path.join(scratch, f"di_{cfg.name}")
    for i in range(cfg.num_dis):
      path = os.path.join(di_dir, f"karplus_{cfg.seed}_{i:04d}.wav")
      if not os.path.exists(path):
        write_wav(path, karplus.phrase(cfg.seed * 100003 + i, cfg.di_seconds))
    for device in cfg.devices:
      render(device, cfg.sweep, di_dir, root, seed=cfg.seed, workers=1, progress=False)
    return root

  def _split_generators(self, dl_manager):
    cfg: AmpSpaceConfig = self.builder_config
    clips = self._clips(dl_manager)
    assignment = di_disjoint_splits([c.di_id for c in clips], cfg.validation_fraction,
                                    cfg.test_fraction)
    by_split = {"train": [], "validation": [], "test": []}
    for c in clips:
      by_split[assignment[c.di_id]].append(c)
    return {name: self._generate_examples(cs) for name, cs in by_split.items() if cs}

  def _generate_examples(self, clips):
    for clip in clips:
      yield clip.clip_id, self._example(clip)

  @staticmethod
  def _example(clip: layouts.Clip) -> dict:
    di, _ = read_wav(clip.di_path, expected_sample_rate=SAMPLE_RATE)
    out, _ = read_wav(clip.output_path, expected_sample_rate=SAMPLE_RATE)
    if len(di) != len(out):
      raise AmpSpaceError(f"{clip.output_path}: length {len(out)} differs from its DI "
                          f"{clip.di_path} ({len(di)} samples)")
    knobs, mask = cond.knob_vector(layouts.normalised_knobs(clip), where=clip.output_path)
    names = sorted(clip.settings)
    return {
        "di": to_pcm16(di), "output": to_pcm16(out), "clip_id": clip.clip_id,
        "di_id": clip.di_id, "di_start": clip.di_start,
        "di_end": clip.di_end if clip.di_end >= 0 else clip.di_start + len(di),
        "device": clip.device, "brand": clip.brand, "source": clip.source,
        "device_type": clip.device_type, "knob_names": names,
        "knob_values": np.array([clip.settings[n] for n in names], np.float32),
        "attributes_json": json.dumps(clip.attributes, sort_keys=True),
        "latency_samples": 0, "knobs": knobs, "knob_mask": mask,
        "device_id": cond.device_index(clip.device),
        "attributes": cond.attribute_indices(clip.attributes),
    }
