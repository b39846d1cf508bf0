"""Weight initialisation schemes a model's config can name (`model.init`).

"flax": Flax's defaults (LeCun-normal kernels, zero biases).
"torch": PyTorch's `Conv1d`/`Linear` defaults, every weight and bias uniform in ±1/sqrt(fan_in):
kernels a standard deviation sqrt(3) smaller than Flax's; what NAM's trainer starts from.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ampspace.errors import AmpSpaceError

INITS = ("flax", "torch")


def init_kwargs(init: str, fan_in: int) -> dict:
  """`kernel_init`/`bias_init` keywords for an nnx layer with `fan_in` inputs."""
  if init == "flax":
    return {}
  if init == "torch":
    bound = 1.0 / fan_in**0.5

    def uniform(key, shape, dtype=jnp.float32):
      return jax.random.uniform(key, shape, dtype, -bound, bound)

    return {"kernel_init": uniform, "bias_init": uniform}
  raise AmpSpaceError(f"model.init: {init!r} is not one of {', '.join(INITS)}")
