"""amp_space generated through Apache Beam (direct runner) equals the plain generator build.

Needs the [beam] extra's environment, which the README's test command (`bash launch/test.sh`)
makes and runs this file in (`bash launch/setup_beam.sh`, then
`.venv-beam/bin/python -m pytest -q -m beam tests/test_tfds_beam.py`); skipped in any other
environment, where Beam is missing.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

if os.environ.get("AMPSPACE_REQUIRE_BEAM"):  # the README's test command: Beam must be there
  import apache_beam as beam
else:
  beam = pytest.importorskip("apache_beam")

import tfds_ampspace  # noqa: E402,F401
from tfds_ampspace.amp_space import amp_space_dataset_builder as asb  # noqa: E402

pytestmark = pytest.mark.beam


def _examples(builder):
  return {
    split: {ex["clip_id"]: ex for ex in src} for split, src in builder.as_data_source().items()
  }


@pytest.fixture(scope="module")
def plain_build(tmp_path_factory):
  cfg = asb.AmpSpaceConfig(name="beam_small", num_dis=4, di_seconds=0.3, sweep="one_knob:gain=3,7")
  plain = asb.Builder(
    config=cfg, data_dir=str(tmp_path_factory.mktemp("plain")), file_format="array_record"
  )
  plain.download_and_prepare()
  assert not plain._use_beam
  return cfg, _examples(plain)


# One worker in memory; two worker processes, the local stand-in for a cluster's workers
# (each renders its share of DI x device items and writes its shards).
RUNNERS = {
  "in_memory": ["--runner=DirectRunner"],
  "two_processes": [
    "--runner=DirectRunner",
    "--direct_num_workers=2",
    "--direct_running_mode=multi_processing",
  ],
}


@pytest.mark.parametrize("runner", sorted(RUNNERS))
def test_beam_build_matches_generator_build(plain_build, runner, tmp_path):
  cfg, a = plain_build
  piped = asb.Builder(config=cfg, data_dir=str(tmp_path / "beam"), file_format="array_record")
  options = beam.options.pipeline_options.PipelineOptions(RUNNERS[runner])
  piped.download_and_prepare(download_config=tfds.download.DownloadConfig(beam_options=options))
  assert piped._use_beam
  b = _examples(piped)
  assert {s: sorted(v) for s, v in a.items()} == {s: sorted(v) for s, v in b.items()}
  assert sum(len(v) for v in b.values()) == 4 * 2
  for split in a:
    for key, ex in a[split].items():
      assert sorted(ex) == sorted(b[split][key])
      for feature in ex:  # every feature: the audio bytes, the ids, the annotations
        np.testing.assert_array_equal(ex[feature], b[split][key][feature], err_msg=feature)
