"""`python -m ampspace.train --config=configs/wave2wavenet.py[:runlocal] --workdir=DIR`.

Config overrides work as `--config.train.steps=100`; unknown keys are rejected. Multi-host:
pass --coordinator_address/--num_processes/--process_id (or rely on the cluster's automatic
detection with --distributed), and every host runs the same command.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging

from ampspace import paths, trainers
from ampspace.config_files import define_config_flag
from ampspace.errors import AmpSpaceError, parse_flags_one_line_errors, report_errors

FLAGS = flags.FLAGS
define_config_flag(
  "config",
  "Experiment config file (get_config(arg)); a configs/NAME.py "
  "missing from the working directory is the installed package's.",
  lock_config=True,
)
flags.DEFINE_string("workdir", None, "Where checkpoints, logs and outputs go.")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() (cluster auto-detect).")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-process runs).")
flags.DEFINE_integer("num_processes", None, "Number of processes (multi-process runs).")
flags.DEFINE_integer("process_id", None, "This process's index (multi-process runs).")


def initialize_distributed() -> None:
  import jax

  if FLAGS.coordinator_address or FLAGS.num_processes:
    jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  elif FLAGS.distributed:
    jax.distributed.initialize()


def check_workdir(workdir: str | None) -> str:
  if not workdir:
    raise AmpSpaceError("--workdir is required")
  if paths.is_url(workdir):  # gs://bucket/run: checkpoints, logs and TensorBoard go there
    if paths.isfile(workdir):
      raise AmpSpaceError(f"--workdir {workdir}: exists and is an object, expected a folder")
    return paths.absolute(workdir)
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise AmpSpaceError(f"--workdir {workdir}: exists and is a file, expected a folder")
  return workdir


def flag_config():
  """FLAGS.config, with config_flags' lazy load/override failures turned into one clear line."""
  try:
    config = FLAGS.config
    if config is not None:
      config.keys()  # the flag is lazy: a failed load or override raises on first use
  except (OSError, AttributeError, KeyError, TypeError, ValueError) as e:
    text = " ".join(str(e).replace("\\n", " ").split())
    raise AmpSpaceError(f"--config: {text.strip(chr(39))}") from None
  if config is None:
    raise AmpSpaceError("--config is required, e.g. --config=configs/wave2wavenet.py:runlocal")
  return config


@report_errors
def main(argv):
  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # Orbax and TFDS are chatty at INFO
  if len(argv) > 1:
    raise AmpSpaceError(f"unexpected arguments: {' '.join(argv[1:])}")
  workdir = check_workdir(FLAGS.workdir)
  config = flag_config()
  initialize_distributed()
  result = trainers.get_trainer(config.trainer)(config, workdir)
  if result.get("preempted"):  # SIGTERM: a checkpoint was saved; 128 + 15 tells the scheduler
    print(f"preempted at step {result['steps']}; rerun the same command to resume")
    sys.exit(143)
  if config.get("eval") and config.eval.get("at_end", False):
    import jax
    from ampspace import evaluate  # jax, flax, TFDS: only when a run evaluates at its end

    if jax.process_index() == 0:
      result["eval"] = evaluate.evaluate(workdir, split=config.eval.split, config=config)
  print(f"done: {result['steps']} steps; outputs in {workdir}")


def run():
  app.run(main, flags_parser=parse_flags_one_line_errors)


if __name__ == "__main__":
  run()
