"""The experiment configs: files with `get_config(arg)`, loaded by path (ml_collections'
`--config=configs/NAME.py:ARG`, or `ampspace.config_files.load_config`), never imported as
modules of this package. The package exists so that an installed ampspace ships them
(as `ampspace.configs`); `configs/common.py` holds what they share."""
