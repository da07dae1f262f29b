"""Weight initializers by their Keras names and with Keras' default scales.

Every initializer has the `jax.nn.initializers` signature `init(key, shape, dtype) -> Array`. Fan-in and
fan-out follow Keras: for a kernel shaped `(K, C_in, F)` the receptive field K multiplies both, so
`glorot_uniform` here draws from the same distribution as Keras' for every layer.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.nn import initializers as jinit

Initializer = Callable[..., jax.Array]


def constant(value: float) -> Initializer:
    """Every entry equal to `value`."""
    return jinit.constant(value)


def random_normal(mean: float = 0.0, stddev: float = 0.05) -> Initializer:
    """Keras' RandomNormal (default stddev 0.05)."""

    def init(key, shape, dtype=jnp.float32):
        return mean + stddev * jax.random.normal(key, shape, dtype)

    return init


def random_uniform(minval: float = -0.05, maxval: float = 0.05) -> Initializer:
    """Keras' RandomUniform (default range [-0.05, 0.05])."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, minval, maxval)

    return init


def truncated_normal(mean: float = 0.0, stddev: float = 0.05) -> Initializer:
    """Keras' TruncatedNormal: normal truncated at two standard deviations."""

    def init(key, shape, dtype=jnp.float32):
        return mean + stddev * jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype)

    return init


_FACTORIES: dict[str, Callable[[], Initializer]] = {
    "zeros": lambda: jinit.zeros,
    "ones": lambda: jinit.ones,
    "glorot_uniform": jinit.glorot_uniform,
    "glorot_normal": jinit.glorot_normal,
    "he_uniform": jinit.he_uniform,
    "he_normal": jinit.he_normal,
    "lecun_uniform": jinit.lecun_uniform,
    "lecun_normal": jinit.lecun_normal,
    "orthogonal": jinit.orthogonal,
    "random_normal": random_normal,
    "random_uniform": random_uniform,
    "truncated_normal": truncated_normal,
}


def get(initializer: str | Initializer) -> Initializer:
    """Resolve an initializer given by Keras name (e.g. "glorot_uniform") or as a callable."""
    if callable(initializer):
        return initializer
    try:
        return _FACTORIES[initializer]()
    except KeyError:
        known = ", ".join(sorted(_FACTORIES))
        raise ValueError(
            f"Unknown initializer {initializer!r}; use one of: {known}, or a callable "
            "init(key, shape, dtype)."
        ) from None
