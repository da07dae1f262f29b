"""Weight and activity regularizers (Keras' l1, l2, l1_l2).

A regularizer is a frozen dataclass mapping a tensor to a scalar penalty. Layers keep them as static
configuration; `conv1dx.nn.regularization_loss(model)` adds up every penalty of a model, and the trainer adds
that sum to the data loss.
"""

from dataclasses import dataclass

import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class L1L2:
    """penalty = l1 * sum(|w|) + l2 * sum(w**2)."""

    l1: float = 0.0
    l2: float = 0.0

    def __post_init__(self):
        if self.l1 < 0 or self.l2 < 0:
            raise ValueError(f"Regularization factors must be >= 0, got l1={self.l1}, l2={self.l2}.")

    def __call__(self, x: jax.Array) -> jax.Array:
        penalty = jnp.zeros((), jnp.float32)
        if self.l1:
            penalty += self.l1 * jnp.sum(jnp.abs(x))
        if self.l2:
            penalty += self.l2 * jnp.sum(jnp.square(x))
        return penalty


def l1(l1: float = 0.01) -> L1L2:
    """Keras' L1 (default factor 0.01)."""
    return L1L2(l1=l1)


def l2(l2: float = 0.01) -> L1L2:
    """Keras' L2 (default factor 0.01)."""
    return L1L2(l2=l2)


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:
    """Keras' L1L2 (default factors 0.01 and 0.01)."""
    return L1L2(l1=l1, l2=l2)


_BY_NAME = {"l1": l1, "l2": l2, "l1_l2": l1_l2}


def get(regularizer):
    """Resolve None, a Keras name ("l2"), or a callable penalty."""
    if regularizer is None or callable(regularizer):
        return regularizer
    try:
        return _BY_NAME[regularizer]()
    except KeyError:
        raise ValueError(
            f"Unknown regularizer {regularizer!r}; use one of: {', '.join(_BY_NAME)}, or a callable."
        ) from None
