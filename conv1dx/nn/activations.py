"""Activation functions by their Keras names.

`get("relu")` returns `jax.nn.relu`; a callable passes through; `None` and "linear" give identity.
Defaults follow `keras.activations` where they differ from `jax.nn`: "gelu" is the exact (erf) GELU
and "leaky_relu" has negative slope 0.2.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

Activation = Callable[[jax.Array], jax.Array]


def linear(x: jax.Array) -> jax.Array:
    """Identity activation (Keras' "linear")."""
    return x


def softmax(x: jax.Array) -> jax.Array:
    """Softmax over the last axis."""
    return jax.nn.softmax(x, axis=-1)


def gelu(x: jax.Array) -> jax.Array:
    """Keras' default GELU: the exact `x * Phi(x)` (jax.nn.gelu defaults to the tanh approximation)."""
    return jax.nn.gelu(x, approximate=False)


def leaky_relu(x: jax.Array) -> jax.Array:
    """Keras' `leaky_relu` activation: slope 0.2 for x < 0 (jax.nn.leaky_relu defaults to 0.01)."""
    return jax.nn.leaky_relu(x, negative_slope=0.2)


def hard_sigmoid(x: jax.Array) -> jax.Array:
    """Keras 3's hard sigmoid: relu6(x + 3) / 6."""
    return jnp.clip(x / 6.0 + 0.5, 0.0, 1.0)


_BY_NAME: dict[str, Activation] = {
    "linear": linear,
    "relu": jax.nn.relu,
    "relu6": jax.nn.relu6,
    "elu": jax.nn.elu,
    "selu": jax.nn.selu,
    "gelu": gelu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "sigmoid": jax.nn.sigmoid,
    "hard_sigmoid": hard_sigmoid,
    "tanh": jnp.tanh,
    "softmax": softmax,
    "softplus": jax.nn.softplus,
    "softsign": jax.nn.soft_sign,
    "leaky_relu": leaky_relu,
    "exponential": jnp.exp,
    "log_softmax": jax.nn.log_softmax,
}


def get(activation: str | Activation | None) -> Activation:
    """Resolve an activation given by Keras name, callable or None (identity)."""
    if activation is None:
        return linear
    if callable(activation):
        return activation
    try:
        return _BY_NAME[activation]
    except KeyError:
        known = ", ".join(sorted(_BY_NAME))
        raise ValueError(f"Unknown activation {activation!r}; use one of: {known}, or a callable.") from None
