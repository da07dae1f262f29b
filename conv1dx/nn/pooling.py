"""1D pooling layers with Keras semantics: windowed max/average pooling and global (masked) pooling.

Windowed pooling follows TF/Keras: strides default to `pool_size`; "valid" gives
`floor((T - P) / S) + 1` steps; "same" gives `ceil(T / S)` steps, padding
`max((out - 1) * S + P - T, 0)` steps split with the extra one on the right. Average pooling divides
by the number of real (unpadded) steps in each window, as TF does.

Speed: when `strides == pool_size` the input is reshaped to `(..., T // P, P, ...)` and reduced;
otherwise the window positions are `P` strided slices. Both combine the `P` positions with
elementwise max/add, whose forward and (especially) backward passes are faster on CPU than
`lax.reduce_window` and than a reduction over the window axis; windows longer than 16 steps use
`lax.reduce_window`.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from conv1dx.nn import arguments
from conv1dx.nn.conv_ops import downsample_mask
from conv1dx.nn.layer import Layer, Shape

_PADDINGS = ("valid", "same")
_MAX_UNROLLED_POOL = 16  # longer windows use lax.reduce_window


# -- pure functions --------------------------------------------------------------------------------
def pool_output_length(steps: int | None, pool_size: int, strides: int, padding: str) -> int | None:
    """Number of output steps of a 1D pooling over `steps` input steps (None stays None)."""
    if steps is None:
        return None
    if padding == "same":
        return -(-steps // strides)
    return (steps - pool_size) // strides + 1


def same_padding(steps: int, pool_size: int, strides: int) -> tuple[int, int]:
    """TF "same" padding `(left, right)`: the total split with the extra step on the right."""
    out = -(-steps // strides)
    total = max((out - 1) * strides + pool_size - steps, 0)
    return total // 2, total - total // 2


def _window_counts(steps: int, pool_size: int, strides: int, padding: str) -> np.ndarray:
    """Number of real (unpadded) input steps in each output window, computed statically."""
    left = same_padding(steps, pool_size, strides)[0] if padding == "same" else 0
    out = pool_output_length(steps, pool_size, strides, padding)
    starts = np.arange(out) * strides - left
    return (np.minimum(starts + pool_size, steps) - np.maximum(starts, 0)).astype(np.float32)


def _lowest(dtype) -> jax.Array:
    dtype = jnp.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.floating):
        return jnp.array(-jnp.inf, dtype)
    return jnp.array(jnp.iinfo(dtype).min, dtype)


def _window_slices(
    x: jax.Array, pool_size: int, strides: int, pads: tuple[int, int], fill, axis: int
):
    """The `pool_size` arrays whose k-th holds the k-th step of every window (`out` steps each).

    With `strides == pool_size` this is a reshape of the (padded, trimmed) input to
    `(..., out, P, ...)`; otherwise strided slices of the padded input. Combining them elementwise
    (max / sum) pools `x` with cheap gradients, unlike `lax.reduce_window` on CPU.
    """
    steps = x.shape[axis] + pads[0] + pads[1]
    out = (steps - pool_size) // strides + 1
    if pads != (0, 0):
        widths = [(0, 0)] * x.ndim
        widths[axis] = pads
        x = jnp.pad(x, widths, constant_values=fill)
    if strides == pool_size:
        x = lax.slice_in_dim(x, 0, out * pool_size, axis=axis)
        x = x.reshape(*x.shape[:axis], out, pool_size, *x.shape[axis + 1 :])
        return [lax.index_in_dim(x, k, axis + 1, keepdims=False) for k in range(pool_size)]
    stop = strides * (out - 1) + 1
    return [lax.slice_in_dim(x, k, k + stop, strides, axis) for k in range(pool_size)]


def pool1d(
    x: jax.Array, pool_size: int, strides: int, padding: str, kind: str, axis: int = 1
) -> jax.Array:
    """Max (`kind="max"`) or average (`kind="avg"`) pooling of `x` along its steps axis `axis`.

    `x` is `x_BxTxC` with `axis=1` (channels-last) or `x_BxCxT` with `axis=2` (channels-first);
    the output has `pool_output_length(T, ...)` steps on that axis. Average pooling excludes
    padded steps.
    """
    steps = x.shape[axis]
    if kind not in ("max", "avg") or padding not in _PADDINGS:
        raise ValueError(
            f"pool1d: kind must be 'max' or 'avg' and padding 'valid' or 'same', got "
            f"kind={kind!r}, padding={padding!r}."
        )
    if padding == "valid" and steps < pool_size:
        raise ValueError(
            f"pool1d: {steps} steps are fewer than pool_size={pool_size} (valid padding)."
        )
    if kind == "avg" and not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.float32)
    pads = same_padding(steps, pool_size, strides) if padding == "same" else (0, 0)
    fill = _lowest(x.dtype) if kind == "max" else jnp.zeros((), x.dtype)
    if pool_size <= _MAX_UNROLLED_POOL:
        windows = _window_slices(x, pool_size, strides, pads, fill, axis)
        pooled = functools.reduce(jnp.maximum if kind == "max" else jnp.add, windows)
    else:  # long windows: one reduction instead of pool_size elementwise ops
        window = [1] * x.ndim
        window[axis] = pool_size
        stride = [1] * x.ndim
        stride[axis] = strides
        padding_config = [(0, 0)] * x.ndim
        padding_config[axis] = pads
        reducer = lax.max if kind == "max" else lax.add
        pooled = lax.reduce_window(x, fill, reducer, window, stride, padding_config)
    if kind == "max":
        return pooled
    counts = _window_counts(steps, pool_size, strides, padding)
    counts_shape = [1] * x.ndim
    counts_shape[axis] = counts.shape[0]
    return pooled / jnp.asarray(counts.reshape(counts_shape), x.dtype)


# -- windowed pooling ------------------------------------------------------------------------------
class _Pooling1D(Layer):
    """Shared arguments and shape logic of MaxPooling1D and AveragePooling1D."""

    _kind = "max"

    def __init__(
        self,
        pool_size=2,
        strides=None,
        padding: str = "valid",
        data_format: str = "channels_last",
        *,
        input_shape=None,
        name: str | None = None,
        rngs=None,
    ):
        super().__init__(name=name)
        layer = type(self).__name__
        self.pool_size = arguments.positive_int(layer, "pool_size", pool_size)
        self.strides = (
            self.pool_size if strides is None else arguments.positive_int(layer, "strides", strides)
        )
        padding = padding.lower() if isinstance(padding, str) else padding
        if padding not in _PADDINGS:
            raise ValueError(f"{layer}: padding must be 'valid' or 'same', got {padding!r}.")
        self.padding = padding
        self.data_format = arguments.data_format(layer, data_format)
        self._init_build(input_shape, rngs)

    @property
    def _steps_axis(self) -> int:
        """Index of the steps axis in an array with the batch axis (shapes without it: minus 1)."""
        return 1 if self.data_format == "channels_last" else 2

    def check_input_shape(self, input_shape: Shape) -> None:
        super().check_input_shape(input_shape)
        steps = input_shape[self._steps_axis - 1]
        if self.padding == "valid" and steps is not None and steps < self.pool_size:
            raise ValueError(
                f"{type(self).__name__}: the input has {steps} steps, fewer than pool_size="
                f"{self.pool_size}; use padding='same' or a smaller pool_size."
            )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        shape = list(input_shape)
        axis = self._steps_axis - 1
        shape[axis] = pool_output_length(shape[axis], self.pool_size, self.strides, self.padding)
        return tuple(shape)

    def compute_mask(self, x, mask):
        """Output step o is valid when the last step of its window is (`conv_ops.downsample_mask`)."""
        if mask is None:
            return None
        steps = mask.shape[1]
        out_len = pool_output_length(steps, self.pool_size, self.strides, self.padding)
        pad_left = same_padding(steps, self.pool_size, self.strides)[0] if self.padding == "same" else 0
        return downsample_mask(mask, out_len, self.strides, self.pool_size, pad_left)

    def forward(self, x: jax.Array, *, mask, training, rngs) -> jax.Array:
        return pool1d(
            x, self.pool_size, self.strides, self.padding, self._kind, self._steps_axis
        )


class MaxPooling1D(_Pooling1D):
    """Max over windows of `pool_size` steps every `strides` steps.

    Input `x_BxTxC` (channels_last) or `x_BxCxT` (channels_first); output `BxT'xC` / `BxCxT'` with
    `T' = floor((T - P) / S) + 1` ("valid") or `ceil(T / S)` ("same"; padded steps never win).
    """

    _kind = "max"


class AveragePooling1D(_Pooling1D):
    """Mean over windows of `pool_size` steps every `strides` steps; padded steps are not counted.

    Input `x_BxTxC` (channels_last) or `x_BxCxT` (channels_first); output as for `MaxPooling1D`.
    """

    _kind = "avg"


# -- global pooling --------------------------------------------------------------------------------
class _GlobalPooling1D(Layer):
    """Shared arguments, mask handling and shapes of the global pooling layers."""

    def __init__(
        self,
        data_format: str = "channels_last",
        keepdims: bool = False,
        *,
        input_shape=None,
        name: str | None = None,
        rngs=None,
    ):
        super().__init__(name=name)
        self.data_format = arguments.data_format(type(self).__name__, data_format)
        self.keepdims = bool(keepdims)
        self._init_build(input_shape, rngs)

    @property
    def _steps_axis(self) -> int:
        """Index of the steps axis in an array with the batch axis."""
        return 1 if self.data_format == "channels_last" else 2

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        channels = input_shape[-1] if self.data_format == "channels_last" else input_shape[0]
        if not self.keepdims:
            return (channels,)
        return (1, channels) if self.data_format == "channels_last" else (channels, 1)

    def compute_mask(self, x, mask):
        return None

    def _valid(self, x: jax.Array, mask) -> jax.Array | None:
        """The mask as booleans broadcastable against `x` (None when there is no mask)."""
        if mask is None:
            return None
        mask = jnp.asarray(mask)
        batch, steps = x.shape[0], x.shape[self._steps_axis]
        if mask.shape != (batch, steps):
            raise ValueError(
                f"{type(self).__name__}: mask must have shape (batch, steps) = ({batch}, {steps}), "
                f"got {mask.shape}."
            )
        return jnp.expand_dims(mask.astype(bool), 2 if self._steps_axis == 1 else 1)


class GlobalMaxPooling1D(_GlobalPooling1D):
    """Max over all (valid) steps: `x_BxTxC` (or `x_BxCxT`) -> `y_BxC` (keepdims: `Bx1xC`/`BxCx1`).

    With `mask_BxT` (True = valid) padded steps never win; a row with no valid step gives zeros.
    """

    def forward(self, x: jax.Array, *, mask, training, rngs) -> jax.Array:
        valid = self._valid(x, mask)
        axis = self._steps_axis
        if valid is None:
            return jnp.max(x, axis=axis, keepdims=self.keepdims)
        y = jnp.max(jnp.where(valid, x, _lowest(x.dtype)), axis=axis, keepdims=self.keepdims)
        any_valid = jnp.any(valid, axis=axis, keepdims=self.keepdims)
        return jnp.where(any_valid, y, jnp.zeros((), x.dtype))


class GlobalAveragePooling1D(_GlobalPooling1D):
    """Mean over all (valid) steps: `x_BxTxC` (or `x_BxCxT`) -> `y_BxC` (keepdims: `Bx1xC`/`BxCx1`).

    With `mask_BxT` (True = valid) the mean is the sum over valid steps divided by their number, so
    padding never dilutes it; a row with no valid step gives zeros.
    """

    def forward(self, x: jax.Array, *, mask, training, rngs) -> jax.Array:
        if not jnp.issubdtype(x.dtype, jnp.inexact):
            x = x.astype(jnp.float32)
        valid = self._valid(x, mask)
        axis = self._steps_axis
        if valid is None:
            return jnp.mean(x, axis=axis, keepdims=self.keepdims)
        # Summed and divided in (at least) float32: a bfloat16 count is inexact above 256 steps.
        accumulate = jnp.promote_types(x.dtype, jnp.float32)
        total = jnp.sum(jnp.where(valid, x, 0), axis=axis, keepdims=self.keepdims, dtype=accumulate)
        count = jnp.sum(valid, axis=axis, keepdims=self.keepdims).astype(accumulate)
        return (total / jnp.maximum(count, 1)).astype(x.dtype)


# Keras' short aliases.
MaxPool1D = MaxPooling1D
AvgPool1D = AveragePooling1D
GlobalMaxPool1D = GlobalMaxPooling1D
GlobalAvgPool1D = GlobalAveragePooling1D
