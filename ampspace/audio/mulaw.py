"""mu-law companding and quantisation to 256 classes (the model's output alphabet)."""

from __future__ import annotations

import numpy as np

MU = 255
NUM_CLASSES = 256


def mulaw_encode(x, mu: int = MU, xp=np):
  """Continuous companding of x in [-1, 1] to [-1, 1]."""
  x = xp.clip(x, -1.0, 1.0)
  return xp.sign(x) * xp.log1p(mu * xp.abs(x)) / np.log1p(mu)


def mulaw_decode(y, mu: int = MU, xp=np):
  """Inverse of mulaw_encode."""
  return xp.sign(y) * ((1.0 + mu) ** xp.abs(y) - 1.0) / mu


def quantize(x, num_classes: int = NUM_CLASSES, xp=np):
  """Audio in [-1, 1] -> integer class in [0, num_classes) after mu-law companding."""
  y = mulaw_encode(x, num_classes - 1, xp=xp)
  q = xp.floor((y + 1.0) / 2.0 * (num_classes - 1) + 0.5)
  return xp.clip(q, 0, num_classes - 1).astype(xp.int32)


def class_centers(num_classes: int = NUM_CLASSES, xp=np):
  """The audio value that each class decodes to."""
  y = xp.arange(num_classes, dtype=xp.float32) / (num_classes - 1) * 2.0 - 1.0
  return mulaw_decode(y, num_classes - 1, xp=xp)


def dequantize(q, num_classes: int = NUM_CLASSES, xp=np):
  """Class index -> audio value (the class centre)."""
  return class_centers(num_classes, xp=xp)[q]
