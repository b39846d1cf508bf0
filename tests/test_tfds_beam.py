"""amp_space generated through Apache Beam (direct runner) equals the plain generator build.

Needs the [beam] extra's environment (`bash launch/setup_beam.sh`, then
`.venv-beam/bin/pytest -q -m beam tests/test_tfds_beam.py`); skipped where Beam is missing.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_datasets as tfds

beam = pytest.importorskip("apache_beam")

import tfds_ampspace  # noqa: E402,F401
from tfds_ampspace.amp_space import amp_space_dataset_builder as asb  # noqa: E402

pytestmark = pytest.mark.beam


def _examples(builder):
  return {split: {ex["clip_id"]: ex for ex in src}
          for split, src in builder.as_data_source().items()}


def test_beam_build_matches_generator_build(tmp_path):
  cfg = asb.AmpSpaceConfig(name="beam_small", num_dis=4, di_seconds=0.3,
                           sweep="one_knob:gain=3,7")
  plain = asb.Builder(config=cfg, data_dir=str(tmp_path / "plain"), file_format="array_record")
  plain.download_and_prepare()
  piped = asb.Builder(config=cfg, data_dir=str(tmp_path / "beam"), file_format="array_record")
  options = beam.options.pipeline_options.PipelineOptions(["--runner=DirectRunner"])
  piped.download_and_prepare(download_config=tfds.download.DownloadConfig(beam_options=options))
  assert piped._use_beam and not plain._use_beam
  a, b = _examples(plain), _examples(piped)
  assert {s: sorted(v) for s, v in a.items()} == {s: sorted(v) for s, v in b.items()}
  assert sum(len(v) for v in b.values()) == 4 * 2
  for split in a:
    for key, ex in a[split].items():
      np.testing.assert_array_equal(ex["output"], b[split][key]["output"])
      np.testing.assert_array_equal(ex["knobs"], b[split][key]["knobs"])
