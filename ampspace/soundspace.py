"""The continuous soundspace: encode sounds with a trained VAE, find the device and knob settings
that make the nearest sound, plot the space, and walk through it.

The paper's promise for the VAE is to "teach the user how to achieve [a sound] on the device":
encode the sound, find the nearest rendered example, and read off its device and knobs.
A clip is encoded window by window (the VAE's fixed `num_frames`), and its point in the space
is the mean of its windows' posterior means: the windows of one clip differ in the notes
played, the device's imprint is what they share.

  python -m ampspace.soundspace --workdir=runs/vae_local --split=test \
      --query=my_tone.wav --plot=runs/vae_local/soundspace.png

Downstream of the data and the model only: nothing here imports a device or the renderer.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm import tqdm

from ampspace.audio import griffin_lim
from ampspace.audio.wav_io import read_wav
from ampspace.checkpoints import restore_vae
from ampspace.data import mel_pipeline
from ampspace.data.filters import text as _text
from ampspace.data.pipeline import decode_audio
from ampspace.errors import AmpSpaceError, parse_flags_one_line_errors, report_errors
from ampspace.files import atomic_path


# ------------------------------------------------------------------ encode / decode
def spec_of(model) -> mel_pipeline.MelSpec:
  return mel_pipeline.MelSpec(num_frames=model.num_frames, n_mels=model.n_mels)


@nnx.jit
def _encode(model, windows):
  return model.encode(windows)


@nnx.jit
def _decode(model, z):
  return model.decode(z)


def encode_log_mel(model, log_mel_tm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """[frames, mels] -> posterior (means, logvars) of its windows, each [W, latent_dim]."""
  windows = mel_pipeline.split_windows(np.asarray(log_mel_tm, np.float32), model.num_frames)
  mean, logvar = _encode(model, jnp.asarray(windows))
  return np.asarray(mean), np.asarray(logvar)


def encode_audio(model, audio: np.ndarray) -> np.ndarray:
  """Window means [W, latent_dim] of a clip of any length (the last window zero-padded)."""
  return encode_log_mel(model, mel_pipeline.clip_log_mel(audio, spec_of(model)))[0]


def embedding(window_means: np.ndarray) -> np.ndarray:
  """A clip's point in the soundspace: the mean of its windows' posterior means."""
  return np.asarray(window_means).mean(axis=0)


def decode_log_mel(model, z_windows: np.ndarray, num_frames_total: int) -> np.ndarray:
  """Latent codes [W, latent_dim] -> the joined log-mel [num_frames_total, mels]."""
  out = np.asarray(_decode(model, jnp.asarray(z_windows, jnp.float32)))
  return mel_pipeline.join_windows(out, num_frames_total)


def decode_audio_from_latents(
  model,
  z_windows: np.ndarray,
  num_samples: int,
  *,
  n_iter: int = griffin_lim.DEFAULT_ITERATIONS,
  seed: int = 0,
  method: str = "nnls",
) -> np.ndarray:
  """Latent codes of a clip's windows -> audio of `num_samples`, by Griffin-Lim."""
  spec = spec_of(model)
  m = decode_log_mel(model, z_windows, spec.frames_of(num_samples))
  return griffin_lim.log_mel_to_audio(
    m.T, n_iter=n_iter, length=num_samples, seed=seed, method=method
  )


# ------------------------------------------------------------------ distances and walks
def mel_distance(a_tm: np.ndarray, b_tm: np.ndarray) -> float:
  """Mean absolute difference of two log(1 + mel power) spectrograms, frames trimmed to match."""
  n = min(len(a_tm), len(b_tm))
  return float(np.mean(np.abs(np.asarray(a_tm[:n], np.float64) - np.asarray(b_tm[:n], np.float64))))


def interpolate(z_a: np.ndarray, z_b: np.ndarray, alpha: float) -> np.ndarray:
  return (1.0 - alpha) * np.asarray(z_a) + alpha * np.asarray(z_b)


def latent_walk(
  model, z_a: np.ndarray, z_b: np.ndarray, num_frames_total: int, steps: int = 9
) -> list[np.ndarray]:
  """Log-mels decoded at `steps` evenly spaced points on the segment from z_a to z_b."""
  if steps < 2:
    raise AmpSpaceError(f"latent walk: steps must be >= 2, got {steps}")
  return [
    decode_log_mel(model, interpolate(z_a, z_b, a), num_frames_total)
    for a in np.linspace(0.0, 1.0, steps)
  ]


def walk_smoothness(log_mels: list[np.ndarray]) -> dict:
  """How evenly a walk's sounds change between consecutive points.

  `evenness` = largest step / mean step (1 = every step changes the sound equally; a jump
  shows as a large value); `path_ratio` = summed steps / direct endpoint distance (1 = the walk
  moves straight from one sound to the other, larger = it detours through other sounds).
  """
  steps = [mel_distance(a, b) for a, b in zip(log_mels[:-1], log_mels[1:])]
  direct = mel_distance(log_mels[0], log_mels[-1])
  mean = float(np.mean(steps))
  return {
    "steps": steps,
    "evenness": float(max(steps) / mean) if mean > 0 else 1.0,
    "path_ratio": float(sum(steps) / direct) if direct > 0 else float("inf"),
  }


# ------------------------------------------------------------------ the index
@dataclasses.dataclass(frozen=True)
class Entry:
  """One indexed sound: who made it and how."""

  device: str
  knobs: dict
  clip_id: str

  def recipe(self) -> str:
    knobs = ", ".join(f"{k}={v:g}" for k, v in self.knobs.items())
    return f"{self.device} with {knobs}" if knobs else self.device


@dataclasses.dataclass(frozen=True)
class Match:
  entry: Entry
  distance: float

  def __str__(self) -> str:
    return f"{self.entry.recipe()}  (distance {self.distance:.3f}; example {self.entry.clip_id})"


def held_out_leaks(entries, held_out: dict[str, float], devices) -> list[Entry]:
  """The entries of `devices` with any knob of `held_out` at its held-out value (as the dataset
  stores knob values): what an experiment holding those settings out must not train on."""
  devices = set(devices)
  return [
    e
    for e in entries
    if e.device in devices
    and any(k in e.knobs and abs(float(e.knobs[k]) - v) < 1e-6 for k, v in held_out.items())
  ]


def within_steps(entry: Entry, device: str, knobs: dict, steps: float = 1.0) -> bool:
  """Whether a recipe (an indexed entry) is `device` with every knob of `knobs` within `steps`
  of its value (knob values as the dataset stores them: dials for 0..10 knobs)."""
  return entry.device == device and all(
    k in entry.knobs and abs(float(entry.knobs[k]) - float(v)) <= steps + 1e-6
    for k, v in knobs.items()
  )


def entry_of(record: dict) -> Entry:
  names = [_text(n) for n in np.asarray(record.get("knob_names", []), dtype=object).tolist()]
  values = [float(v) for v in np.asarray(record.get("knob_values", []), np.float64).tolist()]
  if len(names) != len(values):
    raise AmpSpaceError(
      f"record {_text(record.get('clip_id', '?'))}: {len(names)} knob names "
      f"but {len(values)} knob values"
    )
  return Entry(_text(record["device"]), dict(zip(names, values)), _text(record.get("clip_id", "")))


class SoundSpace:
  """Embeddings [N, latent_dim] of labelled sounds, searchable by nearest neighbour."""

  def __init__(self, embeddings: np.ndarray, entries: list[Entry]):
    embeddings = np.asarray(embeddings, np.float32)
    if embeddings.ndim != 2 or len(embeddings) != len(entries):
      raise AmpSpaceError(
        f"soundspace: {len(entries)} entries but embeddings of shape {embeddings.shape}"
      )
    self.embeddings, self.entries = embeddings, list(entries)

  @classmethod
  def from_source(
    cls, model, source, *, max_records: int | None = None, progress: bool = True
  ) -> "SoundSpace":
    """Encodes the outputs of (up to `max_records` of) an amp_space data source."""
    n = len(source) if max_records is None else min(len(source), max_records)
    if n == 0:
      raise AmpSpaceError("soundspace: the data source is empty")
    embs, entries = [], []
    for i in tqdm(range(n), desc="encode", unit="clip", disable=not progress, file=sys.stderr):
      record = source[i]
      embs.append(embedding(encode_audio(model, decode_audio(record, "output"))))
      entries.append(entry_of(record))
    return cls(np.stack(embs), entries)

  def nearest(self, query: np.ndarray, k: int = 5, *, device: str | None = None) -> list[Match]:
    """The k entries nearest (Euclidean) to a point `query` [latent_dim], optionally of one device."""
    query = np.asarray(query, np.float32).reshape(-1)
    if query.shape[0] != self.embeddings.shape[1]:
      raise AmpSpaceError(
        f"soundspace: query has {query.shape[0]} dimensions, the space {self.embeddings.shape[1]}"
      )
    idx = np.arange(len(self.entries))
    if device is not None:
      idx = idx[[e.device == device for e in self.entries]]
      if len(idx) == 0:
        raise AmpSpaceError(f"soundspace: no indexed sound of device {device!r}")
    d = np.linalg.norm(self.embeddings[idx] - query, axis=1)
    order = np.argsort(d, kind="stable")[:k]
    return [Match(self.entries[idx[j]], float(d[j])) for j in order]

  def nearest_to_audio(self, model, audio: np.ndarray, k: int = 5, **kw) -> list[Match]:
    return self.nearest(embedding(encode_audio(model, audio)), k, **kw)

  # -------------------------------------------------------------- persistence
  def save(self, path: str) -> None:
    """One .npz with the embeddings and the entries as JSON; written atomically."""
    entries = json.dumps([dataclasses.asdict(e) for e in self.entries])
    with atomic_path(path, suffix=".npz") as tmp:  # np.savez appends .npz to other names
      np.savez(tmp, embeddings=self.embeddings, entries=np.asarray(entries))

  @classmethod
  def load(cls, path: str) -> "SoundSpace":
    if not os.path.exists(path):
      raise AmpSpaceError(f"{path}: soundspace index not found")
    with np.load(path) as z:
      entries = [Entry(**e) for e in json.loads(str(z["entries"]))]
      return cls(z["embeddings"], entries)

  # -------------------------------------------------------------- colouring
  def colour_values(self, color_by: str) -> tuple[np.ndarray, list[str] | None]:
    """("device") -> (category index per entry, names); ("knob:NAME") -> (value or NaN, None)."""
    if color_by == "device":
      names = sorted({e.device for e in self.entries})
      return np.asarray([names.index(e.device) for e in self.entries], np.float64), names
    if color_by.startswith("knob:") and color_by[5:]:
      knob = color_by[5:]
      if not any(knob in e.knobs for e in self.entries):
        raise AmpSpaceError(f"soundspace plot: no indexed sound has a knob {knob!r}")
      return np.asarray([e.knobs.get(knob, np.nan) for e in self.entries], np.float64), None
    raise AmpSpaceError(
      f"soundspace plot: color_by must be 'device' or 'knob:NAME', got {color_by!r}"
    )


def latent_plot(
  space: SoundSpace, path: str, *, color_by: str = "device", dims: int = 2, title: str = ""
):
  """A scatter of the space (first 2 or 3 latent dimensions), coloured by device or a knob."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  if dims not in (2, 3) or dims > space.embeddings.shape[1]:
    raise AmpSpaceError(
      f"soundspace plot: dims must be 2 or 3 (at most the latent size "
      f"{space.embeddings.shape[1]}), got {dims}"
    )
  values, names = space.colour_values(color_by)
  e = space.embeddings
  fig = plt.figure(figsize=(6.5, 5))
  ax = fig.add_subplot(projection="3d" if dims == 3 else None)
  if dims == 3:
    ax.set_box_aspect(None, zoom=0.85)  # room for the z label beside the colour bar
  coords = [e[:, i] for i in range(dims)]
  if names is not None:
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    for i, name in enumerate(names):
      sel = values == i
      ax.scatter(*[c[sel] for c in coords], s=14, color=cmap(i % cmap.N), label=name)
    ax.legend(fontsize=7, loc="best")
  else:
    known = np.isfinite(values)
    if np.any(~known):
      ax.scatter(*[c[~known] for c in coords], s=8, color="lightgrey", label="no such knob")
    sc = ax.scatter(*[c[known] for c in coords], s=14, c=values[known], cmap="viridis")
    fig.colorbar(sc, ax=ax, label=color_by[5:])
  for i, label in enumerate(("z1", "z2", "z3")[:dims]):
    getattr(ax, f"set_{'xyz'[i]}label")(label)
  ax.set_title(title or f"soundspace coloured by {color_by}")
  fig.tight_layout()
  with atomic_path(path, suffix=".png") as tmp:  # savefig picks the format by the name
    fig.savefig(tmp, dpi=100)
  plt.close(fig)
  return path


# ------------------------------------------------------------------ command line
def main(argv):
  from absl import flags

  from ampspace.data import sources  # TFDS: only the command line reads a dataset itself

  FLAGS = flags.FLAGS
  if not FLAGS["verbosity"].present:
    from absl import logging

    logging.set_verbosity(logging.WARNING)  # TFDS and Orbax are chatty at INFO
  if len(argv) > 1:
    raise AmpSpaceError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS.workdir:
    raise AmpSpaceError("--workdir (a VAE training workdir) is required")
  model, config, step = restore_vae(FLAGS.workdir)
  if FLAGS.index and os.path.exists(FLAGS.index):
    space = SoundSpace.load(FLAGS.index)
  else:
    dataset = config.dataset
    if FLAGS.data_dir:
      dataset.unlock()
      dataset.data_dir = FLAGS.data_dir
    space = SoundSpace.from_source(
      model, sources.open_split(dataset, FLAGS.split), max_records=FLAGS.max_records or None
    )
    if FLAGS.index:
      space.save(FLAGS.index)
  print(f"soundspace of {len(space.entries)} sounds (VAE step {step})")
  if FLAGS.plot:
    root, ext = os.path.splitext(FLAGS.plot)
    for color_by in FLAGS.color_by:
      for dims in (2, 3)[: model.latent_dim - 1]:
        tag = color_by.replace(":", "_")
        print(
          "wrote",
          latent_plot(space, f"{root}_{tag}_{dims}d{ext or '.png'}", color_by=color_by, dims=dims),
        )
  for q in FLAGS.query or []:
    audio, _ = read_wav(q, allow_stereo=True)
    print(f"\n{q}: nearest sounds, and how to make them:")
    for m in space.nearest_to_audio(model, audio, FLAGS.k):
      print("  " + str(m))


def run():
  from absl import app, flags

  flags.DEFINE_string("workdir", None, "A VAE training workdir.")
  flags.DEFINE_string("split", "test", "Which split of the VAE's dataset to index.")
  flags.DEFINE_string("data_dir", "", "Override the dataset's data_dir.")
  flags.DEFINE_integer("max_records", 0, "Index at most this many clips (0: all).")
  flags.DEFINE_string("index", "", "An .npz to save the index to, or load it from if present.")
  flags.DEFINE_multi_string("query", None, "WAV files to find the nearest sounds to.")
  flags.DEFINE_integer("k", 5, "Neighbours per query.")
  flags.DEFINE_string("plot", "", "Path stem for latent plots (PNG).")
  flags.DEFINE_multi_string("color_by", ["device", "knob:gain"], "device or knob:NAME.")
  app.run(report_errors(main), flags_parser=parse_flags_one_line_errors)


if __name__ == "__main__":
  run()
