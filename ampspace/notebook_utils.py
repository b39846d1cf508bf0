"""Small helpers the colab/ notebooks import, so that notebook cells stay short and tested.

Three groups:
  model      ensure_tiny_model, load_model, conditioning_for, mixed_conditioning, knob_sweep,
             audio_strip: load (or train) a checkpoint and render DIs at chosen knob settings;
  mos        read_stimuli, make_mos_stimuli, import_wavs, mos_order, trial_rows, simulated_ratings,
             write_ratings, read_ratings, mos_summary, mos_bar_plot: the paper's
             mean-opinion-score protocol (blind randomised order per listener, 1-5 ratings,
             means with 95% intervals from a bootstrap over listeners; ampspace.listening
             writes the same study as a package to send to listeners);
  dataset    catalog, knob_table, waveform_figure, spectrograms: browsing amp_space.

MOS stimulus folders hold one WAV per (stimulus, condition): `<stimulus>__<condition>.wav`
(two underscores; neither part contains "__"), e.g. `di_0003__wave2wavenet.wav`. The condition
`real_target` is the reference the simulated listener compares against.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import re
import zlib
from typing import Iterable, Mapping, Sequence

import numpy as np

from ampspace import SAMPLE_RATE, conditioning
from ampspace.audio.wav_io import read_wav, write_wav
from ampspace.data import filters
from ampspace.errors import AmpSpaceError

# Imported where used, so that the MOS and dataset helpers and ampspace.listening (which
# imports this module) stay light: the modules behind jax, flax, Grain and TFDS (checkpoints,
# runtime.inference, data.sources, data.pipeline); the ones that pull in scipy.signal (devices,
# which also looks for LV2 plugins, and audio.metrics); quickstart (the render and DI stack, and
# its run reaches the trainers); and ampspace.listening, which would be a cycle.

# ------------------------------------------------------------------------------------ model

TINY_MODEL = dict(num_dis=5, di_seconds=2.0, steps=60, sweep="one_knob:gain=2,5,8")


def _has_checkpoint(train_dir: str) -> bool:
  ckpt = os.path.join(train_dir, "checkpoints")
  return (
    os.path.exists(os.path.join(train_dir, "config.json"))
    and os.path.isdir(ckpt)
    and any(d.isdigit() for d in os.listdir(ckpt))
  )


def find_train_dir(path: str) -> str:
  """The training workdir in `path`: `path` itself (holds config.json) or `path`/train."""
  for candidate in (path, os.path.join(path, "train")):
    if _has_checkpoint(candidate):
      return candidate
  raise AmpSpaceError(
    f"{path}: no training workdir with a checkpoint (config.json and "
    f"checkpoints/<step>) in it or in {os.path.join(path, 'train')}"
  )


def ensure_tiny_model(workdir: str, **overrides) -> str:
  """A training workdir with a checkpoint under `workdir`; trains the quickstart's tiny model
  (5 DIs of 2 s through tube_amp at gains 2/5/8, 60 steps, about a minute on 2 CPU cores)
  when there is none yet. Returns the training workdir (`workdir`/train)."""
  try:
    return find_train_dir(workdir)
  except AmpSpaceError:
    pass
  from ampspace import quickstart

  quickstart.run_quickstart(workdir, **{**TINY_MODEL, **overrides})
  return find_train_dir(workdir)


@dataclasses.dataclass
class LoadedModel:
  """A restored Wave2WaveNet-style model: `model(di, cond)` renders a whole clip."""

  apply: object
  context: tuple[int, int]
  config: object
  step: int
  train_dir: str

  def __call__(self, di: np.ndarray, cond: np.ndarray) -> np.ndarray:
    from ampspace.runtime.inference import run_clip

    return np.clip(run_clip(self.apply, di, cond, self.context), -1.0, 1.0)

  def open_split(self, split: str = "test"):
    from ampspace.data import sources

    return sources.open_split(self.config.dataset, split)


def load_model(path: str, step: int | None = None) -> LoadedModel:
  """Restores the latest (or `step`) checkpoint of a training workdir (or a quickstart workdir)."""
  from absl import logging

  from ampspace import checkpoints
  from ampspace.runtime.inference import make_apply

  train_dir = find_train_dir(path)
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.ERROR)  # Orbax warns that a read-only manager saves nothing
  try:
    r = checkpoints.restore_model(train_dir, step=step)
  finally:
    logging.set_verbosity(verbosity)
  apply = make_apply(r.graphdef, r.params, r.config.loss.get("decode", "expected_value"))
  return LoadedModel(apply, r.context, r.config, r.step, train_dir)


def conditioning_for(device: str, knobs: Mapping[str, float] | None = None) -> np.ndarray:
  """The conditioning vector the dataset stores for `device` at `knobs` (device units, e.g. a
  0..10 dial; knobs not given take the device's defaults), as
  `ampspace.conditioning.conditioning_for` builds it."""
  return conditioning.conditioning_for(device, knobs)


def mixed_conditioning(
  devices: Sequence[str], weights: Sequence[float], knobs: Mapping[str, float] | None = None
) -> np.ndarray:
  """A weighted mix of the devices' conditioning vectors: with weights [0.5, 0.5] the device
  one-hot is [0.5, 0.5] (the paper's Wave2WaveNet interpolation between two amps). Each device
  takes the knobs of `knobs` that it has."""
  if len(devices) != len(weights) or not devices:
    raise AmpSpaceError(f"mixed_conditioning: {len(devices)} devices and {len(weights)} weights")
  w = np.asarray(weights, np.float64)
  if np.any(w < 0) or not np.isclose(w.sum(), 1.0):
    raise AmpSpaceError(f"mixed_conditioning: weights {list(weights)} must be >= 0 and sum to 1")
  from ampspace.devices import get_device

  out = 0.0
  for name, wi in zip(devices, w):
    own = {k: v for k, v in (knobs or {}).items() if k in get_device(name).knob_names}
    out = out + wi * conditioning_for(name, own)
  return np.asarray(out, np.float32)


def knob_sweep(
  model,
  di: np.ndarray,
  device: str,
  knob: str,
  values: Iterable[float],
  knobs: Mapping[str, float] | None = None,
  with_target: bool = True,
) -> list[dict]:
  """For each value of `knob` (the other knobs at `knobs`): the model's prediction and, for a
  native device, the device's own output (the ground truth)."""
  from ampspace.devices import get_device

  dev = get_device(device) if with_target else None
  rows = []
  for v in values:
    setting = {**(knobs or {}), knob: float(v)}
    row = {"value": float(v), "prediction": model(di, conditioning_for(device, setting))}
    if dev is not None:
      row["target"] = dev.process(np.asarray(di, np.float32), setting)
    rows.append(row)
  return rows


def audio_strip(
  clips: Sequence[np.ndarray], gap_seconds: float = 0.25, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
  """Clips one after another with `gap_seconds` of silence between them (one playable strip)."""
  if not len(clips):
    raise AmpSpaceError("audio_strip: no clips")
  gap = np.zeros(int(round(gap_seconds * sample_rate)), np.float32)
  parts = []
  for i, c in enumerate(clips):
    if i:
      parts.append(gap)
    parts.append(np.asarray(c, np.float32))
  return np.concatenate(parts)


def normalise_rms(x: np.ndarray, dbfs: float = -20.0, peak: float = 0.99) -> np.ndarray:
  """Scaled to an RMS of `dbfs` (so loudness does not bias listeners), then down if it would
  peak above `peak`. Silence stays silence."""
  x = np.asarray(x, np.float64)
  rms = np.sqrt(np.mean(x**2))
  if rms < 1e-9:
    return x.astype(np.float32)
  y = x * (10 ** (dbfs / 20) / rms)
  top = np.max(np.abs(y))
  if top > peak:
    y *= peak / top
  return y.astype(np.float32)


def lowpass_anchor(
  x: np.ndarray, cutoff_hz: float = 3500.0, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
  """The MUSHRA low-quality anchor: the signal low-passed at 3.5 kHz."""
  import scipy.signal

  sos = scipy.signal.butter(8, cutoff_hz, btype="low", fs=sample_rate, output="sos")
  return scipy.signal.sosfiltfilt(sos, np.asarray(x, np.float64)).astype(np.float32)


# -------------------------------------------------------------------------------------- mos

STIMULUS_RE = re.compile(
  r"^(?P<stimulus>[A-Za-z0-9.\-]+(?:_[A-Za-z0-9.\-]+)*)__"
  r"(?P<condition>[A-Za-z0-9.\-]+(?:_[A-Za-z0-9.\-]+)*)\.wav$"
)
REFERENCE = "real_target"
RATING_COLUMNS = ("listener", "trial", "stimulus", "condition", "file", "rating", "rater", "seed")


@dataclasses.dataclass(frozen=True)
class Stimulus:
  stimulus: str
  condition: str
  path: str


def read_stimuli(folder: str) -> list[Stimulus]:
  """Every `<stimulus>__<condition>.wav` in `folder`, sorted; other names are an error."""
  if not os.path.isdir(folder):
    raise AmpSpaceError(f"{folder}: not a folder of MOS stimuli")
  out = []
  for name in sorted(os.listdir(folder)):
    if not name.lower().endswith(".wav"):
      continue
    m = STIMULUS_RE.match(name)
    if not m:
      raise AmpSpaceError(f"{os.path.join(folder, name)}: not named <stimulus>__<condition>.wav")
    out.append(Stimulus(m["stimulus"], m["condition"], os.path.join(folder, name)))
  if not out:
    raise AmpSpaceError(f"{folder}: no <stimulus>__<condition>.wav files")
  return out


def make_mos_stimuli(
  model: LoadedModel,
  out_dir: str,
  *,
  device: str = "tube_amp",
  other_device: str = "tube_amp_fender",
  knobs: Mapping[str, float] | None = None,
  num_stimuli: int = 3,
  seconds: float = 1.5,
  splits: Sequence[str] = ("test",),
) -> list[Stimulus]:
  """Writes a small MOS set from the first `num_stimuli` distinct DIs of `splits` (in order):

    real_target    the DI through `device` at `knobs` (default gain 5);
    wave2wavenet   the model's prediction for the same setting;
    interpolation  the model with the device one-hot at [0.5, 0.5] of `device`/`other_device`;
    anchor         the real target low-passed at 3.5 kHz (low-quality anchor).
  Every stimulus is RMS-normalised to -20 dBFS."""
  from ampspace.data.pipeline import decode_audio
  from ampspace.devices import get_device

  knobs = dict(knobs or {"gain": 5.0})
  dev = get_device(device)
  cond = conditioning_for(device, knobs)
  mixed = mixed_conditioning([device, other_device], [0.5, 0.5], knobs)
  seen: list[str] = []
  n = int(seconds * SAMPLE_RATE)
  for split in splits:
    source = model.open_split(split)
    for i in range(len(source)):
      if len(seen) == num_stimuli:
        return read_stimuli(out_dir)
      record = source[i]
      di_id = filters.text(record["di_id"])
      if di_id in seen:
        continue
      seen.append(di_id)
      di = decode_audio(record, "di")[:n]
      stim = re.sub(r"_{2,}", "_", re.sub(r"[^A-Za-z0-9._\-]+", "-", di_id)).strip("-_")
      stim = stim or f"{split}{i}"
      target = dev.process(di, knobs)
      for condition, audio in (
        ("real_target", target),
        ("wave2wavenet", model(di, cond)),
        ("interpolation", model(di, mixed)),
        ("anchor", lowpass_anchor(target)),
      ):
        write_wav(os.path.join(out_dir, f"{stim}__{condition}.wav"), normalise_rms(audio))
  if not seen:
    raise AmpSpaceError(f"make_mos_stimuli: splits {list(splits)} hold no DI")
  return read_stimuli(out_dir)


def import_wavs(
  folder: str,
  out_dir: str,
  stimulus: str,
  reference: str | None = None,
  skip: Sequence[str] = ("di",),
) -> list[Stimulus]:
  """Brings a folder of plain WAVs into a MOS set as conditions of one `stimulus`: `x.wav`
  becomes `<stimulus>__x.wav` (RMS-normalised like the generated stimuli), `reference.wav`
  becomes `<stimulus>__real_target.wav`, stems in `skip` are left out. For example
  launch/interpolation.py's OUT/mos (vae_mid, w2w_mid, crossfade_mid, ..., real_A_gain5)."""
  stems = sorted(n[:-4] for n in os.listdir(folder) if n.lower().endswith(".wav"))
  if reference is not None and reference not in stems:
    raise AmpSpaceError(f"import_wavs: reference {reference}.wav not in {folder}")
  written = 0
  for stem in stems:
    if stem in skip:
      continue
    condition = REFERENCE if stem == reference else stem
    name = f"{stimulus}__{condition}.wav"
    if not STIMULUS_RE.match(name):
      raise AmpSpaceError(
        f"import_wavs: {os.path.join(folder, stem)}.wav gives the name {name!r},"
        f" not <stimulus>__<condition>.wav"
      )
    write_wav(
      os.path.join(out_dir, name), normalise_rms(read_wav(os.path.join(folder, stem + ".wav"))[0])
    )
    written += 1
  if not written:
    raise AmpSpaceError(f"import_wavs: no WAVs to import in {folder}")
  return read_stimuli(out_dir)


def _listener_ids(listeners) -> list[str]:
  if isinstance(listeners, (int, np.integer)):
    return [f"L{i:02d}" for i in range(int(listeners))]
  return [str(x) for x in listeners]


def mos_order(listeners, stimuli: Sequence, seed: int) -> dict[str, list]:
  """A blind, randomised presentation order of `stimuli` for every listener.

  `listeners` is a count (ids L00, L01, ...) or a list of ids. Each listener's order depends on
  `seed` and the listener's id only, so adding a listener does not reshuffle the others and
  the same seed gives the same orders."""
  ids = _listener_ids(listeners)
  if len(set(ids)) != len(ids):
    raise AmpSpaceError(f"mos_order: duplicate listener ids in {ids}")
  items = list(stimuli)
  orders = {}
  for lid in ids:
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(lid.encode())]))
    orders[lid] = [items[j] for j in rng.permutation(len(items))]
  return orders


def trial_rows(orders: Mapping[str, Sequence[Stimulus]], seed: int) -> list[dict]:
  """One unrated row per (listener, trial) in presentation order; the listener sees only the
  trial number and the audio, never `condition` or `file`."""
  return [
    {
      "listener": lid,
      "trial": t + 1,
      "stimulus": s.stimulus,
      "condition": s.condition,
      "file": os.path.basename(s.path),
      "rating": None,
      "rater": "",
      "seed": int(seed),
    }
    for lid, order in orders.items()
    for t, s in enumerate(order)
  ]


def simulated_ratings(
  rows: Sequence[dict],
  folder: str,
  seed: int,
  *,
  scale: float = 2.0,
  listener_sd: float = 0.3,
  trial_sd: float = 0.5,
) -> list[dict]:
  """SIMULATED listeners, for headless runs and tests: NOT human opinion.

  Each rating is 1 + 4·exp(-d / scale), d the MR-STFT distance of the stimulus to the same
  stimulus's `real_target` (5 for the reference itself, towards 1 as d grows), plus a
  per-listener bias N(0, listener_sd) and per-trial noise N(0, trial_sd), rounded and clipped
  to 1..5. Deterministic for `seed`; rows are marked rater=simulated."""
  from ampspace.audio.metrics import mr_stft

  cache: dict[str, np.ndarray] = {}

  def audio(name: str) -> np.ndarray:
    if name not in cache:
      cache[name] = read_wav(os.path.join(folder, name))[0]
    return cache[name]

  rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5157]))
  bias = {lid: rng.normal(0.0, listener_sd) for lid in sorted({r["listener"] for r in rows})}
  out = []
  for r in rows:
    ref = f"{r['stimulus']}__{REFERENCE}.wav"
    if not os.path.exists(os.path.join(folder, ref)):
      raise AmpSpaceError(
        f"simulated_ratings: {ref} missing in {folder}; the simulated listener "
        f"needs each stimulus's {REFERENCE}"
      )
    a, b = audio(ref), audio(r["file"])
    n = min(len(a), len(b))
    expected = 1.0 + 4.0 * np.exp(-mr_stft(a[:n], b[:n]) / scale)
    score = expected + bias[r["listener"]] + rng.normal(0.0, trial_sd)
    out.append({**r, "rating": int(np.clip(np.rint(score), 1, 5)), "rater": "simulated"})
  return out


def write_ratings(path: str, rows: Sequence[dict]) -> str:
  """Ratings as CSV with RATING_COLUMNS (rows without a rating are an error)."""
  for r in rows:
    if r.get("rating") is None:
      raise AmpSpaceError(f"write_ratings: listener {r['listener']} trial {r['trial']} unrated")
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=RATING_COLUMNS, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
  return path


def read_ratings(path: str) -> list[dict]:
  """Rows of a ratings CSV; ratings must be integers 1..5."""
  with open(path, newline="") as f:
    reader = csv.DictReader(f)
    missing = [c for c in ("listener", "condition", "rating") if c not in (reader.fieldnames or [])]
    if missing:
      raise AmpSpaceError(f"{path}: missing columns {missing}")
    rows = list(reader)
  for i, r in enumerate(rows):
    try:
      r["rating"] = int(r["rating"])
    except ValueError:
      raise AmpSpaceError(
        f"{path}: row {i + 2}: rating {r['rating']!r} is not an integer"
      ) from None
    if not 1 <= r["rating"] <= 5:
      raise AmpSpaceError(f"{path}: row {i + 2}: rating {r['rating']} outside 1..5")
  return rows


def mos_summary(
  ratings,
  confidence: float = 0.95,
  method: str = "listener_bootstrap",
  n_boot: int = 2000,
  seed: int = 0,
) -> list[dict]:
  """Per condition: n, listeners, mean, sd and a confidence interval of the mean (ci_low,
  ci_high; ci_half is half its width), best mean first. `ratings`: a CSV path or rows.

  method "listener_bootstrap" (default): resamples listeners with replacement, each with all
  of their ratings (ampspace.listening.listener_bootstrap_ci), so a listener who rates
  everything high or low counts once, not once per rating; seeded by `seed`. method "t": the
  t interval mean ± t_{(1+c)/2, n-1}·sd/√n over all ratings, which treats every rating as
  independent and is too narrow when listeners differ."""
  from ampspace.listening import mos_listener_bootstrap

  rows = read_ratings(ratings) if isinstance(ratings, (str, os.PathLike)) else list(ratings)
  if not rows:
    raise AmpSpaceError("mos_summary: no ratings")
  return mos_listener_bootstrap(rows, ("condition",), confidence, n_boot, seed, method=method)


_SUMMARY_STATS = ("n", "listeners", "mean", "sd", "ci_half", "ci_low", "ci_high", "method")


def summary_markdown(summary: Sequence[dict], confidence: float = 0.95) -> str:
  """A markdown table of a summary: its cell columns (condition, and group or setting where
  present), n, listeners, MOS and the interval."""
  keys = [k for k in summary[0] if k not in _SUMMARY_STATS] if summary else ["condition"]
  head = f"| {' | '.join(keys)} | n | listeners | MOS | {100 * confidence:g}% CI |"
  lines = [head, "|" + "---|" * len(keys) + "---:|---:|---:|---|"]
  for s in summary:
    cells = " | ".join(str(s[k]) for k in keys)
    lines.append(
      f"| {cells} | {s['n']} | {s.get('listeners', '')} | {s['mean']:.2f} | "
      f"[{s['ci_low']:.2f}, {s['ci_high']:.2f}] |"
    )
  return "\n".join(lines) + "\n"


def mos_bar_plot(summary: Sequence[dict], path: str | None = None, title: str = "MOS (95% CI)"):
  """Bar plot of the means with their intervals (ci_low..ci_high, which a bootstrap interval
  need not centre on the mean) as error bars; saved as PNG when `path` is given."""
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(1.4 * len(summary) + 2, 3.6))
  names = [s["condition"] for s in summary]
  means = [s["mean"] for s in summary]
  below = [0.0 if np.isnan(s["ci_low"]) else max(s["mean"] - s["ci_low"], 0.0) for s in summary]
  above = [0.0 if np.isnan(s["ci_high"]) else max(s["ci_high"] - s["mean"], 0.0) for s in summary]
  ax.bar(names, means, yerr=[below, above], capsize=6, color="tab:blue", alpha=0.8)
  ax.set_ylim(0.5, 5.5)  # a t interval may reach past the 1..5 scale
  ax.set_ylabel("rating (1-5)")
  ax.set_title(title)
  ax.grid(axis="y", alpha=0.3)
  fig.tight_layout()
  if path:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
  return fig


def rating_form(rows: Sequence[dict], folder: str, csv_path: str):
  """An ipywidgets form for a human listener: trial number, audio player and a 1-5 choice per
  trial, and a button that writes the ratings CSV (rater=human). None without ipywidgets."""
  try:
    import ipywidgets as w
  except ImportError:
    return None
  from IPython.display import Audio

  status = w.Label("")
  items, choices = [], []
  for r in rows:
    out = w.Output()
    with out:
      from IPython.display import display

      display(Audio(os.path.join(folder, r["file"]), rate=SAMPLE_RATE))
    choice = w.ToggleButtons(options=[1, 2, 3, 4, 5], value=None, description=f"trial {r['trial']}")
    choices.append(choice)
    items.append(w.VBox([out, choice]))

  def save(_=None):
    rated = [{**r, "rating": c.value, "rater": "human"} for r, c in zip(rows, choices)]
    left = sum(r["rating"] is None for r in rated)
    if left:
      status.value = f"{left} trials not rated yet"
      return
    write_ratings(csv_path, rated)
    status.value = f"saved {len(rated)} ratings to {csv_path}"

  button = w.Button(description="Save ratings")
  button.on_click(save)
  return w.VBox(items + [w.HBox([button, status])])


# ---------------------------------------------------------------------------------- dataset


def catalog(source) -> list[dict]:
  """One row per record of a data source (no audio decoded): index, device, source, DI, knobs."""
  return [{"index": i, **a} for i, a in enumerate(filters.annotations(source))]


def knob_table(rows: Sequence[dict], knob: str) -> dict[str, dict[float, int]]:
  """{device: {knob value: record count}} for one knob (devices without it are left out)."""
  table: dict[str, dict[float, int]] = {}
  for r in rows:
    if knob in r["knobs"]:
      per = table.setdefault(r["device"], {})
      v = r["knobs"][knob]
      per[v] = per.get(v, 0) + 1
  return {d: dict(sorted(c.items())) for d, c in sorted(table.items())}


def select(
  rows: Sequence[dict], device: str | None = None, di_id: str | None = None, **knobs: float
) -> list[int]:
  """Indices of the catalog rows matching a device, a DI and knob values (device units)."""
  wanted = {k: [v] for k, v in knobs.items()}
  return [r["index"] for r in rows if filters.matches(r, device=device, di_id=di_id, knobs=wanted)]


def waveform_figure(signals: Mapping[str, np.ndarray], sample_rate: int = SAMPLE_RATE):
  """Waveforms stacked, one axis per named signal, shared time axis."""
  import matplotlib.pyplot as plt

  fig, axes = plt.subplots(
    len(signals), 1, figsize=(9, 1.8 * len(signals)), sharex=True, squeeze=False
  )
  for ax, (name, x) in zip(axes[:, 0], signals.items()):
    t = np.arange(len(x)) / sample_rate
    ax.plot(t, x, lw=0.5)
    ax.set_ylim(-1.05, 1.05)
    ax.set_title(name, fontsize=9)
  axes[-1, 0].set_xlabel("time (s)")
  fig.tight_layout()
  return fig


def spectrograms(
  signals: Mapping[str, np.ndarray], side_by_side: bool = True, sample_rate: int = SAMPLE_RATE
):
  """Log-frequency dB spectrograms, one axis per named signal (columns when `side_by_side`,
  else stacked rows), on one colour scale so levels compare across signals."""
  import librosa
  import librosa.display  # noqa: F401  (registers specshow)
  import matplotlib.pyplot as plt

  specs = {
    name: librosa.amplitude_to_db(
      np.abs(librosa.stft(np.asarray(x, np.float32), n_fft=1024, hop_length=256)),
      ref=1.0,
      top_db=None,
    )
    for name, x in signals.items()
  }
  vmax = max(float(s.max()) for s in specs.values())
  n = len(specs)
  shape, size = ((1, n), (4 * n, 3.2)) if side_by_side else ((n, 1), (10, 2.4 * n))
  fig, axes = plt.subplots(*shape, figsize=size, squeeze=False, sharey=side_by_side)
  for ax, (name, s) in zip(axes.ravel(), specs.items()):
    librosa.display.specshow(
      s,
      sr=sample_rate,
      hop_length=256,
      x_axis="time",
      y_axis="log",
      ax=ax,
      vmin=vmax - 90,
      vmax=vmax,
    )
    ax.set_title(name)
  fig.tight_layout()
  return fig
