"""Weight-free layers that reshape, pad, crop or repeat steps (Keras semantics), plus `Activation`.

Masks: ZeroPadding1D, Cropping1D and UpSampling1D transform `mask_BxT` like the steps (padded steps
are invalid); Flatten and Reshape drop it; Activation passes it through.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np

from conv1dx.nn import activations, arguments
from conv1dx.nn.layer import Layer, Shape


def _pair(layer: str, argument: str, value) -> tuple[int, int]:
    """`(left, right)` non-negative ints from an int or a pair."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 for v in pair
    ):
        raise ValueError(
            f"{layer}: {argument} must be a non-negative int or a pair (left, right) of them, "
            f"got {value!r}."
        )
    return int(pair[0]), int(pair[1])


class Activation(Layer):
    """`y = activation(x)` elementwise, any rank; activations by Keras name ("relu") or callable."""

    expected_rank = None
    supports_masking = True

    def __init__(self, activation, *, input_shape=None, name: str | None = None, rngs=None):
        super().__init__(name=name)
        self.activation = activations.get(activation)
        self._init_build(input_shape, rngs)

    def forward(self, x: jax.Array, *, mask, training, rngs) -> jax.Array:
        return self.activation(x)


class Flatten(Layer):
    """`x_BxTxC` (any rank >= 2) -> `y_Bx(T*C)`, flattened in channels-last order.

    With `data_format="channels_first"` the input `x_BxCxT...` is first moved to channels-last, so
    that weights after the Flatten line up whichever format the model uses (as in Keras).
    """

    expected_rank = None

    def __init__(
        self, data_format: str = "channels_last", *, input_shape=None, name=None, rngs=None
    ):
        super().__init__(name=name)
        self.data_format = arguments.data_format("Flatten", data_format)
        self._init_build(input_shape, rngs)

    def check_input_shape(self, input_shape: Shape) -> None:
        if len(input_shape) < 1:
            raise ValueError(
                "Flatten expects inputs of rank >= 2 (batch, ...), got a rank-1 input."
            )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (None if None in input_shape else math.prod(input_shape),)

    def forward(self, x: jax.Array, *, mask, training, rngs) -> jax.Array:
        if self.data_format == "channels_first" and x.ndim >= 3:
            x = jnp.moveaxis(x, 1, -1)
        return x.reshape(x.shape[0], -1)


class Reshape(Layer):
    """`x_Bx...` -> `y_Bx<target_shape>`; `target_shape` has no batch axis and at most one -1."""

    expected_rank = None

    def __init__(self, target_shape, *, input_shape=None, name: str | None = None, rngs=None):
        super().__init__(name=name)
        target = tuple(int(d) for d in target_shape)
        if target.count(-1) > 1 or any(d == 0 or d < -1 for d in target):
            raise ValueError(
                "Reshape: target_shape must hold positive sizes and at most one -1, "
                f"got {target_shape!r}."
            )
        self.target_shape = target
        self._init_build(input_shape, rngs)

    def _resolve(self, input_shape: Shape) -> Shape:
        """The target shape with -1 filled in (None when the input size is unknown)."""
        known = math.prod(d for d in self.target_shape if d != -1)
        if None in input_shape:
            return tuple(None if d == -1 else d for d in self.target_shape)
        size = math.prod(input_shape)
        if -1 in self.target_shape:
            if size % known:
                raise ValueError(
                    f"Reshape: an input of shape (batch, {', '.join(map(str, input_shape))}) has "
                    f"{size} values per example, not divisible by the {known} of target_shape "
                    f"{self.target_shape}."
                )
            return tuple(size // known if d == -1 else d for d in self.target_shape)
        if size != known:
            raise ValueError(
                f"Reshape: an input of shape (batch, {', '.join(map(str, input_shape))}) has "
                f"{size} values per example but target_shape {self.target_shape} holds {known}."
            )
        return self.target_shape

    def check_input_shape(self, input_shape: Shape) -> None:
        self._resolve(input_shape)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return self._resolve(input_shape)

    def forward(self, x: jax.Array, *, mask, training, rngs) -> jax.Array:
        return x.reshape(x.shape[0], *self._resolve(x.shape[1:]))


class _StepsLayer(Layer):
    """Base of the layers that change the number of steps of `x_BxTxC` (or `x_BxCxT`)."""

    supports_masking = True
    data_format = "channels_last"

    @property
    def _steps_axis(self) -> int:
        """Index of the steps axis in an array with the batch axis."""
        return 1 if self.data_format == "channels_last" else 2

    def _steps(self, steps: int | None) -> int | None:
        raise NotImplementedError

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        shape = list(input_shape)
        shape[self._steps_axis - 1] = self._steps(shape[self._steps_axis - 1])
        return tuple(shape)


class ZeroPadding1D(_StepsLayer):
    """Adds `left` zero steps before and `right` after: `x_BxTxC` -> `y_Bx(left+T+right)xC`.

    `padding` is an int (both sides) or `(left, right)`; channels-first inputs `x_BxCxT` with
    `data_format="channels_first"`. The output mask marks the added steps invalid.
    """

    def __init__(
        self,
        padding=1,
        data_format: str = "channels_last",
        *,
        input_shape=None,
        name=None,
        rngs=None,
    ):
        super().__init__(name=name)
        self.padding = _pair("ZeroPadding1D", "padding", padding)
        self.data_format = arguments.data_format("ZeroPadding1D", data_format)
        self._init_build(input_shape, rngs)

    def _steps(self, steps):
        return None if steps is None else steps + sum(self.padding)

    def forward(self, x: jax.Array, *, mask, training, rngs) -> jax.Array:
        widths = [(0, 0)] * x.ndim
        widths[self._steps_axis] = self.padding
        return jnp.pad(x, widths)

    def compute_mask(self, x, mask):
        return None if mask is None else jnp.pad(jnp.asarray(mask, bool), ((0, 0), self.padding))


class Cropping1D(_StepsLayer):
    """Removes `left` steps at the start, `right` at the end: `x_BxTxC` -> `y_Bx(T-left-right)xC`.

    `cropping` is an int (both sides) or `(left, right)`; it must leave at least one step.
    """

    def __init__(self, cropping=1, *, input_shape=None, name: str | None = None, rngs=None):
        super().__init__(name=name)
        self.cropping = _pair("Cropping1D", "cropping", cropping)
        self._init_build(input_shape, rngs)

    def check_input_shape(self, input_shape: Shape) -> None:
        super().check_input_shape(input_shape)
        steps = input_shape[0]
        if steps is not None and sum(self.cropping) >= steps:
            raise ValueError(
                f"Cropping1D: cropping {self.cropping} removes {sum(self.cropping)} steps from an "
                f"input of {steps} steps; it must leave at least one."
            )

    def _steps(self, steps):
        return None if steps is None else steps - sum(self.cropping)

    def _crop(self, a: jax.Array) -> jax.Array:
        left, right = self.cropping
        return a[:, left : a.shape[1] - right]

    def forward(self, x: jax.Array, *, mask, training, rngs) -> jax.Array:
        return self._crop(x)

    def compute_mask(self, x, mask):
        return None if mask is None else self._crop(jnp.asarray(mask))


class UpSampling1D(_StepsLayer):
    """Repeats each step `size` times: `x_BxTxC` -> `y_Bx(T*size)xC` (the mask is repeated too)."""

    def __init__(self, size: int = 2, *, input_shape=None, name: str | None = None, rngs=None):
        super().__init__(name=name)
        self.size = arguments.positive_int("UpSampling1D", "size", size)
        self._init_build(input_shape, rngs)

    def _steps(self, steps):
        return None if steps is None else steps * self.size

    def forward(self, x: jax.Array, *, mask, training, rngs) -> jax.Array:
        return jnp.repeat(x, self.size, axis=1)

    def compute_mask(self, x, mask):
        return None if mask is None else jnp.repeat(jnp.asarray(mask), self.size, axis=1)
