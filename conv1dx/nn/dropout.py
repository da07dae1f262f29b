"""Dropout layers (Keras semantics): inverted dropout of single units or of whole channels."""

import jax
import jax.numpy as jnp

from conv1dx.nn import arguments, random_bits
from conv1dx.nn.layer import Layer, rng_key


def keep_mask(key: jax.Array, rate: float, shape: tuple[int, ...]) -> jax.Array:
    """Bool keep mask of `shape`: each entry False with probability `rate` (to within 2**-16).

    Draws 16-bit random numbers, four per hash of the unrolled Threefry (`random_bits`): drawing
    the masks was most of dropout's cost on a CPU, and about a third of a small convnet's step with
    `jax.random.bernoulli`.
    """
    threshold = int(round((1.0 - rate) * 65536))
    return random_bits.uniform_uint16(key, shape) < threshold


def dropout(x: jax.Array, rate: float, key: jax.Array, noise_shape: tuple[int, ...] | None = None):
    """Inverted dropout: zero each entry with probability `rate`, scale the rest by 1 / (1 - rate).

    `noise_shape` (broadcastable to `x.shape`, default `x.shape`) shares one keep/drop draw along
    its size-1 axes, e.g. `(B, 1, C)` drops whole channels of `x_BxTxC`.
    """
    if rate == 0:
        return x
    keep = keep_mask(key, rate, x.shape if noise_shape is None else noise_shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros((), x.dtype))


class Dropout(Layer):
    """Randomly zeroes inputs with probability `rate` during training; identity otherwise.

    Input and output `x_Bx...` of any rank. `noise_shape` (with the batch axis, `None` entries
    taken from the input) makes draws shared along its size-1 axes. Randomness comes from the
    call's `rngs` (stream "dropout"); `seed`, if given, is folded into that key so that layers
    with different seeds draw different masks from the same stream.
    """

    expected_rank = None
    supports_masking = True

    def __init__(
        self,
        rate: float,
        noise_shape=None,
        seed: int | None = None,
        *,
        input_shape=None,
        name: str | None = None,
        rngs=None,
    ):
        super().__init__(name=name)
        self.rate = arguments.dropout_rate(type(self).__name__, "rate", rate)
        if noise_shape is not None:
            noise_shape = tuple(None if d is None else int(d) for d in noise_shape)
        self.noise_shape = noise_shape
        self.seed = None if seed is None else int(seed)
        self._init_build(input_shape, rngs)

    def _noise_shape(self, x: jax.Array) -> tuple[int, ...]:
        if self.noise_shape is None:
            return x.shape
        if len(self.noise_shape) != x.ndim:
            raise ValueError(
                f"{type(self).__name__}: noise_shape {self.noise_shape} has rank "
                f"{len(self.noise_shape)} but the input has rank {x.ndim} (shape {x.shape}); give "
                "one entry per axis, batch included."
            )
        shape = tuple(x.shape[i] if d is None else d for i, d in enumerate(self.noise_shape))
        for d, n in zip(shape, x.shape, strict=True):
            if d not in (1, n):
                raise ValueError(
                    f"{type(self).__name__}: noise_shape {self.noise_shape} does not broadcast to "
                    f"the input shape {x.shape}; each entry must be 1, None or the input's size."
                )
        return shape

    def forward(self, x: jax.Array, *, mask, training, rngs) -> jax.Array:
        if not training or self.rate == 0:
            return x
        if rngs is None:
            raise ValueError(
                f"{type(self).__name__}(rate={self.rate}) is called with training=True but no "
                "rngs: pass rngs=nnx.Rngs(dropout=seed) (or a PRNG key) to the call, or call with "
                "training=False."
            )
        key = rng_key(rngs, "dropout")
        if self.seed is not None:
            key = jax.random.fold_in(key, self.seed)
        return dropout(x, self.rate, key, self._noise_shape(x))


class SpatialDropout1D(Dropout):
    """Dropout of whole channels: one draw per (example, channel), noise shape `(B, 1, C)`.

    Input and output `x_BxTxC`. Use it after convolutions, where neighbouring steps are correlated
    and dropping single entries regularizes little.
    """

    expected_rank = 3

    def __init__(
        self, rate: float, seed: int | None = None, *, input_shape=None, name=None, rngs=None
    ):
        super().__init__(rate, None, seed, input_shape=input_shape, name=name, rngs=rngs)

    def _noise_shape(self, x: jax.Array) -> tuple[int, ...]:
        return (x.shape[0], 1, x.shape[2])
