"""What runs a trained model: offline and streaming inference, export, and the runtimes.

- `inference`: a whole clip through a restored model (the evaluation's forward pass);
- `stream`: block-by-block streaming with a receptive-field cache and ramped knobs;
- `export`: `python -m ampspace.runtime.export`, a workdir to `model.{npz,json,w2w}`, an LV2
  bundle (`--lv2`) or NAM's `.nam` (`--nam`);
- `export_format`: the export format (array names, order and shapes, magic, constants),
  defined once; `export_runtime` (the single-file NumPy runtime) and the C sources are
  checked against it by tests/test_export_format.py;
- `export_runtime`: one file, NumPy only, copied beside each export;
- `c_runtime`: one C file (`w2w.c`), its ctypes binding and the LV2 plugin.

Models are loaded through `ampspace.checkpoints`; nothing here imports the trainers.
"""
