"""Batch and layer normalization with Keras' arguments, defaults, weight names and update rule.

Both compute `y = (x - mean) / sqrt(var + epsilon) * gamma + beta` with the biased variance; they
differ in which statistics they use: BatchNormalization the batch's (training) or its moving
averages (inference), per channel; LayerNormalization each example's own, over the normalized axes.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from conv1dx.nn.layer import Layer, Shape


def _axes(layer: str, axis, ndim: int) -> tuple[int, ...]:
    """`axis` (int or ints, batch axis counted, negatives allowed) as sorted non-negative ints."""
    raw = (axis,) if isinstance(axis, int) else tuple(axis)
    if not raw or any(not -ndim <= a < ndim for a in raw):
        raise ValueError(
            f"{layer}: axis {axis!r} is out of range for inputs of rank {ndim} "
            "(batch axis included)."
        )
    axes = tuple(sorted({a % ndim for a in raw}))
    if 0 in axes:
        raise ValueError(
            f"{layer}: axis {axis!r} names the batch axis (0); use the features axis (-1)."
        )
    return axes


def _broadcast(v: jax.Array, axes: tuple[int, ...], ndim: int) -> jax.Array:
    """A weight shaped like the dims at `axes` reshaped to broadcast against a rank-`ndim` input."""
    shape = [1] * ndim
    for a, d in zip(axes, v.shape, strict=True):
        shape[a] = d
    return v.reshape(shape)


class _Normalization(Layer):
    """Shared arguments, shape checks and affine weights (gamma, beta) of the normalizations."""

    expected_rank = None
    supports_masking = True

    def _configure(self, axis, epsilon, center, scale):
        if isinstance(axis, bool) or not (
            isinstance(axis, int)
            or (isinstance(axis, Sequence) and all(isinstance(a, int) for a in axis))
        ):
            raise ValueError(
                f"{type(self).__name__}: axis must be an int or a sequence of ints, got {axis!r}."
            )
        if not epsilon > 0:
            raise ValueError(f"{type(self).__name__}: epsilon must be positive, got {epsilon!r}.")
        self.axis = axis if isinstance(axis, int) else tuple(axis)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)

    def _param_axes(self, input_shape: Shape) -> tuple[int, ...]:
        return _axes(type(self).__name__, self.axis, len(input_shape) + 1)

    def _param_shape(self, input_shape: Shape) -> tuple[int, ...]:
        return tuple(input_shape[a - 1] for a in self._param_axes(input_shape))

    def check_input_shape(self, input_shape: Shape) -> None:
        if len(input_shape) < 1:
            raise ValueError(
                f"{type(self).__name__} expects inputs of rank >= 2 (batch, ..., features)."
            )
        shape = self._param_shape(input_shape)
        if None in shape:
            raise ValueError(
                f"{type(self).__name__} needs known sizes on axis {self.axis!r}, got {shape}."
            )
        if self.built and shape != self._param_shape(self.input_shape):
            raise ValueError(
                f"{type(self).__name__} was built for size {self._param_shape(self.input_shape)} "
                f"on axis {self.axis!r} but got an input with {shape}."
            )

    def _build_affine(self, shape: tuple[int, ...], rngs) -> None:
        if self.scale:
            self.add_configured_weight("gamma", shape, rngs)
        if self.center:
            self.add_configured_weight("beta", shape, rngs)

    def _normalize(self, x, mean, var, axes) -> jax.Array:
        """`(x - mean) / sqrt(var + eps) * gamma + beta` in float32, returned in x's dtype."""
        inv = jax.lax.rsqrt(var + self.epsilon)
        if self.scale:
            inv = inv * _broadcast(self.gamma[...], axes, x.ndim)
        y = (x.astype(jnp.float32) - mean) * inv
        if self.center:
            y = y + _broadcast(self.beta[...], axes, x.ndim)
        return y.astype(x.dtype)


class BatchNormalization(_Normalization):
    """Normalizes each feature of `x_Bx...xC` (axis `axis`) with batch or moving statistics.

    training=True: statistics over every axis but `axis` (only over valid steps when `mask_BxT` is
    given: a mask of rank `x.ndim - 1` is expanded at `axis`), then
    `moving = moving * momentum + batch * (1 - momentum)` for the mean and the (biased) variance.
    training=False: the moving statistics. Weights: gamma, beta (trainable, shape (C,)) and
    moving_mean, moving_variance (non-trainable `nnx.BatchStat`). Under jit, use the functional
    pattern with the whole state as an argument (a closed-over state cannot be updated): the updated
    moving statistics are in `nnx.state(model)` (or `nnx.split(model)`) after the call.
    """

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        moving_mean_initializer="zeros",
        moving_variance_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        *,
        input_shape=None,
        name: str | None = None,
        rngs=None,
    ):
        super().__init__(name=name)
        if not isinstance(axis, int) or isinstance(axis, bool):
            raise ValueError(
                f"BatchNormalization: axis must be an int (the features axis), got {axis!r}."
            )
        if not 0 <= momentum <= 1:
            raise ValueError(f"BatchNormalization: momentum must be in [0, 1], got {momentum!r}.")
        self._configure(axis, epsilon, center, scale)
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer
        self.beta_regularizer, self.gamma_regularizer = beta_regularizer, gamma_regularizer
        self.beta_constraint, self.gamma_constraint = beta_constraint, gamma_constraint
        self.momentum = float(momentum)
        self.moving_mean_initializer = moving_mean_initializer
        self.moving_variance_initializer = moving_variance_initializer
        self._init_build(input_shape, rngs)

    def build(self, input_shape: Shape, rngs) -> None:
        shape = self._param_shape(input_shape)
        self._build_affine(shape, rngs)
        self.add_weight("moving_mean", shape, self.moving_mean_initializer, rngs, trainable=False)
        self.add_weight(
            "moving_variance", shape, self.moving_variance_initializer, rngs, trainable=False
        )

    def _batch_moments(self, x: jax.Array, mask, axes: tuple[int, ...]):
        """Per-feature mean and biased variance over all axes but `axes` (valid steps only)."""
        reduce = tuple(a for a in range(x.ndim) if a not in axes)
        x = x.astype(jnp.float32)
        if mask is None:
            mean = jnp.mean(x, axis=reduce, keepdims=True)
            return mean, jnp.mean(jnp.square(x - mean), axis=reduce, keepdims=True)
        mask = jnp.asarray(mask)
        if mask.ndim != x.ndim - 1:
            raise ValueError(
                f"BatchNormalization: mask of shape {mask.shape} does not fit inputs of shape "
                f"{x.shape}; give one entry per position without the features axis, e.g. mask_BxT "
                "for x_BxTxC."
            )
        weights = jnp.broadcast_to(jnp.expand_dims(mask.astype(jnp.float32), axes[0]), x.shape)
        count = jnp.maximum(jnp.sum(weights, axis=reduce, keepdims=True), 1.0)
        mean = jnp.sum(weights * x, axis=reduce, keepdims=True) / count
        var = jnp.sum(weights * jnp.square(x - mean), axis=reduce, keepdims=True) / count
        return mean, var

    def forward(self, x: jax.Array, *, mask, training, rngs) -> jax.Array:
        axes = self._param_axes(x.shape[1:])
        if not training:
            mean = _broadcast(self.moving_mean[...], axes, x.ndim)
            var = _broadcast(self.moving_variance[...], axes, x.ndim)
            return self._normalize(x, mean, var, axes)
        mean, var = self._batch_moments(x, mask, axes)
        shape = self.moving_mean.shape
        m = self.momentum
        batch_mean = jax.lax.stop_gradient(mean).reshape(shape)
        batch_var = jax.lax.stop_gradient(var).reshape(shape)
        self.moving_mean[...] = self.moving_mean[...] * m + batch_mean * (1.0 - m)
        self.moving_variance[...] = self.moving_variance[...] * m + batch_var * (1.0 - m)
        return self._normalize(x, mean, var, axes)


class LayerNormalization(_Normalization):
    """Normalizes each example of `x_Bx...` over the axes `axis` (default the features axis).

    Statistics per example (the mean and biased variance over `axis`), so training and inference
    agree and the mask is irrelevant (passed through). gamma and beta have the sizes of the `axis`
    dims.
    """

    def __init__(
        self,
        axis=-1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        *,
        input_shape=None,
        name: str | None = None,
        rngs=None,
    ):
        super().__init__(name=name)
        self._configure(axis, epsilon, center, scale)
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer
        self.beta_regularizer, self.gamma_regularizer = beta_regularizer, gamma_regularizer
        self.beta_constraint, self.gamma_constraint = beta_constraint, gamma_constraint
        self._init_build(input_shape, rngs)

    def build(self, input_shape: Shape, rngs) -> None:
        self._build_affine(self._param_shape(input_shape), rngs)

    def forward(self, x: jax.Array, *, mask, training, rngs) -> jax.Array:
        axes = self._param_axes(x.shape[1:])
        xf = x.astype(jnp.float32)
        mean = jnp.mean(xf, axis=axes, keepdims=True)
        var = jnp.mean(jnp.square(xf - mean), axis=axes, keepdims=True)
        return self._normalize(x, mean, var, axes)
