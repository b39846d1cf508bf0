"""The paper's interpolation experiment: a sound between two amps, from the VAE's latent midpoint
and from Wave2WaveNet with a device one-hot of [0.5, 0.5].

  python launch/interpolation.py --out=runs/interpolation --size=runlocal

What it does (each stage is skipped when its output exists, so a rerun resumes):
1. Partition: `--num_dis` 4 s DIs (default 5 Karplus-Strong phrases) rendered through amps A
   and B (default tube_amp_fender and tube_amp_4x12) over many settings: the gain knob over
   1..10 at the other knobs' defaults, the treble knob over 1..10 at the endpoint gain, plus
   `--random_settings` random tone-stack settings (bass, mid, treble, presence at the endpoint
   gain; master at its default: random gain and master can clip past the dataset's 1% limit)
   per amp.
   HELD_OUT (gain 5 and treble 8) is held out of every render of both amps, by the sweeps'
   `|drop:` modifier, and checked on the built dataset before anything trains
   (`soundspace.held_out_leaks`; a leak stops the run). Gain 5 is the known in-between of
   gains 3 and 7; treble 8 (at the endpoint gain) that of trebles 6 and 10.
   The rendered folder (release layout) is built into the TFDS dataset amp_space/synthetic
   in OUT/tfds, whose DI-disjoint split puts (from 3 DIs on) one DI in `test` and one in
   `validation`: the models train on the rest, and every measure below plays the test DI,
   which no model has heard.
2. Models: the mel VAE (configs/vae.py:runlocal,clip for --size=runlocal, whole-clip windows
   as in the paper) and Wave2WaveNet (configs/wave2wavenet.py:runlocal) trained on that
   dataset through the trainer registry, with their usual checkpoints and TensorBoard logs in
   OUT/vae and OUT/w2w.
3. Sounds and measures, written to OUT/metrics.{json,md} and OUT/mos/*.wav (+ manifest.json
   for the MOS notebook):
   - midpoint between A and B at the endpoint setting (gain `--endpoint_gain`, other knobs at
     their defaults): the VAE decodes the window-wise midpoint of the two clips' latent codes
     (Griffin-Lim to audio); Wave2WaveNet runs with the conditioning vector halfway between
     A's and B's (device one-hot [0.5, 0.5]; attribute one-hots averaged where the amps
     differ; knobs equal); a waveform crossfade of the two real outputs is the naive
     reference. Reported: mel distance (mean |log-mel difference|) to each endpoint.
   - smoothness of a walk from A to B (`--walk_steps` points): VAE along the latent segment
     (decoded log-mels), Wave2WaveNet along the conditioning segment (outputs' log-mels);
     `soundspace.walk_smoothness` (evenness = max step / mean step, path ratio = summed steps
     / direct distance; 1 is ideal for both).
   - known in-between, on two axes: amp A's gain 3 and gain 7 interpolated and compared with
     its real, held-out gain 5; its trebles 6 and 10 (at the endpoint gain) against its real,
     held-out treble 8. For Wave2WaveNet the conditioning midpoint of the two is exactly the
     held-out conditioning, so this is its generalisation to an unseen knob value.
4. VAE variants (`--vae_variant`, on by default; `--nocompare_vae` skips them): departures
   from the experiment's VAE, each trained on the same partition with the same steps at every
   seed of `--variant_seeds` (the experiment's VAE too, into OUT/vae_seeds) into
   OUT/vae_variants/NAME/seed_K, and measured like the VAE above on decoded log-mels (before
   Griffin-Lim, which is the same for all): 64-frame (~0.37 s) windows, and a 512-unit layer
   per latent factor (the paper's "512 for each factor"). Cells give the mean over seeds and
   their range.
"""

from __future__ import annotations

import json
import os
import sys
import time

from absl import app, flags

import numpy as np

from ampspace import SAMPLE_RATE, devices, render, trainers
from ampspace import conditioning as cond
from ampspace.audio.wav_io import read_wav, write_wav
from ampspace.config_files import load_config
from ampspace.di import karplus
from ampspace.errors import AmpSpaceError, parse_flags_one_line_errors, report_errors
from ampspace.files import atomic_write, replace_between_markers, write_json_atomic
from ampspace.sweeps import parse_sweep

# The modules that load jax, flax, librosa, Grain or TFDS (soundspace, checkpoints,
# runtime.inference, audio.spectral, data.*) are imported where used, so that importing this
# command (--help, a flag error) loads none of them.

# The checkout: the docs the table is written into (--update_doc).
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command's flags (`python launch/interpolation.py`)."""
  flags.DEFINE_string("out", "runs/interpolation", "Output folder.")
  flags.DEFINE_enum("size", "runlocal", ["runlocal", "full"], "runlocal: 5-15 min on 2 CPU cores.")
  flags.DEFINE_string("amp_a", "tube_amp_fender", "Amp A (ampspace.devices.ALL_DEVICES).")
  flags.DEFINE_string("amp_b", "tube_amp_4x12", "Amp B.")
  flags.DEFINE_string(
    "di", "", "A DI WAV, cut into --num_dis consecutive 4 s DIs; default: Karplus-Strong phrases."
  )
  flags.DEFINE_integer("di_seed", 7, "Seed of the first generated DI phrase (the next: +1, ...).")
  flags.DEFINE_integer(
    "num_dis",
    5,
    "DIs in the partition; from 3 on, the builder's DI-disjoint split puts one in test (the DI "
    "the measures play, unseen by every model) and one in validation.",
  )
  flags.DEFINE_integer(
    "random_settings", -1, "Random tone-stack settings per amp (-1: 8 runlocal, 64 full)."
  )
  flags.DEFINE_float("endpoint_gain", 7.0, "Gain of the A/B endpoints (other knobs at defaults).")
  flags.DEFINE_integer("vae_steps", -1, "VAE training steps (-1: 400 runlocal, 20000 full).")
  flags.DEFINE_integer("w2w_steps", -1, "Wave2WaveNet steps (-1: 300 runlocal, 20000 full).")
  flags.DEFINE_integer("gl_iters", 64, "Griffin-Lim iterations for the written WAVs.")
  flags.DEFINE_integer("walk_steps", 9, "Points on each A -> B walk.")
  flags.DEFINE_integer("seed", 0, "Training seed.")
  flags.DEFINE_list(
    "variant_seeds",
    [],
    "Training seeds of stage 4: the experiment's VAE and each variant are trained and measured "
    "at every one (default: --seed alone).",
  )
  flags.DEFINE_bool(
    "compare_vae", True, "Train and measure the VAE variants (--vae_variant) too (stage 4)."
  )
  flags.DEFINE_multi_string(
    "vae_variant",
    list(VAE_VARIANTS),
    "NAME:KEY=VALUE[,KEY=VALUE...]: a VAE variant, its overrides of the VAE's config "
    "(repeatable; values without commas).",
  )
  flags.DEFINE_bool(
    "update_doc",
    False,
    "Write the table into docs/soundspace.md (between its "
    "markers) and docs/results/interpolation_table.md.",
  )


DOC = os.path.join(REPO, "docs", "soundspace.md")
DOC_BEGIN, DOC_END = "<!-- interpolation:table:begin -->", "<!-- interpolation:table:end -->"

DI_SECONDS = 4.0
# knob -> the dial held out of every training render of both amps
HELD_OUT = {"gain": 5.0, "treble": 8.0}
# knob -> the two training dials whose midpoint is the held-out dial
BETWEEN = {"gain": (3.0, 7.0), "treble": (6.0, 10.0)}
# The experiment's VAE encodes whole clips, as the paper does (configs/vae.py's `clip` window;
# at runlocal size with one shared 512-unit layer). Stage 4 measures departures from it.
VAE_ARG = {"runlocal": "runlocal,clip", "full": "clip"}
VAE_VARIANTS = (
  "window_64:model.num_frames=64",  # ~0.37 s windows: the CPU smoke config's
  "per_factor:model.factor_hidden=true",  # the paper's "512 for each factor"
)


# ------------------------------------------------------------------ helpers
def load_config_file(name: str, arg: str):
  return load_config(name, arg)


def stage(msg: str) -> None:
  print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def dials(size: str, flag: int, runlocal: int, full: int) -> int:
  return flag if flag >= 0 else (runlocal if size == "runlocal" else full)


# ------------------------------------------------------------------ 1. partition
def di_clips(num_dis: int, di: str = "", di_seed: int = 7) -> list[np.ndarray]:
  """`num_dis` DIs of DI_SECONDS: consecutive pieces of the WAV `di`, or generated phrases."""
  if num_dis < 1:
    raise AmpSpaceError(f"--num_dis={num_dis}: need at least one DI")
  n = int(DI_SECONDS * SAMPLE_RATE)
  if not di:
    return [karplus.phrase(di_seed + i, DI_SECONDS) for i in range(num_dis)]
  x, _ = read_wav(di, allow_stereo=True)
  if len(x) < num_dis * n:
    raise AmpSpaceError(
      f"{di}: {len(x) / SAMPLE_RATE:.2f} s, need {num_dis * DI_SECONDS:g} s for "
      f"--num_dis={num_dis} DIs of {DI_SECONDS:g} s"
    )
  return [x[i * n : (i + 1) * n] for i in range(num_dis)]


def make_dis(out: str, num_dis: int, di: str = "", di_seed: int = 7) -> str:
  """OUT/di_source/interp_di_K.wav, K < num_dis, and dis.json naming what made them. A folder
  a killed run left part-written is completed (the DIs are deterministic); one made from other
  DIs, or holding files this spec would not write, is refused."""
  folder = os.path.join(out, "di_source")
  spec = {"num_dis": num_dis, "di": os.path.abspath(di) if di else "", "di_seed": di_seed}
  stamp = os.path.join(folder, "dis.json")
  names = [f"interp_di_{k}.wav" for k in range(num_dis)]
  there = (
    sorted(f for f in os.listdir(folder) if f.endswith(".wav")) if os.path.isdir(folder) else []
  )
  made = None
  if os.path.exists(stamp):
    with open(stamp) as f:
      made = json.load(f)
  if (made is not None and made != spec) or not set(there) <= set(names):
    was = made if made is not None else f"{len(there)} DIs ({', '.join(there[:3])}...)"
    raise AmpSpaceError(
      f"{folder}: holds the DIs of an earlier run, {was}, not {spec}; use a fresh --out"
    )
  if made is None:
    for name, x in zip(names, di_clips(num_dis, di, di_seed)):
      if name not in there:
        write_wav(os.path.join(folder, name), x)
    write_json_atomic(stamp, spec)
  return folder


def measure_di(dataset, di_dir: str) -> tuple[np.ndarray, str, str]:
  """(audio, DI id, split) of the DI the measures play: the test split's (no model trained on
  it), or with fewer than 3 DIs (no test split) the first training DI."""
  from ampspace.data import sources
  from ampspace.data.filters import text

  for split in ("test", "train"):
    try:
      source = sources.open_split(dataset, split)
    except AmpSpaceError:
      continue
    if len(source):
      di_id = text(np.asarray(source[0]["di_id"]).item())
      audio, _ = read_wav(os.path.join(di_dir, f"{di_id}.wav"))
      return audio, di_id, split
  raise AmpSpaceError(f"{dataset.data_dir}: the dataset has no test or train clip")


def partition_jobs(amp_a: str, amp_b: str, n_random: int, endpoint_gain: float) -> list:
  """(device, sweep spec) of every training render; none holds a HELD_OUT dial."""
  if HELD_OUT["gain"] == endpoint_gain:
    raise AmpSpaceError(f"--endpoint_gain={endpoint_gain:g} is the held-out gain")
  drop = "|drop:" + ",".join(f"{k}={v:g}" for k, v in HELD_OUT.items())
  at_endpoint = f"|set:gain={endpoint_gain:g}"
  series = ["one_knob:gain" + drop, "one_knob:treble" + at_endpoint + drop]
  if n_random:  # tone-stack settings; random gain and master can clip an amp past the
    # builder's 1% limit, and the gain series already covers gain
    series.append(f"subsample:{n_random}:bass,mid,treble,presence" + at_endpoint + drop)
  return [(amp, spec) for spec in series for amp in (amp_a, amp_b)]


def render_partition(out: str, di_dir: str, n_random: int) -> str:
  """Release layout in OUT/rendered: both amps, gain and treble series, random tone stacks."""
  for name in (FLAGS.amp_a, FLAGS.amp_b):
    if name not in devices.ALL_DEVICES:
      raise AmpSpaceError(f"--amp: unknown device {name!r}; known: {sorted(devices.ALL_DEVICES)}")
  root = os.path.join(out, "rendered")
  for device, sweep in partition_jobs(FLAGS.amp_a, FLAGS.amp_b, n_random, FLAGS.endpoint_gain):
    render.render(device, sweep, di_dir, root, seed=FLAGS.seed, workers=1, progress=True)
  return root


def check_no_leak(source, amps) -> None:
  """Refuses to train when a held-out dial of either amp is in the training split."""
  from ampspace import soundspace

  entries = [soundspace.entry_of(source[i]) for i in range(len(source))]
  leaks = soundspace.held_out_leaks(entries, HELD_OUT, amps)
  if leaks:
    raise AmpSpaceError(
      f"{len(leaks)} training clips hold a held-out setting "
      f"({', '.join(f'{k}={v:g}' for k, v in HELD_OUT.items())}), e.g. "
      f"{leaks[0].clip_id} ({leaks[0].recipe()}); delete the partition and "
      "render it again"
    )


def dataset_config(out: str, rendered: str):
  import ml_collections

  d = ml_collections.ConfigDict()
  d.name = "amp_space/synthetic"
  d.data_dir = os.path.join(out, "tfds")
  d.manual_dir = rendered
  d.build_if_missing = True
  d.train_split = "train"
  d.eval_split = "validation"  # absent below 3 DIs: the trainers then skip validation
  return d


# ------------------------------------------------------------------ 2. models
def parse_vae_variant(spec: str) -> tuple[str, list[str]]:
  """ "NAME:KEY=VALUE,KEY=VALUE" -> (NAME, ["KEY=VALUE", ...])."""
  name, sep, overrides = spec.partition(":")
  items = [o for o in overrides.split(",") if o]
  if not sep or not name or not items or any("=" not in o for o in items):
    raise AmpSpaceError(
      f"--vae_variant={spec!r}: expected NAME:KEY=VALUE[,KEY=VALUE...], e.g. {VAE_VARIANTS[0]}"
    )
  return name, items


def train_vae(out: str, dataset, steps: int, overrides=(), workdir: str = "", seed=None):
  from ampspace.checkpoints import restore_vae
  from ampspace.config_files import apply_override

  c = load_config_file("vae", VAE_ARG[FLAGS.size])
  c.dataset = dataset
  c.seed = FLAGS.seed if seed is None else seed
  c.train.steps = steps
  c.kl.warmup_steps = max(1, steps // 4)
  c.train.checkpoint_every = max(100, steps // 4)
  c.train.eval_every = steps + 1
  for item in overrides:
    apply_override(c, item, flag="--vae_variant")
  workdir = workdir or os.path.join(out, "vae")
  trainers.get_trainer("vae")(c, workdir)
  return restore_vae(workdir)[0]


def train_w2w(out: str, dataset, steps: int):
  from ampspace import checkpoints

  c = load_config_file("wave2wavenet", "runlocal" if FLAGS.size == "runlocal" else "")
  c.dataset = dataset
  c.seed = FLAGS.seed
  c.train.steps = steps
  c.train.checkpoint_every = max(100, steps // 3)
  c.train.eval_every = steps + 1
  if "eval" in c:
    c.eval.at_end = False
  workdir = os.path.join(out, "w2w")
  trainers.get_trainer(c.trainer)(c, workdir)
  r = checkpoints.restore_model(workdir, c)
  return r.graphdef, r.params, r.context, c


# ------------------------------------------------------------------ 3. measures
class Sounds:
  """Real renders, model outputs and their log-mels for the experiment's settings."""

  def __init__(self, di: np.ndarray, vae, w2w, gl_iters: int, dataset):
    from ampspace.runtime import inference

    self.di, self.vae, self.gl_iters, self.dataset = di, vae, gl_iters, dataset
    if w2w is not None:  # None: the VAE's measures only (stage 4)
      graphdef, params, self.context, config = w2w
      decode = config.loss.get("decode", "expected_value")
      self.apply = inference.make_apply(graphdef, params, decode)

  # real devices (upstream code: allowed in a launch script, never in models/trainers)
  def real(self, device_name: str, knobs: dict) -> np.ndarray:
    return devices.get_device(device_name).process(self.di, knobs)

  @staticmethod
  def conditioning(device_name: str, knobs: dict) -> np.ndarray:
    return cond.conditioning_for(device_name, knobs)

  def w2w(self, c: np.ndarray) -> np.ndarray:
    from ampspace.runtime import inference

    return inference.run_clip(self.apply, self.di, c, self.context)

  # VAE
  def codes(self, audio: np.ndarray) -> np.ndarray:
    from ampspace import soundspace

    return soundspace.encode_audio(self.vae, audio)

  def vae_mel(self, z: np.ndarray) -> np.ndarray:
    from ampspace import soundspace

    return soundspace.decode_log_mel(self.vae, z, 1 + len(self.di) // 256)

  def vae_audio(self, z: np.ndarray, seed: int = 0) -> np.ndarray:
    from ampspace import soundspace

    return soundspace.decode_audio_from_latents(
      self.vae, z, len(self.di), n_iter=self.gl_iters, seed=seed
    )


def log_mel(x: np.ndarray) -> np.ndarray:
  from ampspace.audio import spectral

  return spectral.log_mel(x).T


def check_conditioning(source) -> None:
  """The conditioning we build for a device and knobs must be the one the dataset stored."""
  from ampspace.data.pipeline import conditioning_of
  from ampspace.soundspace import entry_of

  for i in range(len(source)):
    record = source[i]
    entry = entry_of(record)
    if entry.device == FLAGS.amp_a and entry.knobs.get("gain") == FLAGS.endpoint_gain:
      ours = Sounds.conditioning(entry.device, entry.knobs)
      if not np.allclose(ours, conditioning_of(record), atol=1e-5):
        raise AmpSpaceError(
          f"{entry.clip_id}: the conditioning vector built here differs from "
          f"the dataset's; the knob normalisation has changed"
        )
      return
  raise AmpSpaceError(f"no training clip of {FLAGS.amp_a} at gain {FLAGS.endpoint_gain:g}")


def experiment(out: str, s: Sounds) -> dict:
  from ampspace import soundspace

  dist = soundspace.mel_distance
  mos = os.path.join(out, "mos")
  manifest = []

  def wav(name: str, audio: np.ndarray, description: str) -> np.ndarray:
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    write_wav(os.path.join(mos, f"{name}.wav"), audio / peak * 0.9 if peak > 1.0 else audio)
    manifest.append(
      {"file": f"{name}.wav", "system": name.split("_")[0], "description": description}
    )
    return audio

  a, b = FLAGS.amp_a, FLAGS.amp_b
  g = FLAGS.endpoint_gain
  wav("di", s.di, "the DI")

  # --- midpoint between the amps
  stage("midpoint between the amps")
  real_a = wav("real_A", s.real(a, {"gain": g}), f"{a}, gain {g:g}")
  real_b = wav("real_B", s.real(b, {"gain": g}), f"{b}, gain {g:g}")
  m_a, m_b = log_mel(real_a), log_mel(real_b)
  z_a, z_b = s.codes(real_a), s.codes(real_b)
  c_a, c_b = s.conditioning(a, {"gain": g}), s.conditioning(b, {"gain": g})
  systems = {
    "crossfade (0.5 A + 0.5 B waveforms)": wav(
      "crossfade_mid", 0.5 * (real_a + real_b), "waveform crossfade of the real outputs"
    ),
    "VAE reconstruction of A": wav("vae_A", s.vae_audio(z_a), "VAE encode-decode of A"),
    "VAE reconstruction of B": wav("vae_B", s.vae_audio(z_b), "VAE encode-decode of B"),
    "VAE latent midpoint": wav(
      "vae_mid",
      s.vae_audio(soundspace.interpolate(z_a, z_b, 0.5)),
      "VAE: decoded midpoint of A's and B's latent codes",
    ),
    "Wave2WaveNet as A": wav("w2w_A", s.w2w(c_a), "Wave2WaveNet conditioned on A"),
    "Wave2WaveNet as B": wav("w2w_B", s.w2w(c_b), "Wave2WaveNet conditioned on B"),
    "Wave2WaveNet one-hot [0.5, 0.5]": wav(
      "w2w_mid", s.w2w(0.5 * (c_a + c_b)), "Wave2WaveNet, device one-hot [0.5, 0.5]"
    ),
  }
  midpoint = {
    "real A": {"to_A": 0.0, "to_B": dist(m_a, m_b)},
    "real B": {"to_A": dist(m_b, m_a), "to_B": 0.0},
  }
  for name, audio in systems.items():
    m = log_mel(audio)
    midpoint[name] = {"to_A": dist(m, m_a), "to_B": dist(m, m_b)}
  mel_mid = s.vae_mel(soundspace.interpolate(z_a, z_b, 0.5))
  midpoint["VAE latent midpoint (decoded log-mel, before Griffin-Lim)"] = {
    "to_A": dist(mel_mid, m_a),
    "to_B": dist(mel_mid, m_b),
  }

  # --- smoothness of walks from A to B
  stage("walks from A to B")
  vae_walk = soundspace.latent_walk(s.vae, z_a, z_b, len(m_a), FLAGS.walk_steps)
  alphas = np.linspace(0.0, 1.0, FLAGS.walk_steps)
  w2w_walk = [log_mel(s.w2w((1 - t) * c_a + t * c_b)) for t in alphas]
  smoothness = {
    "VAE latent walk (decoded log-mels)": soundspace.walk_smoothness(vae_walk),
    "Wave2WaveNet conditioning walk": soundspace.walk_smoothness(w2w_walk),
  }

  # --- the known in-betweens: gains 3 and 7 against the held-out gain 5, trebles 6 and 10
  # (at the endpoint gain) against the held-out treble 8
  between, real_5 = {}, None
  for knob, (lo, hi) in BETWEEN.items():
    held = HELD_OUT[knob]
    stage(f"known in-between: {knob} {lo:g} and {hi:g} against the held-out {knob} {held:g}")
    base = {} if knob == "gain" else {"gain": g}
    tag = "" if knob == "gain" else f"_{knob}"
    real_lo, real_hi = s.real(a, {**base, knob: lo}), s.real(a, {**base, knob: hi})
    real_held = wav(
      f"real_A_{knob}{held:g}",
      s.real(a, {**base, knob: held}),
      f"{a}, {knob} {held:g} (held out of training)",
    )
    if knob == "gain":
      real_5 = real_held
    m_held = log_mel(real_held)
    z_lo, z_hi, z_held = s.codes(real_lo), s.codes(real_hi), s.codes(real_held)
    c_lo = s.conditioning(a, {**base, knob: lo})
    c_hi = s.conditioning(a, {**base, knob: hi})
    vae_between = wav(
      f"vae_between{tag}",
      s.vae_audio(soundspace.interpolate(z_lo, z_hi, 0.5)),
      f"VAE: midpoint of {knob} {lo:g} and {knob} {hi:g} codes",
    )
    w2w_between = wav(
      f"w2w_between{tag}",
      s.w2w(0.5 * (c_lo + c_hi)),
      f"Wave2WaveNet: conditioning midpoint of {knob} {lo:g} and {hi:g}",
    )
    between[knob] = {
      f"real {knob} {lo:g}": dist(log_mel(real_lo), m_held),
      f"real {knob} {hi:g}": dist(log_mel(real_hi), m_held),
      f"crossfade of real {knob} {lo:g} and {hi:g}": dist(
        log_mel(0.5 * (real_lo + real_hi)), m_held
      ),
      f"VAE reconstruction of {knob} {held:g} (floor)": dist(log_mel(s.vae_audio(z_held)), m_held),
      f"VAE latent midpoint of {knob} {lo:g} and {hi:g}": dist(log_mel(vae_between), m_held),
      "VAE latent midpoint, decoded log-mel": dist(
        s.vae_mel(soundspace.interpolate(z_lo, z_hi, 0.5)), m_held
      ),
      f"VAE reconstruction of {knob} {held:g}, decoded log-mel (floor)": dist(
        s.vae_mel(z_held), m_held
      ),
      f"Wave2WaveNet at the conditioning midpoint (= {knob} {held:g})": dist(
        log_mel(w2w_between), m_held
      ),
    }
  atomic_write(os.path.join(mos, "manifest.json"), json.dumps(manifest, indent=2))
  space, query = held_out_query(out, s, real_5)
  return {
    "midpoint": midpoint,
    "smoothness": smoothness,
    "known_in_between": between,
    "held_out_query": query,
    "dial_recipes": dial_recipes(s, space),
  }, space


def dial_recipes(s: Sounds, space, n_random: int = 4) -> dict:
  """ "How do I dial this sound?" asked of clips whose settings are known and held out: each
  query is a real render at a setting that holds a held-out dial (gain 5 at the default and at
  `n_random` random tone stacks; treble 8 at the endpoint gain), answered with its nearest
  training clip's device and knobs. A hit is the right amp with every knob within one dial;
  chance is the share of training clips that would be a hit."""
  from ampspace import soundspace

  stage("dial recipes for held-out settings")
  rows = []
  for amp in (FLAGS.amp_a, FLAGS.amp_b):
    device = devices.get_device(amp)
    truths = [
      {**device.defaults, "gain": HELD_OUT["gain"]},
      {**device.defaults, "gain": FLAGS.endpoint_gain, "treble": HELD_OUT["treble"]},
    ]
    truths += parse_sweep(
      f"subsample:{n_random}:bass,mid,presence|set:gain={HELD_OUT['gain']:g}",
      device,
      seed=FLAGS.seed + 1,
    )
    for truth in truths:
      match = space.nearest_to_audio(s.vae, s.real(amp, truth), 1)[0]
      rows.append(
        {
          "device": amp,
          "truth": truth,
          "recipe": match.entry.recipe(),
          "hit": soundspace.within_steps(match.entry, amp, truth),
          "right_amp": match.entry.device == amp,
          "chance": float(np.mean([soundspace.within_steps(e, amp, truth) for e in space.entries])),
        }
      )
  n = len(rows)
  return {
    "queries": rows,
    "n": n,
    "hits": sum(r["hit"] for r in rows),
    "right_amp": sum(r["right_amp"] for r in rows),
    "chance_hit_rate": float(np.mean([r["chance"] for r in rows])),
  }


def held_out_query(out: str, s: Sounds, real_5: np.ndarray):
  """The soundspace of the partition, plotted, and asked which settings make the held-out sound:
  (the space, the 3 nearest recipes)."""
  from ampspace import soundspace
  from ampspace.data import sources

  space = soundspace.SoundSpace.from_source(s.vae, sources.open_split(s.dataset, "train"))
  space.save(os.path.join(out, "soundspace_index.npz"))
  for color_by in ("device", "knob:gain"):
    for dims in (2, 3):
      soundspace.latent_plot(
        space,
        os.path.join(out, f"soundspace_{color_by.replace(':', '_')}_{dims}d.png"),
        color_by=color_by,
        dims=dims,
      )
  return space, [
    {"recipe": m.entry.recipe(), "distance": m.distance}
    for m in space.nearest_to_audio(s.vae, real_5, 3)
  ]


def vae_measures(s: Sounds, space=None) -> dict:
  """The VAE's side of the experiment on decoded log-mels (no Griffin-Lim), for comparing VAE
  variants: reconstruction of A, the A/B latent midpoint, the known in-betweens against their
  floors, the A -> B walk and the dial recipes."""
  from ampspace import soundspace
  from ampspace.data import sources

  dist, g = soundspace.mel_distance, FLAGS.endpoint_gain
  real_a, real_b = s.real(FLAGS.amp_a, {"gain": g}), s.real(FLAGS.amp_b, {"gain": g})
  m_a, m_b = log_mel(real_a), log_mel(real_b)
  z_a, z_b = s.codes(real_a), s.codes(real_b)
  mid = s.vae_mel(soundspace.interpolate(z_a, z_b, 0.5))
  walk = soundspace.latent_walk(s.vae, z_a, z_b, len(m_a), FLAGS.walk_steps)
  out = {
    "reconstruction_A": dist(s.vae_mel(z_a), m_a),
    "midpoint_to_A": dist(mid, m_a),
    "midpoint_to_B": dist(mid, m_b),
    "walk": soundspace.walk_smoothness(walk),
  }
  for knob, (lo, hi) in BETWEEN.items():
    base = {} if knob == "gain" else {"gain": g}
    real_held = s.real(FLAGS.amp_a, {**base, knob: HELD_OUT[knob]})
    m_held = log_mel(real_held)
    z_lo = s.codes(s.real(FLAGS.amp_a, {**base, knob: lo}))
    z_hi = s.codes(s.real(FLAGS.amp_a, {**base, knob: hi}))
    out[f"between_{knob}"] = dist(s.vae_mel(soundspace.interpolate(z_lo, z_hi, 0.5)), m_held)
    out[f"floor_{knob}"] = dist(s.vae_mel(s.codes(real_held)), m_held)
  if space is None:
    space = soundspace.SoundSpace.from_source(s.vae, sources.open_split(s.dataset, "train"))
  recipes = dial_recipes(s, space)
  out["dial_hits"], out["dial_n"] = recipes["hits"], recipes["n"]
  out["dial_right_amp"] = recipes["right_amp"]
  return out


MAIN_VAE = "clip"  # stage 4's name for the experiment's own VAE


def parse_seeds(values: list[str], default: int) -> list[int]:
  """--variant_seeds's items as distinct ints; none given: [default]."""
  text = ",".join(values)
  try:
    seeds = [int(v) for v in values] or [default]
  except ValueError:
    raise AmpSpaceError(f"--variant_seeds={text}: expected integers, e.g. 0,1,2") from None
  if len(set(seeds)) != len(seeds):
    raise AmpSpaceError(f"--variant_seeds={text}: a seed given twice")
  return seeds


def compare_vae_variants(
  out: str, s: Sounds, dataset, steps: int, space, main_minutes: float, seeds: list[int]
) -> dict:
  """Stage 4: {name: {overrides, seeds: {seed: {train_minutes, measures}}}}, the experiment's
  own VAE first (its --seed run is the VAE above; other seeds train into OUT/vae_seeds)."""
  specs = [(MAIN_VAE, [])] + [parse_vae_variant(v) for v in FLAGS.vae_variant]
  rows = {name: {"overrides": overrides, "seeds": {}} for name, overrides in specs}
  for seed in seeds:
    for name, overrides in specs:
      if name == MAIN_VAE and seed == FLAGS.seed:
        rows[name]["seeds"][str(seed)] = {
          "train_minutes": main_minutes,
          "measures": vae_measures(s, space),
        }
        continue
      stage(f"4. VAE {name} ({', '.join(overrides) or 'configs/vae.py'}), seed {seed}")
      where = (
        os.path.join(out, "vae_seeds", f"seed_{seed}")
        if name == MAIN_VAE
        else os.path.join(out, "vae_variants", name, f"seed_{seed}")
      )
      t0 = time.time()
      vae = train_vae(out, dataset, steps, overrides, where, seed=seed)
      minutes = (time.time() - t0) / 60
      variant = Sounds(s.di, vae, None, s.gl_iters, dataset)
      rows[name]["seeds"][str(seed)] = {"train_minutes": minutes, "measures": vae_measures(variant)}
  return rows


def spread(values) -> str:
  """ "mean" for one value, "mean [min, max]" for several."""
  v = np.asarray(values, np.float64)
  return f"{v.mean():.3f}" if len(v) == 1 else f"{v.mean():.3f} [{v.min():.3f}, {v.max():.3f}]"


def variants_markdown(rows: dict, meta: dict) -> list[str]:
  seeds = sorted({int(k) for r in rows.values() for k in r["seeds"]})
  size = meta.get("size", "runlocal")
  layers = "one shared 512-unit layer" if size == "runlocal" else "a 512-unit layer per factor"
  lines = [
    "",
    "## VAE variants: window length and per-factor layers",
    "",
    f"Each VAE trained {meta['vae_steps']} steps on the same partition at seeds "
    f"{', '.join(map(str, seeds))}; a cell is the mean over seeds with [min, max] beside. Mel "
    "distances on decoded log-mels (before Griffin-Lim) of the measured DI; the in-betweens "
    "are latent midpoints against the real held-out setting, with the variant's own "
    f"reconstruction of it (floor). `{MAIN_VAE}` is the VAE above (whole-clip windows, "
    f"{layers}); dial hits are summed over seeds.",
    "",
    "| variant | overrides | recon. A | gain 5 between | gain 5 floor | treble 8 between "
    "| treble 8 floor | midpoint to A / B | walk evenness / path | dial hits | train min |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ]
  main = f"configs/vae.py:{VAE_ARG[size]}"
  for name, r in rows.items():
    runs = list(r["seeds"].values())
    col = lambda key: spread([x["measures"][key] for x in runs])
    mean = lambda f: float(np.mean([f(x["measures"]) for x in runs]))
    hits = sum(x["measures"]["dial_hits"] for x in runs)
    n = sum(x["measures"]["dial_n"] for x in runs)
    lines.append(
      f"| {name} | {', '.join(r['overrides']) or main} | "
      f"{col('reconstruction_A')} | {col('between_gain')} | {col('floor_gain')} | "
      f"{col('between_treble')} | {col('floor_treble')} | "
      f"{mean(lambda m: m['midpoint_to_A']):.3f} / {mean(lambda m: m['midpoint_to_B']):.3f} | "
      f"{mean(lambda m: m['walk']['evenness']):.2f} / "
      f"{mean(lambda m: m['walk']['path_ratio']):.2f} | {hits} of {n} | "
      f"{np.mean([x['train_minutes'] for x in runs]):.1f} |"
    )
  return lines


def markdown(results: dict, meta: dict) -> str:
  lines = [
    f"# Interpolation between {meta['amp_a']} (A) and {meta['amp_b']} (B)",
    "",
    f"Command: `{meta['command']}`  ",
    f"Partition: {meta['num_dis']} DIs of {DI_SECONDS:g} s through both amps, "
    f"{meta['clips']} training clips; VAE {meta['vae_steps']} steps, Wave2WaveNet "
    f"{meta['w2w_steps']} steps; Griffin-Lim {meta['gl_iters']} iterations; "
    f"wall time of this invocation {meta['wall_minutes']:.1f} min.  ",
    f"Every sound below plays DI `{meta['measure_di']}`, "
    + (
      "of the test split: no model trained on it."
      if meta["measure_di_split"] == "test"
      else f"of the {meta['measure_di_split']} split (fewer than 3 DIs: no test split)."
    ),
    "",
    f"## Midpoint between the amps (gain {meta['endpoint_gain']:g}, other knobs at "
    "defaults): mel distance",
    "",
    "| sound | to A | to B |",
    "|---|---:|---:|",
  ]
  for k, v in results["midpoint"].items():
    lines.append(f"| {k} | {v['to_A']:.3f} | {v['to_B']:.3f} |")
  lines += [
    "",
    f"## Smoothness of a {meta['walk_steps']}-point walk from A to B",
    "",
    "| walk | evenness (max/mean step; 1 ideal) | path ratio (sum/direct; 1 ideal) |",
    "|---|---:|---:|",
  ]
  for k, v in results["smoothness"].items():
    lines.append(f"| {k} | {v['evenness']:.2f} | {v['path_ratio']:.2f} |")
  for knob, rows in results["known_in_between"].items():
    (lo, hi), held = BETWEEN[knob], HELD_OUT[knob]
    where = "" if knob == "gain" else f" (gain {meta['endpoint_gain']:g})"
    lines += [
      "",
      f"## Known in-between: A at {knob} {lo:g} and {hi:g}{where} against its real "
      f"{knob} {held:g} (held out of training)",
      "",
      f"| sound | mel distance to real {knob} {held:g} |",
      "|---|---:|",
    ]
    for k, v in rows.items():
      lines.append(f"| {k} | {v:.3f} |")
  lines += [
    "",
    f"## Nearest sounds in the VAE's soundspace to A's held-out gain {HELD_OUT['gain']:g}",
    "",
    "No training clip of either amp has gain "
    f"{HELD_OUT['gain']:g} or treble {HELD_OUT['treble']:g} (checked before training).",
    "",
    "| rank | recipe | latent distance |",
    "|---:|---|---:|",
  ]
  for i, m in enumerate(results["held_out_query"]):
    lines.append(f"| {i + 1} | {m['recipe']} | {m['distance']:.3f} |")
  dr = results.get("dial_recipes")
  if dr:
    lines += [
      "",
      "## How do I dial this sound? Held-out settings answered by the nearest training clip",
      "",
      f"{dr['hits']} of {dr['n']} recipes land on the right amp with every knob within "
      f"one dial of the truth (chance: {100 * dr['chance_hit_rate']:.1f} %); "
      f"{dr['right_amp']} of {dr['n']} name the right amp. Every query holds a held-out "
      "dial, so no recipe can be exact.",
      "",
      "| amp | true setting | recipe | hit |",
      "|---|---|---|:-:|",
    ]
    for r in dr["queries"]:
      truth = ", ".join(f"{k}={v:g}" for k, v in r["truth"].items())
      lines.append(f"| {r['device']} | {truth} | {r['recipe']} | {'yes' if r['hit'] else 'no'} |")
  if results.get("vae_variants"):
    lines += variants_markdown(results["vae_variants"], meta)
  lines += [
    "",
    "Mel distance: mean |log(1 + mel power) difference| over frames and 256 mel "
    "bands (FFT 2048, hop 256); lower is closer.",
    "",
  ]
  return "\n".join(lines)


def update_doc(md: str) -> None:
  """Replaces the doc's generated table: figures in the docs come from a run, never typed."""
  os.makedirs(os.path.join(REPO, "docs", "results"), exist_ok=True)
  atomic_write(os.path.join(REPO, "docs", "results", "interpolation_table.md"), md)
  body = md.split("\n", 1)[1].replace("\n## ", "\n### ")  # the doc has its own title
  replace_between_markers(DOC, DOC_BEGIN, DOC_END, body.strip())


@report_errors
def main(argv):
  if len(argv) > 1:
    raise AmpSpaceError(f"unexpected arguments: {' '.join(argv[1:])}")
  t0 = time.time()
  out = os.path.abspath(FLAGS.out)
  os.makedirs(out, exist_ok=True)
  size = FLAGS.size
  n_random = dials(size, FLAGS.random_settings, 8, 64)
  vae_steps = dials(size, FLAGS.vae_steps, 400, 20_000)
  w2w_steps = dials(size, FLAGS.w2w_steps, 300, 20_000)
  for spec in FLAGS.vae_variant if FLAGS.compare_vae else ():
    parse_vae_variant(spec)  # a malformed variant fails before anything renders or trains
  seeds = parse_seeds(FLAGS.variant_seeds, FLAGS.seed)

  stage(f"1. partition: render {FLAGS.num_dis} DIs through both amps")
  di_dir = make_dis(out, FLAGS.num_dis, FLAGS.di, FLAGS.di_seed)
  rendered = render_partition(out, di_dir, n_random)
  dataset = dataset_config(out, rendered)
  from ampspace.data import sources

  train_source = sources.open_split(dataset, "train")  # builds the TFDS dataset once
  clips = len(train_source)
  stage(f"   amp_space/synthetic in {dataset.data_dir}: {clips} training clips")
  check_no_leak(train_source, (FLAGS.amp_a, FLAGS.amp_b))
  check_conditioning(train_source)

  stage(f"2a. VAE, {vae_steps} steps")
  t_vae = time.time()
  vae = train_vae(out, dataset, vae_steps)
  vae_minutes = (time.time() - t_vae) / 60
  stage(f"2b. Wave2WaveNet, {w2w_steps} steps")
  w2w = train_w2w(out, dataset, w2w_steps)

  di, di_id, di_split = measure_di(dataset, di_dir)
  stage(f"3. sounds and measures, on DI {di_id} ({di_split} split)")
  sounds = Sounds(di, vae, w2w, FLAGS.gl_iters, dataset)
  results, space = experiment(out, sounds)
  if FLAGS.compare_vae:
    results["vae_variants"] = compare_vae_variants(
      out, sounds, dataset, vae_steps, space, vae_minutes, seeds
    )
  meta = {
    "amp_a": FLAGS.amp_a,
    "amp_b": FLAGS.amp_b,
    "clips": clips,
    "num_dis": FLAGS.num_dis,
    "measure_di": di_id,
    "measure_di_split": di_split,
    "vae_steps": vae_steps,
    "w2w_steps": w2w_steps,
    "gl_iters": FLAGS.gl_iters,
    "walk_steps": FLAGS.walk_steps,
    "endpoint_gain": FLAGS.endpoint_gain,
    "size": size,
    "seed": FLAGS.seed,
    "command": "python launch/interpolation.py " + " ".join(sys.argv[1:]),
    "wall_minutes": (time.time() - t0) / 60,
  }
  atomic_write(os.path.join(out, "metrics.json"), json.dumps({"meta": meta, **results}, indent=2))
  md = markdown(results, meta)
  atomic_write(os.path.join(out, "metrics.md"), md)
  print(md)
  if FLAGS.update_doc:
    update_doc(md)
    print(f"updated {DOC}")
  print(f"WAVs for the MOS study: {os.path.join(out, 'mos')}")


def run() -> None:
  define_flags()
  app.run(main, flags_parser=parse_flags_one_line_errors)
