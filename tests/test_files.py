"""ampspace.files: atomic writes leave the whole new file or the old one, never a stray temporary
file; the marker fill touches only the block between whole marker lines; hashing."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import numpy as np
import pytest
import yaml

from ampspace import files
from ampspace.errors import AmpSpaceError

BEGIN, END = "<!-- t:begin -->", "<!-- t:end -->"


class Boom(Exception):
  pass


def test_atomic_write_text_and_bytes(tmp_path):
  files.atomic_write(tmp_path / "a.md", "héllo\n")
  files.atomic_write(tmp_path / "b.bin", b"\x00\x01\xff")
  files.atomic_write(tmp_path / "a.md", "again")  # replaces an existing file
  assert (tmp_path / "a.md").read_text(encoding="utf-8") == "again"
  assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01\xff"
  assert sorted(os.listdir(tmp_path)) == ["a.md", "b.bin"]


def test_makes_the_folder_and_a_file_readable_as_open_would(tmp_path):
  path = tmp_path / "new" / "deeper" / "x.txt"
  files.atomic_write(path, "x")
  assert path.read_text() == "x"
  umask = os.umask(0)
  os.umask(umask)
  assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask


def test_json_and_yaml(tmp_path):
  files.write_json_atomic(tmp_path / "a.json", {"b": 1, "a": [1, 2]}, indent=2)
  assert (tmp_path / "a.json").read_text() == json.dumps({"b": 1, "a": [1, 2]}, indent=2)
  files.write_yaml_atomic(tmp_path / "s.yaml", {"z": 1, "a": {"k": [1.5]}})
  text = (tmp_path / "s.yaml").read_text()
  assert text.index("z:") < text.index("a:")  # the dict's own order, not sorted
  assert yaml.safe_load(text) == {"z": 1, "a": {"k": [1.5]}}


@pytest.mark.parametrize("how", ["open", "path", "json"])
def test_an_exception_changes_nothing_and_leaves_no_temporary_file(tmp_path, how):
  dest = tmp_path / "out.json"
  dest.write_text("old")

  def explode():
    if how == "open":
      with files.atomic_open(dest) as f:
        f.write("half of a new fi")
        raise Boom()
    elif how == "path":
      with files.atomic_path(dest) as tmp:
        with open(tmp, "w") as f:
          f.write("half")
        raise Boom()
    else:
      files.write_json_atomic(dest, {"x": object()})  # json raises mid-way through writing

  with pytest.raises((Boom, TypeError)):
    explode()
  assert dest.read_text() == "old"
  assert os.listdir(tmp_path) == ["out.json"]


def test_keyboard_interrupt_also_cleans_up(tmp_path):
  with pytest.raises(KeyboardInterrupt):
    with files.atomic_open(tmp_path / "x.txt") as f:
      f.write("x")
      raise KeyboardInterrupt
  assert os.listdir(tmp_path) == []


def test_the_temporary_path_lies_beside_the_destination_hidden_and_with_its_suffix(tmp_path):
  with files.atomic_path(tmp_path / "index.bin", suffix=".npz") as tmp:
    assert os.path.dirname(tmp) == str(tmp_path) and os.path.exists(tmp)
    name = os.path.basename(tmp)
    assert name.startswith(".") and name.endswith(".npz")
    np.savez(tmp, a=np.arange(3))  # np.savez would append .npz to a name without it
  with np.load(tmp_path / "index.bin") as z:
    assert z["a"].tolist() == [0, 1, 2]
  assert os.listdir(tmp_path) == ["index.bin"]


def test_atomic_open_rejects_read_modes(tmp_path):
  with pytest.raises(ValueError):
    with files.atomic_open(tmp_path / "x", "a"):
      pass


def test_marker_fill_replaces_only_between_whole_marker_lines(tmp_path):
  doc = tmp_path / "doc.md"
  doc.write_text(
    f"# Title\nQuoted `{BEGIN}` and {END} in text stay.\n{BEGIN}\nold 1\nold 2\n{END}\ntail\n"
  )
  files.replace_between_markers(doc, BEGIN, END, "new 1\nnew 2\n\n")
  assert doc.read_text() == (
    f"# Title\nQuoted `{BEGIN}` and {END} in text stay.\n{BEGIN}\nnew 1\nnew 2\n{END}\ntail\n"
  )
  files.replace_between_markers(doc, BEGIN, END, "newer")  # a second fill replaces the first
  assert doc.read_text() == (
    f"# Title\nQuoted `{BEGIN}` and {END} in text stay.\n{BEGIN}\nnewer\n{END}\ntail\n"
  )
  assert [p.name for p in tmp_path.iterdir()] == ["doc.md"]


@pytest.mark.parametrize(
  "text, missing",
  [
    ("no markers at all\n", BEGIN),
    (f"only quoted: `{BEGIN}`\n{END}\n", BEGIN),
    (f"{BEGIN}\nbody\n", END),
    (f"{END}\n{BEGIN}\nbody\n", END),  # an end line before the begin line does not count
  ],
)
def test_a_missing_marker_line_is_one_error_naming_file_and_marker(tmp_path, text, missing):
  doc = tmp_path / "doc.md"
  doc.write_text(text)
  with pytest.raises(AmpSpaceError) as e:
    files.replace_between_markers(doc, BEGIN, END, "new")
  message = str(e.value)
  assert str(doc) in message and missing in message and "\n" not in message
  assert doc.read_text() == text


def test_sha256_file_matches_hashlib(tmp_path):
  data = os.urandom(3 << 20) + b"tail"  # more than one 1 MiB block, and a partial one
  path = tmp_path / "blob"
  path.write_bytes(data)
  assert files.sha256_file(path) == hashlib.sha256(data).hexdigest()
  (tmp_path / "empty").write_bytes(b"")
  assert files.sha256_file(str(tmp_path / "empty")) == hashlib.sha256(b"").hexdigest()
