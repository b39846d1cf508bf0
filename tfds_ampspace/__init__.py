"""TFDS datasets of Amp-Space. Importing this registers `amp_space` with tensorflow_datasets."""

from tfds_ampspace.amp_space.amp_space_dataset_builder import Builder as AmpSpace

__all__ = ["AmpSpace"]
