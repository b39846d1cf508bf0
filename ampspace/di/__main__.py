"""`python -m ampspace.di`: write a DI corpus folder (WAVs + manifest.json + report).

  python -m ampspace.di --out=DIR --minutes=N [--from=USER_DIR] [--engine=karplus]

Rendered phrases need the Debian packages fluidsynth and fluid-soundfont-gm (launch/setup.sh
installs them); --engine=karplus needs nothing. Rerunning the command resumes or does nothing.
"""

from __future__ import annotations

from absl import app, flags

from ampspace.di import corpus, report
from ampspace.errors import AmpSpaceError, report_errors

FLAGS = flags.FLAGS
flags.DEFINE_string("out", None, "Corpus folder (created; WAVs and manifest.json go at its top).")
flags.DEFINE_float("minutes", None, "Minutes of rendered phrases (default 10, or 0 with --from).")
flags.DEFINE_string("from", None, "Folder of the user's own DI recordings (WAV/FLAC, any rate).")
flags.DEFINE_integer("seed", 0, "Seed of the generated phrases.")
flags.DEFINE_enum("engine", "fluidsynth", list(corpus.ENGINES), "Phrase renderer.")
flags.DEFINE_float("seconds", 10.0, "Passage length in seconds (about, for user DIs).")
flags.DEFINE_float("peak_dbfs", corpus.PEAK_DBFS, "Peak level every passage is scaled to.")
flags.DEFINE_bool("normalise_user", True, "Scale user passages to --peak_dbfs too.")
flags.DEFINE_string("soundfont", None, "General MIDI .sf2 (default: FluidR3_GM).")
flags.DEFINE_integer("workers", 0, "Parallel FluidSynth processes (0: one per core).")
flags.DEFINE_bool("verify", False, "Re-hash existing files and re-create any that differ.")
flags.DEFINE_bool("report", True, "Write report.json and report.png (diversity report).")


@report_errors
def main(argv):
  if len(argv) > 1:
    raise AmpSpaceError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS.out:
    raise AmpSpaceError("--out is required")
  from_dir = FLAGS["from"].value
  minutes = FLAGS.minutes if FLAGS.minutes is not None else (0.0 if from_dir else 10.0)
  s = corpus.build_corpus(
    FLAGS.out,
    minutes=minutes,
    from_dir=from_dir,
    seed=FLAGS.seed,
    engine=FLAGS.engine,
    seconds=FLAGS.seconds,
    peak_dbfs=FLAGS.peak_dbfs,
    soundfont=FLAGS.soundfont,
    workers=FLAGS.workers or None,
    verify=FLAGS.verify,
    normalise_user=FLAGS.normalise_user,
  )
  if FLAGS.report and s["passages"]:
    report.write_report(FLAGS.out)
  print(
    f"{FLAGS.out}: {s['passages']} passages, {s['minutes']:.1f} min "
    f"({s['rendered']} rendered and {s['user']} user passages written this run)"
  )


if __name__ == "__main__":
  app.run(main)
