"""The paper's mel-spectrogram VAE: a continuous 3-D "soundspace" of device timbres.

Reading of the paper (Naradowsky 2021, Sec. 5): input is a log-mel spectrogram (FFT 2048, 256
mels, hop 256); the encoder is four 1-D convolution + pooling layers ending in a 512-d
representation, from which two dense heads give the mean and log-variance of a 3-D Gaussian
latent with a standard-normal prior; the decoder mirrors it with transposed convolutions.

Choices the paper leaves open, and ours:
- The convolutions run over *time* with the 256 mel bands as input channels (a 1-D conv over
  frequency would make the representation shift-invariant in pitch, which is not what a
  timbre space wants, and over time is how 1-D audio encoders are usually read).
- An example is a fixed window of `num_frames` frames (default 64, ~0.37 s): the encoder ends
  in a dense layer, so the length must be fixed; a 3-D code cannot carry the notes of a 4 s
  clip anyway, so short windows give many examples per clip while the latent still has to
  separate the devices. A whole clip is encoded window by window (`soundspace.encode_audio`)
  and summarised by the mean of its window means.
- `factor_hidden=False` (default): one shared `hidden`-unit layer feeds the mean and
  log-variance heads, and the decoder mirrors it. `factor_hidden=True` reads the paper's
  "512 for each factor": every latent dimension has its own `hidden`-unit layer between the
  convolutions and its mean and log-variance (and, in the decoder, from its value back to the
  expansion), so each factor is read out of the features separately.
- Input is affinely normalised, (log_mel - mel_offset) / mel_scale, and the reconstruction
  term is a unit-variance Gaussian log-likelihood in that space (0.5 * squared error summed
  over frames and mels). The KL term is weighted by beta, annealed linearly from
  `beta_start` to `beta` over `warmup_steps` (Bowman et al. 2016), so the decoder learns to
  use the code before the prior pulls it in.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from ampspace.errors import AmpSpaceError

NUM_DOWNSAMPLINGS = 4  # four conv + pool stages, each halving the frames


class MelVAE(nnx.Module):
  """log-mel windows [B, T, n_mels] -> (reconstruction [B, T, n_mels], mean [B, D], logvar [B, D])."""

  def __init__(
    self,
    *,
    n_mels: int = 256,
    num_frames: int = 64,
    latent_dim: int = 3,
    channels: Sequence[int] = (128, 128, 256, 256),
    hidden: int = 512,
    kernel_size: int = 5,
    mel_offset: float = 1.0,
    mel_scale: float = 2.0,
    factor_hidden: bool = False,
    rngs: nnx.Rngs,
  ):
    if len(channels) != NUM_DOWNSAMPLINGS:
      raise AmpSpaceError(
        f"model.channels: expected {NUM_DOWNSAMPLINGS} values (one per "
        f"conv + pool stage), got {list(channels)}"
      )
    if num_frames % 2**NUM_DOWNSAMPLINGS:
      raise AmpSpaceError(
        f"model.num_frames={num_frames}: must be a multiple of "
        f"{2**NUM_DOWNSAMPLINGS} (four 2x poolings)"
      )
    if mel_scale <= 0:
      raise AmpSpaceError(f"model.mel_scale={mel_scale}: must be positive")
    self.n_mels, self.num_frames, self.latent_dim = n_mels, num_frames, latent_dim
    self.mel_offset, self.mel_scale = float(mel_offset), float(mel_scale)
    channels = [int(c) for c in channels]
    self.bottom_frames = num_frames // 2**NUM_DOWNSAMPLINGS
    self.bottom_channels = channels[-1]

    ins = [n_mels] + channels[:-1]
    self.enc_convs = nnx.List(
      [nnx.Conv(i, o, (kernel_size,), padding="SAME", rngs=rngs) for i, o in zip(ins, channels)]
    )
    flat = self.bottom_frames * channels[-1]
    self.factor_hidden, self.hidden = bool(factor_hidden), int(hidden)
    if self.factor_hidden:  # one hidden layer per latent factor, as grouped weights
      self.enc_dense = nnx.Linear(flat, latent_dim * hidden, rngs=rngs)
      lecun = nnx.initializers.lecun_normal()
      self.mean_w = nnx.Param(lecun(rngs.params(), (latent_dim, hidden, 1))[..., 0])
      self.mean_b = nnx.Param(jnp.zeros((latent_dim,)))
      self.logvar_w = nnx.Param(jnp.zeros((latent_dim, hidden)))
      self.logvar_b = nnx.Param(jnp.zeros((latent_dim,)))
      self.dec_w = nnx.Param(nnx.initializers.normal(1.0)(rngs.params(), (latent_dim, hidden)))
      self.dec_b = nnx.Param(jnp.zeros((latent_dim, hidden)))
      self.dec_expand = nnx.Linear(latent_dim * hidden, flat, rngs=rngs)
    else:
      self.enc_dense = nnx.Linear(flat, hidden, rngs=rngs)
      self.mean = nnx.Linear(hidden, latent_dim, rngs=rngs)
      self.logvar = nnx.Linear(
        hidden, latent_dim, rngs=rngs, kernel_init=nnx.initializers.zeros_init()
      )
      self.dec_dense = nnx.Linear(latent_dim, hidden, rngs=rngs)
      self.dec_expand = nnx.Linear(hidden, flat, rngs=rngs)
    outs = channels[::-1][1:] + [n_mels]
    self.dec_convs = nnx.List(
      [
        nnx.ConvTranspose(i, o, (kernel_size,), strides=(2,), padding="SAME", rngs=rngs)
        for i, o in zip(channels[::-1], outs)
      ]
    )

  # ---------------------------------------------------------------- normalisation
  def normalise(self, log_mel):
    return (log_mel - self.mel_offset) / self.mel_scale

  def denormalise(self, x):
    return x * self.mel_scale + self.mel_offset

  # ---------------------------------------------------------------- encoder / decoder
  def encode(self, log_mel):
    """[B, T, n_mels] log-mel -> (mean, logvar), each [B, latent_dim]."""
    if log_mel.shape[-2:] != (self.num_frames, self.n_mels):
      raise AmpSpaceError(
        f"MelVAE.encode: expected windows [..., {self.num_frames}, "
        f"{self.n_mels}], got {tuple(log_mel.shape)}"
      )
    h = self.normalise(log_mel)
    for conv in self.enc_convs:
      h = nnx.avg_pool(nnx.leaky_relu(conv(h), 0.2), window_shape=(2,), strides=(2,))
    h = nnx.leaky_relu(self.enc_dense(h.reshape(h.shape[0], -1)), 0.2)
    if self.factor_hidden:  # [B, D, hidden]: factor d reads only its own hidden units
      h = h.reshape(h.shape[0], self.latent_dim, self.hidden)
      mean = jnp.einsum("bdh,dh->bd", h, self.mean_w[...]) + self.mean_b[...]
      logvar = jnp.einsum("bdh,dh->bd", h, self.logvar_w[...]) + self.logvar_b[...]
      return mean, jnp.clip(logvar, -12.0, 8.0)
    return self.mean(h), jnp.clip(self.logvar(h), -12.0, 8.0)

  def decode(self, z):
    """[B, latent_dim] -> [B, T, n_mels] log-mel (denormalised)."""
    if self.factor_hidden:  # factor d -> its own hidden units, then all of them together
      h = nnx.leaky_relu(z[..., None] * self.dec_w[...] + self.dec_b[...], 0.2)
      h = h.reshape(z.shape[0], self.latent_dim * self.hidden)
    else:
      h = nnx.leaky_relu(self.dec_dense(z), 0.2)
    h = nnx.leaky_relu(self.dec_expand(h), 0.2)
    h = h.reshape(z.shape[0], self.bottom_frames, self.bottom_channels)
    for k, conv in enumerate(self.dec_convs):
      h = conv(h)
      if k < len(self.dec_convs) - 1:
        h = nnx.leaky_relu(h, 0.2)
    return self.denormalise(h)

  def __call__(self, log_mel, key=None):
    """Reconstruction from a reparameterised sample (or from the mean when `key` is None)."""
    mean, logvar = self.encode(log_mel)
    z = mean if key is None else mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape)
    return self.decode(z), mean, logvar


# ------------------------------------------------------------------ objective
def gaussian_kl(mean, logvar):
  """KL(N(mean, exp(logvar)) || N(0, I)) per example, summed over latent dimensions."""
  return 0.5 * jnp.sum(jnp.exp(logvar) + mean**2 - 1.0 - logvar, axis=-1)


def kl_beta(step, *, beta: float = 1.0, warmup_steps: int = 0, beta_start: float = 0.0):
  """KL annealing: beta_start -> beta linearly over `warmup_steps` (then constant)."""
  if warmup_steps <= 0:
    return jnp.asarray(beta, jnp.float32)
  frac = jnp.clip(jnp.asarray(step, jnp.float32) / warmup_steps, 0.0, 1.0)
  return beta_start + (beta - beta_start) * frac


def elbo_terms(model: MelVAE, log_mel, key, beta):
  """(loss, metrics): loss = reconstruction + beta * KL, per-example means over the batch.

  `elbo` reports reconstruction + KL (the negative ELBO up to the Gaussian's constant, i.e.
  beta = 1) so runs with different annealing compare on one scale.
  """
  recon, mean, logvar = model(log_mel, key)
  err = model.normalise(recon) - model.normalise(log_mel)
  rec = 0.5 * jnp.sum(err**2, axis=(-2, -1))
  kl = gaussian_kl(mean, logvar)
  loss = jnp.mean(rec + beta * kl)
  metrics = {
    "loss": loss,
    "elbo": jnp.mean(rec + kl),
    "reconstruction": jnp.mean(rec),
    "kl": jnp.mean(kl),
    "beta": jnp.asarray(beta, jnp.float32),
    "mel_l1": jnp.mean(jnp.abs(recon - log_mel)),
  }
  return loss, metrics
