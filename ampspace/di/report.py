"""Diversity report of a DI corpus (report.json + report.png), so a user sees what it covers.

Per passage: the pitches it plays (YIN f0 on frames that are loud enough and stable, rounded
to MIDI notes), RMS level and crest factor (peak over RMS, both in dB: how dynamic the
playing is), and the energy-weighted spectral centroid (how bright it is). The same audio
measurements serve rendered and user passages alike. Features are cached in report.json by
the file's sha256, so a rerun after adding passages only analyses the new ones.

  python -m ampspace.di.report --corpus=DIR
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
from tqdm import tqdm

from ampspace import SAMPLE_RATE
from ampspace.audio.wav_io import read_wav
from ampspace.di import corpus as corpus_lib
from ampspace.errors import AmpSpaceError, report_errors
from ampspace.files import atomic_path, write_json_atomic

REPORT_JSON, REPORT_PNG = "report.json", "report.png"
PITCH_LO, PITCH_HI = 36, 96  # histogram range (MIDI), a little wider than E2–E6
ANALYSIS_RATE = 22050
FRAME, HOP = 2048, 512


def pitch_track(x: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
  """MIDI note numbers (float) of frames with a clear, steady pitch; empty if none.

  YIN has no voicing decision, so a frame counts when it is within 30 dB of the loudest frame
  and its f0 agrees with both neighbours to within half a semitone (noise and chord
  transients jump around; a sustained note does not).
  """
  import librosa

  y = librosa.resample(
    np.asarray(x, np.float32), orig_sr=sr, target_sr=ANALYSIS_RATE, res_type="polyphase"
  )
  if len(y) < FRAME:
    return np.zeros(0)
  f0 = librosa.yin(
    y, fmin=70.0, fmax=1500.0, sr=ANALYSIS_RATE, frame_length=FRAME, hop_length=HOP, center=True
  )
  rms = librosa.feature.rms(y=y, frame_length=FRAME, hop_length=HOP, center=True)[0]
  n = min(len(f0), len(rms))
  f0, rms = f0[:n], rms[:n]
  midi = 69 + 12 * np.log2(np.maximum(f0, 1e-6) / 440.0)
  loud = 20 * np.log10(np.maximum(rms, 1e-10)) > 20 * np.log10(max(rms.max(), 1e-10)) - 30
  steady = np.zeros(n, bool)
  if n >= 3:
    steady[1:-1] = (np.abs(midi[1:-1] - midi[:-2]) < 0.5) & (np.abs(midi[1:-1] - midi[2:]) < 0.5)
  return midi[loud & steady]


def passage_features(x: np.ndarray, sr: int = SAMPLE_RATE) -> dict:
  """RMS (dBFS), crest factor (dB), spectral centroid (Hz) and pitch counts of one passage."""
  import librosa

  x = np.asarray(x, np.float64)
  rms = float(np.sqrt(np.mean(x**2)))
  peak = float(np.max(np.abs(x)))
  spec = np.abs(librosa.stft(x.astype(np.float32), n_fft=FRAME, hop_length=HOP)) ** 2
  freqs = librosa.fft_frequencies(sr=sr, n_fft=FRAME)
  energy = spec.sum(axis=0)
  centroid_frames = (freqs[:, None] * spec).sum(axis=0) / np.maximum(energy, 1e-20)
  centroid = float(np.sum(centroid_frames * energy) / max(energy.sum(), 1e-20))
  notes = np.round(pitch_track(x, sr)).astype(int)
  counts = np.bincount(
    np.clip(notes, PITCH_LO, PITCH_HI) - PITCH_LO, minlength=PITCH_HI - PITCH_LO + 1
  )
  return {
    "rms_dbfs": 20 * np.log10(max(rms, 1e-10)),
    "crest_db": 20 * np.log10(max(peak, 1e-10) / max(rms, 1e-10)),
    "centroid_hz": centroid,
    "pitch_counts": counts.tolist(),
  }


def _hist(values, bins):
  counts, edges = np.histogram(np.asarray(values, float), bins=bins)
  return {"counts": counts.tolist(), "edges": [round(float(e), 3) for e in edges]}


def _summary(values) -> dict:
  v = np.asarray(values, float)
  if not len(v):
    return {}
  p = np.percentile(v, [5, 25, 50, 75, 95])
  return {
    "mean": float(v.mean()),
    "min": float(v.min()),
    "max": float(v.max()),
    **{f"p{q}": float(x) for q, x in zip((5, 25, 50, 75, 95), p)},
  }


def summarise(entries: list[dict], features: dict[str, dict]) -> dict:
  """The report's JSON body: coverage counts, histograms and percentiles."""
  feats = [features[e["id"]] for e in entries]
  pitch = (
    np.sum([f["pitch_counts"] for f in feats], axis=0)
    if feats
    else np.zeros(PITCH_HI - PITCH_LO + 1, int)
  )
  count = lambda key: dict(
    sorted(
      {
        str(k): sum(1 for e in entries if str(e.get(key)) == str(k))
        for k in {e.get(key) for e in entries}
      }.items()
    )
  )
  rms = [f["rms_dbfs"] for f in feats]
  crest = [f["crest_db"] for f in feats]
  cent = [f["centroid_hz"] for f in feats]
  tempos = [e["tempo"] for e in entries if e.get("tempo") is not None]
  return {
    "passages": len(entries),
    "minutes": sum(e["end"] - e["start"] for e in entries) / SAMPLE_RATE / 60.0,
    "by_program": count("program_name"),
    "by_style": count("style"),
    "by_source": {
      "generated": sum(e["source"] == "generated" for e in entries),
      "music21": sum(e["source"].startswith("music21:") for e in entries),
      "user": sum(e["source"].startswith("user:") for e in entries),
    },
    "pitch_histogram": {"midi": list(range(PITCH_LO, PITCH_HI + 1)), "frames": pitch.tolist()},
    "rms_dbfs": {**_summary(rms), "histogram": _hist(rms, np.arange(-60, 1, 3))},
    "crest_db": {**_summary(crest), "histogram": _hist(crest, np.arange(0, 42, 2))},
    "centroid_hz": {**_summary(cent), "histogram": _hist(cent, np.geomspace(100, 8000, 25))},
    "tempo_bpm": _summary(tempos),
  }


def _plot(summary: dict, path: str) -> None:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(2, 2, figsize=(11, 7))
  ph = summary["pitch_histogram"]
  ax[0, 0].bar(ph["midi"], ph["frames"], width=0.9, color="tab:blue")
  ax[0, 0].axvspan(40, 88, color="tab:green", alpha=0.08, label="E2–E6")
  ax[0, 0].set(title="Pitch (YIN frames per MIDI note)", xlabel="MIDI note", ylabel="frames")
  ax[0, 0].legend()
  for a, key, title, unit in (
    (ax[0, 1], "rms_dbfs", "RMS level", "dBFS"),
    (ax[1, 0], "crest_db", "Crest factor", "dB"),
    (ax[1, 1], "centroid_hz", "Spectral centroid", "Hz"),
  ):
    h = summary[key]["histogram"]
    e = np.asarray(h["edges"])
    a.bar(
      e[:-1], h["counts"], width=np.diff(e), align="edge", color="tab:orange", edgecolor="white"
    )
    a.set(title=title, xlabel=unit, ylabel="passages")
    if key == "centroid_hz":
      a.set_xscale("log")
  fig.suptitle(f"DI corpus: {summary['passages']} passages, {summary['minutes']:.1f} min")
  fig.tight_layout()
  try:
    with atomic_path(path, suffix=".png") as tmp:
      fig.savefig(tmp, dpi=90, format="png")
  finally:
    plt.close(fig)


def write_report(out: str, *, progress: bool = True) -> dict:
  """Analyses every passage in the manifest (reusing cached features) and writes the report."""
  entries = sorted(corpus_lib.read_manifest(out)["passages"].values(), key=lambda e: e["id"])
  json_path = os.path.join(out, REPORT_JSON)
  cache = {}
  if os.path.exists(json_path):
    try:
      with open(json_path) as f:
        cache = json.load(f).get("features", {})
    except (OSError, ValueError):
      cache = {}
  features = {}
  for e in tqdm(entries, desc="DI report", unit="DI", disable=not progress, file=sys.stderr):
    cached = cache.get(e["id"])
    if cached and cached.get("sha256") == e["sha256"]:
      features[e["id"]] = cached
      continue
    x, _ = read_wav(os.path.join(out, e["file"]))
    features[e["id"]] = {"sha256": e["sha256"], **passage_features(x)}
  summary = summarise(entries, features)
  write_json_atomic(json_path, {"summary": summary, "features": features})
  _plot(summary, os.path.join(out, REPORT_PNG))
  return summary


def main(argv=None) -> None:
  import argparse

  @report_errors
  def run():
    parser = argparse.ArgumentParser(description="Diversity report of a DI corpus folder.")
    parser.add_argument("--corpus", required=True, help="folder with manifest.json")
    args = parser.parse_args(argv)
    if not os.path.exists(corpus_lib.manifest_path(args.corpus)):
      raise AmpSpaceError(f"{corpus_lib.manifest_path(args.corpus)}: no manifest")
    s = write_report(args.corpus)
    print(f"report of {s['passages']} passages: {os.path.join(args.corpus, REPORT_PNG)}")

  run()


if __name__ == "__main__":
  main()
