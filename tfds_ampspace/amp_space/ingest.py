"""Validation of recorded (DI, output) pairs on ingest, latency per device setting, skip report.

Rules (the builder's README repeats them):
  sample rate   other than 44.1 kHz: rejected, or resampled (polyphase) when `resample`;
  channels      more than one: rejected, or downmixed to their mean when `downmix`;
  length        DI and output differing by at most `length_tolerance` samples: trimmed to the
                shorter, with a warning in the report; more: rejected naming both files;
  NaN / Inf     rejected;  empty: rejected;
  silence       DI or output RMS below `silence_dbfs`: rejected;
  clipping      fraction of |x| >= 0.999 recorded per example (`clipped_fraction`); above
                `max_clipped_fraction` in either file: rejected;
  latency       estimated by GCC-PHAT over all clips of a device setting, bounded by `max_lag`,
                corrected by trimming, recorded in `latency_samples`; beyond the bound: the
                whole setting is rejected.
Rejected clips fail the build (every problem listed, each naming its file) unless
`skip_invalid`, in which case they are left out and listed in the report with the reason.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Callable, Iterable

import numpy as np
import scipy.signal
from tqdm import tqdm

from ampspace import SAMPLE_RATE
from ampspace.audio import alignment
from ampspace.audio.wav_io import read_wav
from ampspace.errors import AmpSpaceError
from tfds_ampspace.amp_space.layouts import Clip

CLIP_LEVEL = 0.999


@dataclasses.dataclass(frozen=True)
class IngestOptions:
  resample: bool = False
  downmix: bool = False
  length_tolerance: int = 4096
  estimate_latency: bool = True
  max_lag: int = alignment.DEFAULT_MAX_LAG
  max_clipped_fraction: float = 0.01
  silence_dbfs: float = -60.0
  skip_invalid: bool = False


@dataclasses.dataclass
class Pair:
  di: np.ndarray
  out: np.ndarray
  clipped_fraction: float
  original_sample_rate: int
  warnings: list[str]


def clipped_fraction(x: np.ndarray) -> float:
  return float(np.mean(np.abs(x) >= CLIP_LEVEL)) if len(x) else 0.0


def load_audio(path: str, opts: IngestOptions) -> tuple[np.ndarray, int]:
  """Mono float32 at 44.1 kHz, or AmpSpaceError naming the file (see the module's rules)."""
  x, sr = read_wav(path, expected_sample_rate=None, allow_stereo=opts.downmix)
  if sr != SAMPLE_RATE:
    if not opts.resample:
      raise AmpSpaceError(f"{path}: sample rate is {sr} Hz, expected {SAMPLE_RATE} Hz "
                          f"(set resample=True to convert)")
    g = np.gcd(int(sr), SAMPLE_RATE)
    x = scipy.signal.resample_poly(x, SAMPLE_RATE // g, int(sr) // g).astype(np.float32)
  return x, int(sr)


def _check_level(x: np.ndarray, path: str, opts: IngestOptions) -> float:
  rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
  if rms <= 10 ** (opts.silence_dbfs / 20):
    raise AmpSpaceError(f"{path}: silent (RMS {20 * np.log10(rms + 1e-20):.1f} dBFS, below "
                        f"{opts.silence_dbfs} dBFS)")
  clipped = clipped_fraction(x)
  if clipped > opts.max_clipped_fraction:
    raise AmpSpaceError(f"{path}: {100 * clipped:.2f}% of samples clipped (over "
                        f"{100 * opts.max_clipped_fraction:.2f}%)")
  return clipped


def load_pair(clip: Clip, opts: IngestOptions) -> Pair:
  """The clip's DI segment and output, validated; trimmed to one length within tolerance."""
  di, di_sr = load_audio(clip.di_path, opts)
  out, out_sr = load_audio(clip.output_path, opts)
  end = clip.di_end if clip.di_end >= 0 else len(di)
  if not 0 <= clip.di_start < end <= len(di):
    raise AmpSpaceError(f"{clip.output_path}: DI segment [{clip.di_start}, {end}) is outside "
                        f"{clip.di_path} ({len(di)} samples)")
  di = di[clip.di_start:end]
  warnings = []
  if len(di) != len(out):
    if abs(len(di) - len(out)) > opts.length_tolerance:
      raise AmpSpaceError(f"{clip.output_path}: length {len(out)} samples differs from its DI "
                          f"{clip.di_path} ({len(di)} samples) by more than "
                          f"{opts.length_tolerance}")
    warnings.append(f"length {len(out)} vs DI {len(di)} samples: trimmed to the shorter")
    n = min(len(di), len(out))
    di, out = di[:n], out[:n]
  _check_level(di, clip.di_path, opts)
  clipped = _check_level(out, clip.output_path, opts)
  return Pair(di, out, clipped, out_sr if out_sr != SAMPLE_RATE else di_sr, warnings)


def setting_key(clip: Clip) -> str:
  """Clips sharing a device and every knob value share one capture latency."""
  return setting_name(clip.brand, clip.device, clip.settings)


def setting_name(brand: str, device: str, settings: dict[str, float]) -> str:
  knobs = ",".join(f"{k}={v:g}" for k, v in sorted(settings.items()))
  return f"{brand}/{device}[{knobs}]"


@dataclasses.dataclass
class IngestResult:
  clips: list[Clip]                  # accepted, in input order
  latency: dict[str, int]            # setting_key -> lag (samples, positive: output late)
  lengths: dict[str, int]            # clip_id -> samples of the validated pair, before latency
  report: dict


def validate_clips(clips: Iterable[Clip], opts: IngestOptions, *, progress: bool = True,
                   loader: Callable[[Clip, IngestOptions], Pair] = load_pair) -> IngestResult:
  """Checks every clip, estimates one latency per setting; raises or skips per `skip_invalid`."""
  clips = list(clips)
  problems: dict[str, str] = {}      # clip_id -> reason
  warnings: list[dict] = []
  corrs: dict[str, list[np.ndarray]] = {}
  members: dict[str, list[Clip]] = {}
  lengths: dict[str, int] = {}
  for clip in tqdm(clips, desc="validate recordings", unit="clip", disable=not progress,
                   file=sys.stderr):
    try:
      pair = loader(clip, opts)
    except AmpSpaceError as e:
      problems[clip.clip_id] = str(e)
      continue
    warnings += [{"file": clip.output_path, "warning": w} for w in pair.warnings]
    lengths[clip.clip_id] = len(pair.out)
    if opts.estimate_latency:
      corrs.setdefault(setting_key(clip), []).append(
          alignment.clip_correlation(pair.di, pair.out, opts.max_lag))
      members.setdefault(setting_key(clip), []).append(clip)
  latency, latency_rows = {}, []
  for key, cs in corrs.items():
    group = members[key]
    where = f"{os.path.dirname(group[0].output_path)} ({key}, {len(group)} clips)"
    try:
      est = alignment.combine_correlations(cs, opts.max_lag, where=where)
    except AmpSpaceError as e:
      for c in group:
        problems[c.clip_id] = str(e)
      continue
    latency[key] = est.lag
    latency_rows.append({"setting": key, "lag_samples": est.lag,
                         "confidence": round(est.confidence, 2), "num_clips": est.num_clips})
  failed = [{"file": c.output_path, "reason": problems[c.clip_id]}
            for c in clips if c.clip_id in problems]
  if failed and not opts.skip_invalid:
    listing = "\n  ".join(f["reason"] for f in failed[:20])
    more = f"\n  ... and {len(failed) - 20} more" if len(failed) > 20 else ""
    raise AmpSpaceError(f"{len(failed)} of {len(clips)} recordings are invalid (set "
                        f"skip_invalid=True to leave them out and list them in "
                        f"ingest_report.json):\n  {listing}{more}")
  accepted = [c for c in clips if c.clip_id not in problems]
  if not accepted:
    raise AmpSpaceError("no valid recording left to ingest; see the skipped list:\n  "
                        + "\n  ".join(f["reason"] for f in failed[:20]))
  report = {"num_clips": len(clips), "num_accepted": len(accepted), "skipped": failed,
            "warnings": warnings, "latency": latency_rows,
            "options": dataclasses.asdict(opts)}
  return IngestResult(accepted, latency, lengths, report)


def write_report(path: str, report: dict) -> None:
  """JSON, atomically (a temporary file then rename)."""
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(report, f, indent=1, sort_keys=True)
  os.replace(tmp, path)
