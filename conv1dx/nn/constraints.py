"""Weight constraints (Keras' max_norm, non_neg, unit_norm, min_max_norm), applied after each update.

A constraint maps a weight tensor to its projection. The norm constraints default to Keras' `axis=0`:
for a bias or Dense/recurrent kernel that is each output unit's incoming weights as one vector; for a
Conv1D kernel `(K, C, F)` it is the K taps of each (input channel, filter) pair. Pass `axis=(0, 1)` to
constrain each convolution filter as a whole (what Keras' documentation recommends for convolutions).
`conv1dx.nn.apply_constraints(model)` projects every constrained weight of a model in place.
"""

from dataclasses import dataclass

import jax
import jax.numpy as jnp

_EPSILON = 1e-7


def _norms(w: jax.Array, axis) -> jax.Array:
    return jnp.sqrt(jnp.sum(jnp.square(w), axis=axis, keepdims=True))


def _default_axis(w: jax.Array, axis):
    """`axis`, or Keras' default 0."""
    return 0 if axis is None else axis


@dataclass(frozen=True)
class MaxNorm:
    """Rescale each unit's incoming weights to norm at most `max_value`."""

    max_value: float = 2.0
    axis: int | tuple[int, ...] | None = None

    def __call__(self, w: jax.Array) -> jax.Array:
        norms = _norms(w, _default_axis(w, self.axis))
        desired = jnp.clip(norms, 0.0, self.max_value)
        return w * (desired / (_EPSILON + norms))


@dataclass(frozen=True)
class NonNeg:
    """Clip weights to be non-negative."""

    def __call__(self, w: jax.Array) -> jax.Array:
        return w * (w >= 0.0).astype(w.dtype)


@dataclass(frozen=True)
class UnitNorm:
    """Rescale each unit's incoming weights to unit norm."""

    axis: int | tuple[int, ...] | None = None

    def __call__(self, w: jax.Array) -> jax.Array:
        return w / (_EPSILON + _norms(w, _default_axis(w, self.axis)))


@dataclass(frozen=True)
class MinMaxNorm:
    """Move each unit's norm towards [min_value, max_value] at `rate` (1.0 = project exactly)."""

    min_value: float = 0.0
    max_value: float = 1.0
    rate: float = 1.0
    axis: int | tuple[int, ...] | None = None

    def __call__(self, w: jax.Array) -> jax.Array:
        norms = _norms(w, _default_axis(w, self.axis))
        desired = self.rate * jnp.clip(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        return w * (desired / (_EPSILON + norms))


max_norm = MaxNorm
non_neg = NonNeg
unit_norm = UnitNorm
min_max_norm = MinMaxNorm

_BY_NAME = {"max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm, "min_max_norm": MinMaxNorm}


def get(constraint):
    """Resolve None, a Keras name ("max_norm"), or a callable projection."""
    if constraint is None or callable(constraint):
        return constraint
    try:
        return _BY_NAME[constraint]()
    except KeyError:
        raise ValueError(
            f"Unknown constraint {constraint!r}; use one of: {', '.join(_BY_NAME)}, or a callable."
        ) from None
