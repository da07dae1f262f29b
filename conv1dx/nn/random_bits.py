"""Random bits for dropout masks: the Threefry-2x32 hash, unrolled, four 16-bit draws per hash.

`jax.random.bits` lowers Threefry on CPU as a rolled 5-iteration loop (to keep compile times short)
that copies its whole state every iteration, and hashes one counter per output word. For the masks
that dropout draws every training step this was about a third of the UCI HAR convnet's CPU step.
Here the 20 rounds are written out, so XLA fuses the hash into one elementwise kernel, and each hash
of one counter yields 64 bits, used as four 16-bit uniform draws.

The hash is Threefry-2x32 with 20 rounds (Salmon et al., "Parallel random numbers: as easy as 1, 2,
3", SC 2011), the function JAX's default PRNG is built on; tests check it against the paper's
known-answer vectors and against JAX's own implementation.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def _rotate_left(x: jax.Array, bits: int) -> jax.Array:
    return (x << np.uint32(bits)) | (x >> np.uint32(32 - bits))


def threefry2x32(key0: jax.Array, key1: jax.Array, x0: jax.Array,
                 x1: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32-20 of the counter pairs `(x0, x1)` (uint32 arrays of one shape) under the key
    `(key0, key1)` (uint32 scalars): returns the two uint32 output words, shaped like `x0`."""
    keys = (key0, key1, key0 ^ key1 ^ _PARITY)
    x0 = x0 + keys[0]
    x1 = x1 + keys[1]
    for block in range(5):
        for rotation in _ROTATIONS[block % 2]:
            x0 = x0 + x1
            x1 = _rotate_left(x1, rotation) ^ x0
        x0 = x0 + keys[(block + 1) % 3]
        x1 = x1 + keys[(block + 2) % 3] + np.uint32(block + 1)
    return x0, x1


def uniform_uint16(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Independent uniform draws from [0, 65536) of `shape`, as uint32 values.

    Entry i is 16-bit lane i // W of the hash of counter i % W (W = ceil(n / 4) hashes for n
    entries), so every entry comes from distinct bits. `key` is a JAX PRNG key; keys of
    implementations other than Threefry fall back to `jax.random.bits`.
    """
    size = math.prod(shape)
    data = _threefry_key_data(key)
    if data is None:
        return jax.random.bits(key, shape, jnp.uint16).astype(jnp.uint32)
    if size >= 4 * 2**32:
        raise ValueError(f"Cannot draw {size} random numbers at once; the limit is 4 * 2**32.")
    words = -(-size // 4)
    counters = jnp.arange(words, dtype=jnp.uint32)
    high, low = threefry2x32(data[0], data[1], jnp.zeros_like(counters), counters)
    lanes = jnp.concatenate([high & 0xFFFF, high >> 16, low & 0xFFFF, low >> 16])
    return lanes[:size].reshape(shape)


def _threefry_key_data(key: jax.Array) -> jax.Array | None:
    """The uint32[2] Threefry key of a typed key or a raw `PRNGKey`; None for other PRNGs."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if str(jax.random.key_impl(key)) != "threefry2x32":
            return None
        return jax.random.key_data(key)
    if key.dtype == jnp.uint32 and key.shape == (2,):
        return key
    return None
