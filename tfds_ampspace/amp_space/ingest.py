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
  latency       measured, never guessed (ampspace.audio.alignment): from the clip's annotation
                (`latency_samples` / the paper's `time-delay`), a calibration blip in the DI
                (`blip_at`) or a loopback recording (`loopback_file`); corrected by trimming and
                recorded in `latency_samples` with its source in the report. With none of them
                the output is not shifted. `latency_from_music` (opt-in) estimates a setting's
                lag by GCC-PHAT over its clips' music: that peak follows the device's own group
                delay, so it is never applied to rendered (synthetic) data, and every estimate
                is listed in the report. Beyond `max_lag`: the clip (or setting) is rejected.
  replicates    NAM's standard capture (nam_capture.py) plays its validation signal twice:
                the output's self-ESR between the replays above 0.01 (NAM's threshold): rejected.
Rejected clips fail the build (every problem listed, each naming its file) unless
`skip_invalid`, in which case they are left out and listed in the report with the reason.
"""

from __future__ import annotations

import dataclasses
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
from ampspace.files import write_json_atomic
from tfds_ampspace.amp_space import nam_capture
from tfds_ampspace.amp_space.layouts import Clip

CLIP_LEVEL = 0.999


@dataclasses.dataclass(frozen=True)
class IngestOptions:
  resample: bool = False
  downmix: bool = False
  length_tolerance: int = 4096
  latency_from_music: bool = False
  max_lag: int = alignment.DEFAULT_MAX_LAG
  max_clipped_fraction: float = 0.01
  silence_dbfs: float = -60.0
  skip_invalid: bool = False


RENDERED_SOURCES = frozenset({"synthetic", "rendered", "render"})


@dataclasses.dataclass
class Pair:
  di: np.ndarray
  out: np.ndarray  # aligned to `di` by `latency` (annotation, blip, loopback)
  clipped_fraction: float
  original_sample_rate: int
  warnings: list[str]
  latency: int = 0  # samples the output was late
  latency_source: str = "none"  # "annotation", "blip", "loopback" or "none"


def clipped_fraction(x: np.ndarray) -> float:
  return float(np.mean(np.abs(x) >= CLIP_LEVEL)) if len(x) else 0.0


def load_audio(path: str, opts: IngestOptions) -> tuple[np.ndarray, int]:
  """Mono float32 at 44.1 kHz, or AmpSpaceError naming the file (see the module's rules);
  and the file's own sample rate."""
  x, sr = read_audio(path, opts)
  return to_ingest_rate(x, sr), sr


def read_audio(path: str, opts: IngestOptions) -> tuple[np.ndarray, int]:
  """Mono float32 at the file's own rate, once the rate is one `opts` accepts."""
  x, sr = read_wav(path, expected_sample_rate=None, allow_stereo=opts.downmix)
  if sr != SAMPLE_RATE and not opts.resample:
    raise AmpSpaceError(
      f"{path}: sample rate is {sr} Hz, expected {SAMPLE_RATE} Hz (set resample=True to convert)"
    )
  return x, int(sr)


def to_ingest_rate(x: np.ndarray, sr: int) -> np.ndarray:
  """x at 44.1 kHz (polyphase, scipy)."""
  if sr == SAMPLE_RATE:
    return x
  g = np.gcd(int(sr), SAMPLE_RATE)
  return scipy.signal.resample_poly(x, SAMPLE_RATE // g, int(sr) // g).astype(np.float32)


def _check_level(x: np.ndarray, path: str, opts: IngestOptions) -> float:
  rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
  if rms <= 10 ** (opts.silence_dbfs / 20):
    raise AmpSpaceError(
      f"{path}: silent (RMS {20 * np.log10(rms + 1e-20):.1f} dBFS, below {opts.silence_dbfs} dBFS)"
    )
  clipped = clipped_fraction(x)
  if clipped > opts.max_clipped_fraction:
    raise AmpSpaceError(
      f"{path}: {100 * clipped:.2f}% of samples clipped (over "
      f"{100 * opts.max_clipped_fraction:.2f}%)"
    )
  return clipped


def _blip_lag(
  clip: Clip,
  di_file: tuple[np.ndarray, int],
  out_file: tuple[np.ndarray, int],
  di: np.ndarray,
  out: np.ndarray,
  opts: IngestOptions,
) -> int:
  """The latency the clip's calibration blips give, in 44.1 kHz samples (`di`, `out`).

  Blip positions count 44.1 kHz samples. When both files were resampled from one rate and every
  blip falls on a whole sample of it (NAM's 48 kHz blips do), the onset is measured at the
  recorded rate, where a causal response starts sharply (the resampler's linear-phase filter
  rings ahead of it: tests/test_nam_capture.py reads 4 samples early there), then converted,
  rounded down.
  """
  blips = (clip.blip_at, *clip.more_blips)
  (di_rec, sr), (out_rec, out_sr) = di_file, out_file
  if sr != SAMPLE_RATE and out_sr == sr and all(b * sr % SAMPLE_RATE == 0 for b in blips):
    lag = alignment.blips_latency(
      di_rec,
      out_rec,
      [b * sr // SAMPLE_RATE for b in blips],
      opts.max_lag * sr // SAMPLE_RATE,
      where=clip.output_path,
    )
    return lag * SAMPLE_RATE // sr
  return alignment.blips_latency(di, out, blips, opts.max_lag, where=clip.output_path)


def load_pair(clip: Clip, opts: IngestOptions) -> Pair:
  """The clip's DI segment and output, validated; trimmed to one length within tolerance."""
  di_file, out_file = read_audio(clip.di_path, opts), read_audio(clip.output_path, opts)
  (di, di_sr), (out, out_sr) = [(to_ingest_rate(x, sr), sr) for x, sr in (di_file, out_file)]
  end = clip.di_end if clip.di_end >= 0 else len(di)
  if not 0 <= clip.di_start < end <= len(di):
    raise AmpSpaceError(
      f"{clip.output_path}: DI segment [{clip.di_start}, {end}) is outside "
      f"{clip.di_path} ({len(di)} samples)"
    )
  warnings = []
  lag, source = 0, "none"
  if clip.blip_at is not None:
    lag, source = _blip_lag(clip, di_file, out_file, di, out, opts), "blip"
    for blip in (clip.blip_at, *clip.more_blips):
      if clip.di_start <= blip < end:
        warnings.append(f"the calibration blip at {blip} lies inside the DI segment")
  elif clip.loopback_path:
    loop, _ = load_audio(clip.loopback_path, opts)
    lag = alignment.loopback_latency(di, loop, opts.max_lag, where=clip.loopback_path)
    source = "loopback"
  elif clip.latency_samples is not None:
    lag = int(np.floor(clip.latency_samples + 1e-9))  # fractional: round down, see alignment
    if lag > opts.max_lag:
      raise AmpSpaceError(
        f"{clip.output_path}: annotated latency {lag} samples is beyond max_lag {opts.max_lag}"
      )
    source = "annotation"
  del di_file, out_file  # the recorded-rate copies: only the blips needed them
  if clip.replicates is not None:
    nam_capture.check_replicates(out, clip.replicates, lag, where=clip.output_path)
  # A blip capture's or NAM capture's output spans the whole DI file: cut the segment's
  # counterpart. Otherwise the output starts with the DI segment.
  if clip.blip_at is not None or clip.replicates is not None:
    out = out[clip.di_start + lag : end + lag]
  else:
    out = out[lag:]
  di = di[clip.di_start : end]
  if len(di) != len(out):
    if abs(len(di) - len(out)) > opts.length_tolerance:
      raise AmpSpaceError(
        f"{clip.output_path}: length {len(out)} samples differs from its DI "
        f"{clip.di_path} ({len(di)} samples) by more than "
        f"{opts.length_tolerance}"
      )
    warnings.append(f"length {len(out)} vs DI {len(di)} samples: trimmed to the shorter")
    n = min(len(di), len(out))
    di, out = di[:n], out[:n]
  _check_level(di, clip.di_path, opts)
  clipped = _check_level(out, clip.output_path, opts)
  return Pair(di, out, clipped, out_sr if out_sr != SAMPLE_RATE else di_sr, warnings, lag, source)


def setting_key(clip: Clip) -> str:
  """Clips sharing a device and every knob value share one capture latency."""
  return setting_name(clip.brand, clip.device, clip.settings)


def setting_name(brand: str, device: str, settings: dict[str, float]) -> str:
  knobs = ",".join(f"{k}={v:g}" for k, v in sorted(settings.items()))
  return f"{brand}/{device}[{knobs}]"


@dataclasses.dataclass
class IngestResult:
  clips: list[Clip]  # accepted, in input order
  # setting_key -> lag estimated from the music (only with `latency_from_music`), applied on
  # top of the clip's own (annotation/blip/loopback) alignment, which load_pair does.
  latency: dict[str, int]
  lengths: dict[str, int]  # clip_id -> samples of the validated, aligned pair
  report: dict


def validate_clips(
  clips: Iterable[Clip],
  opts: IngestOptions,
  *,
  progress: bool = True,
  loader: Callable[[Clip, IngestOptions], Pair] = load_pair,
) -> IngestResult:
  """Checks every clip, estimates one latency per setting; raises or skips per `skip_invalid`."""
  clips = list(clips)
  problems: dict[str, str] = {}  # clip_id -> reason
  warnings: list[dict] = []
  corrs: dict[str, list[np.ndarray]] = {}
  measured: dict[str, list[tuple[str, int]]] = {}
  members: dict[str, list[Clip]] = {}
  lengths: dict[str, int] = {}
  for clip in tqdm(
    clips, desc="validate recordings", unit="clip", disable=not progress, file=sys.stderr
  ):
    try:
      pair = loader(clip, opts)
    except AmpSpaceError as e:
      problems[clip.clip_id] = str(e)
      continue
    warnings += [{"file": clip.output_path, "warning": w} for w in pair.warnings]
    lengths[clip.clip_id] = len(pair.out)
    measured.setdefault(setting_key(clip), []).append((pair.latency_source, pair.latency))
    if (
      opts.latency_from_music
      and pair.latency_source == "none"
      and clip.source not in RENDERED_SOURCES
    ):
      corrs.setdefault(setting_key(clip), []).append(
        alignment.clip_correlation(pair.di, pair.out, opts.max_lag)
      )
      members.setdefault(setting_key(clip), []).append(clip)
  latency, latency_rows = {}, []
  for key, found in measured.items():
    sources = sorted({src for src, _ in found})
    lags = [lag for _, lag in found]
    latency_rows.append(
      {
        "setting": key,
        "source": "+".join(sources),
        "num_clips": len(found),
        "lag_samples_min": min(lags),
        "lag_samples_max": max(lags),
      }
    )
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
    latency_rows.append(
      {
        "setting": key,
        "source": "music (GCC-PHAT, opt-in, applied)",
        "num_clips": est.num_clips,
        "lag_samples_min": est.lag,
        "lag_samples_max": est.lag,
        "confidence": round(est.confidence, 2),
      }
    )
  failed = [
    {"file": c.output_path, "reason": problems[c.clip_id]} for c in clips if c.clip_id in problems
  ]
  if failed and not opts.skip_invalid:
    listing = "\n  ".join(f["reason"] for f in failed[:20])
    more = f"\n  ... and {len(failed) - 20} more" if len(failed) > 20 else ""
    raise AmpSpaceError(
      f"{len(failed)} of {len(clips)} recordings are invalid (set "
      f"skip_invalid=True to leave them out and list them in "
      f"ingest_report.json):\n  {listing}{more}"
    )
  accepted = [c for c in clips if c.clip_id not in problems]
  if not accepted:
    raise AmpSpaceError(
      "no valid recording left to ingest; see the skipped list:\n  "
      + "\n  ".join(f["reason"] for f in failed[:20])
    )
  report = {
    "num_clips": len(clips),
    "num_accepted": len(accepted),
    "skipped": failed,
    "warnings": warnings,
    "latency": latency_rows,
    "options": dataclasses.asdict(opts),
  }
  return IngestResult(accepted, latency, lengths, report)


def write_report(path: str, report: dict) -> None:
  """JSON, atomically (a temporary file then rename)."""
  write_json_atomic(path, report, indent=1, sort_keys=True)
