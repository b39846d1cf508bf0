"""Write a DI corpus folder: passage WAVs at the top level plus `manifest.json` beside them.

The folder is what `python -m ampspace.render --di=DIR` reads (DIR/*.wav). Writing is
idempotent and resumable: every WAV is written atomically and the manifest is rewritten
atomically after each batch, so an interrupted run leaves only complete files; a rerun skips
passages that are in the manifest with their file present, and re-creates the rest with the
same bytes (rendering is deterministic for a seed, and phrases are batched in fixed groups).
A larger --minutes or another --from adds passages; nothing is deleted.

Levels: every passage is scaled so its peak is `peak_dbfs` (default -6 dBFS, 0.5), like the
Karplus-Strong DIs, leaving headroom for devices that add gain before they clip.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import os
import sys

import numpy as np
from tqdm import tqdm

from ampspace import SAMPLE_RATE
from ampspace.audio.wav_io import write_wav
from ampspace.di import fluidsynth_render, karplus
from ampspace.di import phrases as phrases_lib
from ampspace.di import user_di
from ampspace.errors import AmpSpaceError
from ampspace.files import sha256_file, write_json_atomic

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "ampspace-di-manifest"
PEAK_DBFS = -6.0
FADE_IN_SECONDS, FADE_OUT_SECONDS = 0.002, 0.05  # no clicks at the cut points
GROUP = 32  # phrases rendered by one FluidSynth process; fixed so reruns batch identically
ENGINES = ("fluidsynth", "karplus")
ENGINE_PREFIX = {"fluidsynth": "fs", "karplus": "ks"}
REQUIRED_FIELDS = ("id", "file", "source", "program", "tempo", "key", "start", "end", "sha256")


# ---------------------------------------------------------------------------------------------
# levels


def finish_level(x: np.ndarray, peak_dbfs: float, where: str) -> np.ndarray:
  """Fades the ends and scales the peak to `peak_dbfs`; a silent passage is an error."""
  x = np.asarray(x, np.float64).copy()
  n_in, n_out = (
    min(len(x), int(FADE_IN_SECONDS * SAMPLE_RATE)),
    min(len(x), int(FADE_OUT_SECONDS * SAMPLE_RATE)),
  )
  x[:n_in] *= 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n_in))
  x[len(x) - n_out :] *= 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, n_out))
  peak = float(np.max(np.abs(x))) if len(x) else 0.0
  if not np.isfinite(peak):
    raise AmpSpaceError(f"{where}: audio contains NaN or Inf")
  if peak < 1e-6:
    raise AmpSpaceError(f"{where}: passage is silent")
  return (x * (10 ** (peak_dbfs / 20) / peak)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# manifest


def manifest_path(out: str) -> str:
  return os.path.join(out, MANIFEST)


def read_manifest(out: str) -> dict:
  """The manifest as {"peak_dbfs", "passages": {id: entry}, "user_files": {...}}; empty if none."""
  path = manifest_path(out)
  if not os.path.exists(path):
    return {"peak_dbfs": None, "passages": {}, "user_files": {}}
  try:
    with open(path) as f:
      data = json.load(f)
  except (OSError, ValueError) as e:
    raise AmpSpaceError(f"{path}: cannot read manifest ({e})") from None
  if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
    raise AmpSpaceError(f"{path}: not an Amp-Space DI manifest (format != {MANIFEST_FORMAT})")
  passages = {}
  for i, e in enumerate(data.get("passages", [])):
    missing = [k for k in REQUIRED_FIELDS if k not in e]
    if missing:
      raise AmpSpaceError(f"{path}: passage {i} lacks {', '.join(missing)}")
    passages[e["id"]] = e
  return {
    "peak_dbfs": data.get("peak_dbfs"),
    "passages": passages,
    "user_files": data.get("user_files", {}),
  }


def write_manifest(out: str, manifest: dict) -> None:
  """Atomically writes the manifest, passages sorted by id."""
  data = {
    "format": MANIFEST_FORMAT,
    "version": 1,
    "sample_rate": SAMPLE_RATE,
    "peak_dbfs": manifest["peak_dbfs"],
    "passages": [manifest["passages"][k] for k in sorted(manifest["passages"])],
    "user_files": {k: manifest["user_files"][k] for k in sorted(manifest["user_files"])},
  }
  write_json_atomic(manifest_path(out), data, indent=1)


def check_manifest(out: str, *, verify_hashes: bool = True) -> list[dict]:
  """Integrity: every entry's file exists with its sha256 and length, ids and files are
  unique, every top-level WAV is listed, and user passages from one source never overlap.
  Returns the entries; raises AmpSpaceError naming the first problem."""
  import soundfile as sf

  path = manifest_path(out)
  entries = list(read_manifest(out)["passages"].values())
  files = [e["file"] for e in entries]
  if len(set(files)) != len(files):
    raise AmpSpaceError(f"{path}: two passages share a file")
  for e in entries:
    wav = os.path.join(out, e["file"])
    if not os.path.exists(wav):
      raise AmpSpaceError(f"{wav}: listed in the manifest but missing")
    if verify_hashes and sha256_file(wav) != e["sha256"]:
      raise AmpSpaceError(f"{wav}: sha256 differs from the manifest")
    if sf.info(wav).frames != e["end"] - e["start"]:
      raise AmpSpaceError(f"{wav}: length differs from the manifest's end - start")
  listed = set(files)
  extra = sorted(f for f in os.listdir(out) if f.endswith(".wav") and f not in listed)
  if extra:
    raise AmpSpaceError(f"{os.path.join(out, extra[0])}: WAV not listed in the manifest")
  by_source: dict[str, list[tuple[int, int]]] = {}
  for e in entries:
    if e["source"].startswith("user:"):
      by_source.setdefault(e["source"], []).append((e["start"], e["end"]))
  for source, spans in by_source.items():
    spans.sort()
    for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
      if b0 < a1:
        raise AmpSpaceError(f"{path}: passages of {source} overlap ({a0}-{a1}, {b0}-{b1})")
  return entries


# ---------------------------------------------------------------------------------------------
# writing


def _write_passage(out: str, manifest: dict, entry: dict, audio: np.ndarray) -> None:
  wav = os.path.join(out, entry["file"])
  write_wav(wav, audio)
  entry["sha256"] = sha256_file(wav)
  manifest["passages"][entry["id"]] = entry


def _have(out: str, manifest: dict, pid: str, verify: bool) -> bool:
  e = manifest["passages"].get(pid)
  if e is None:
    return False
  wav = os.path.join(out, e["file"])
  return os.path.exists(wav) and (not verify or sha256_file(wav) == e["sha256"])


def _render_group(engine: str, group: list, soundfont: str | None) -> list[np.ndarray]:
  if engine == "fluidsynth":
    return fluidsynth_render.render_phrases(group, soundfont)
  return [karplus.render_notes(p) for p in group]


def _phrase_entry(p, engine_label: str, seconds: float, peak_dbfs: float) -> dict:
  return {
    "id": p.id,
    "file": p.id + ".wav",
    "source": "generated" if p.source == "generated" else f"music21:{p.source}",
    "engine": engine_label,
    "style": p.style,
    "program": p.program,
    "program_name": p.program_name,
    "tempo": p.tempo,
    "key": p.key,
    "start": 0,
    "end": int(round(seconds * SAMPLE_RATE)),
    "seed": p.seed,
    "index": p.index,
    "peak_dbfs": peak_dbfs,
    "sha256": "",
  }


def write_rendered(
  out: str,
  manifest: dict,
  *,
  minutes: float,
  seed: int,
  engine: str,
  seconds: float,
  peak_dbfs: float,
  soundfont: str | None,
  workers: int,
  verify: bool,
  progress: bool,
) -> int:
  """Renders ceil(minutes·60/seconds) phrases; returns how many were written this run."""
  if engine not in ENGINES:
    raise AmpSpaceError(f"--engine={engine}: unknown engine (choose from {', '.join(ENGINES)})")
  n = int(math.ceil(minutes * 60.0 / seconds)) if minutes > 0 else 0
  prefix = ENGINE_PREFIX[engine]
  ids = [f"{prefix}_{seed}_{i:05d}" for i in range(n)]
  todo_groups = []
  for g0 in range(0, n, GROUP):
    members = list(range(g0, min(n, g0 + GROUP)))
    if any(not _have(out, manifest, ids[i], verify) for i in members):
      todo_groups.append(members)
  if not todo_groups:
    return 0
  if engine == "fluidsynth":
    fluidsynth_render.find_fluidsynth()
    sf2 = fluidsynth_render.find_soundfont(soundfont)
    label = f"fluidsynth:{os.path.basename(sf2)}"
  else:
    sf2, label = None, "karplus"
  todo = sum(1 for g in todo_groups for i in g if not _have(out, manifest, ids[i], verify))
  bar = tqdm(total=todo, desc="render DIs", unit="DI", disable=not progress, file=sys.stderr)
  written = 0
  # Phrases are made in this thread (music21 and its caches are not thread-safe); FluidSynth
  # runs as subprocesses, so threads are enough to keep several cores busy.
  with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
    futures = {}
    for members in todo_groups:
      group = [phrases_lib.make_phrase(seed, i, seconds, prefix=prefix) for i in members]
      futures[pool.submit(_render_group, engine, group, sf2)] = group
    for fut in concurrent.futures.as_completed(futures):
      group = futures[fut]
      for p, audio in zip(group, fut.result()):
        if _have(out, manifest, p.id, verify):
          continue
        audio = finish_level(audio, peak_dbfs, os.path.join(out, p.id + ".wav"))
        _write_passage(out, manifest, _phrase_entry(p, label, seconds, peak_dbfs), audio)
        written += 1
        bar.update()
      write_manifest(out, manifest)
  bar.close()
  return written


def write_user(
  out: str,
  manifest: dict,
  *,
  from_dir: str,
  seconds: float,
  peak_dbfs: float,
  normalise: bool,
  verify: bool,
  progress: bool,
) -> int:
  """Splits every WAV/FLAC under `from_dir` into passages; returns how many were written."""
  files = user_di.find_audio_files(from_dir)
  written = 0
  bar = tqdm(files, desc="user DIs", unit="file", disable=not progress, file=sys.stderr)
  for path in bar:
    rel = os.path.relpath(path, from_dir)
    digest = sha256_file(path)
    known = manifest["user_files"].get(f"{rel}:{digest}")
    if known and all(_have(out, manifest, pid, verify) for pid in known):
      continue
    x = user_di.load_audio(path, warn=lambda m: tqdm.write(f"warning: {m}", file=sys.stderr))
    passages = user_di.passages_of(x, path, rel, target=seconds)
    for p in passages:
      if _have(out, manifest, p.id, verify):
        continue
      clip = x[p.start : p.end]
      where = os.path.join(out, p.id + ".wav")
      clip = finish_level(clip, peak_dbfs, where) if normalise else clip
      entry = {
        "id": p.id,
        "file": p.id + ".wav",
        "source": f"user:{rel}",
        "engine": None,
        "style": None,
        "program": None,
        "program_name": None,
        "tempo": None,
        "key": None,
        "start": p.start,
        "end": p.end,
        "source_sha256": digest,
        "peak_dbfs": peak_dbfs if normalise else None,
        "sha256": "",
      }
      _write_passage(out, manifest, entry, clip)
      written += 1
    manifest["user_files"][f"{rel}:{digest}"] = [p.id for p in passages]
    write_manifest(out, manifest)
  return written


def build_corpus(
  out: str,
  *,
  minutes: float = 10.0,
  from_dir: str | None = None,
  seed: int = 0,
  engine: str = "fluidsynth",
  seconds: float = 10.0,
  peak_dbfs: float = PEAK_DBFS,
  soundfont: str | None = None,
  workers: int | None = None,
  verify: bool = False,
  normalise_user: bool = True,
  progress: bool = True,
) -> dict:
  """Writes (or completes) the corpus in `out`; returns counts for the summary line."""
  if seconds < 2 or seconds > 60:
    raise AmpSpaceError(f"--seconds={seconds}: passage length must be between 2 and 60 s")
  if minutes < 0:
    raise AmpSpaceError(f"--minutes={minutes}: must not be negative")
  if not -40 <= peak_dbfs <= 0:
    raise AmpSpaceError(f"--peak_dbfs={peak_dbfs}: must be between -40 and 0 dBFS")
  if os.path.isfile(out):
    raise AmpSpaceError(f"{out}: output path is a file, expected a folder")
  os.makedirs(out, exist_ok=True)
  manifest = read_manifest(out)
  if manifest["peak_dbfs"] is not None and manifest["peak_dbfs"] != peak_dbfs:
    raise AmpSpaceError(
      f"{manifest_path(out)}: corpus was written at peak "
      f"{manifest['peak_dbfs']} dBFS, not {peak_dbfs}; use another --out"
    )
  manifest["peak_dbfs"] = peak_dbfs
  gone = [
    k for k, e in manifest["passages"].items() if not os.path.exists(os.path.join(out, e["file"]))
  ]
  for k in gone:  # files deleted by hand: forget them (the plan below re-creates its own)
    del manifest["passages"][k]
  workers = workers or os.cpu_count() or 1
  rendered = write_rendered(
    out,
    manifest,
    minutes=minutes,
    seed=seed,
    engine=engine,
    seconds=seconds,
    peak_dbfs=peak_dbfs,
    soundfont=soundfont,
    workers=workers,
    verify=verify,
    progress=progress,
  )
  user = 0
  if from_dir:
    user = write_user(
      out,
      manifest,
      from_dir=from_dir,
      seconds=seconds,
      peak_dbfs=peak_dbfs,
      normalise=normalise_user,
      verify=verify,
      progress=progress,
    )
  write_manifest(out, manifest)
  total = sum(e["end"] - e["start"] for e in manifest["passages"].values()) / SAMPLE_RATE
  return {
    "rendered": rendered,
    "user": user,
    "passages": len(manifest["passages"]),
    "minutes": total / 60.0,
    "forgotten": len(gone),
  }
