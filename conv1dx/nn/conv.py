"""Convolution layers with Keras' argument surface: Conv1D, DepthwiseConv1D, SeparableConv1D, Conv1DTranspose.

Inputs are `x_BxTxC` ("channels_last", the default) or `x_BxCxT` ("channels_first"); outputs use the same
format. Kernels use Keras' layouts, so weights port one-to-one: Conv1D `(K, C/groups, filters)`,
DepthwiseConv1D `(K, C, depth_multiplier)`, SeparableConv1D depthwise `(K, C, depth_multiplier)` plus
pointwise `(1, C*depth_multiplier, filters)`, Conv1DTranspose `(K, filters, C)`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from conv1dx.nn import activations
from conv1dx.nn import conv_ops as ops
from conv1dx.nn.layer import Layer, Shape


class _Conv(Layer):
    """Arguments and shape checks shared by the 1D convolution layers."""

    paddings: tuple[str, ...] = ops.PADDINGS

    def _configure(self, kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias):
        self.kernel_size = ops.as_int(kernel_size, "kernel_size")
        self.strides = ops.as_int(strides, "strides")
        self.dilation_rate = ops.as_int(dilation_rate, "dilation_rate")
        padding = padding.lower() if isinstance(padding, str) else padding
        if padding not in self.paddings:
            raise ValueError(
                f"{type(self).__name__}: unknown padding {padding!r}; use one of {self.paddings}."
            )
        self.padding = padding
        self.data_format = ops.check_data_format(data_format)
        if self.strides > 1 and self.dilation_rate > 1:
            raise ValueError(
                f"{type(self).__name__}: strides > 1 together with dilation_rate > 1 is not supported "
                f"(got strides={self.strides}, dilation_rate={self.dilation_rate}); set one of them to 1."
            )
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)

    def _steps_channels(self, input_shape: Shape) -> tuple[int | None, int | None]:
        if self.data_format == "channels_first":
            return input_shape[1], input_shape[0]
        return input_shape[0], input_shape[1]

    def _pack(self, steps, channels) -> Shape:
        return (channels, steps) if self.data_format == "channels_first" else (steps, channels)

    def check_input_shape(self, input_shape: Shape) -> None:
        super().check_input_shape(input_shape)
        steps, channels = self._steps_channels(input_shape)
        name = type(self).__name__
        if channels is None:
            raise ValueError(f"{name} needs a known number of input channels, got shape {input_shape}.")
        if self.built:
            built_channels = self._steps_channels(self.input_shape)[1]
            if channels != built_channels:
                raise ValueError(
                    f"{name} was built for {built_channels} input channels but got {channels} "
                    f"(input shape without batch {input_shape}, data_format={self.data_format!r})."
                )
        if steps is not None and self.padding == "valid":
            span = ops.effective_kernel_size(self.kernel_size, self.dilation_rate)
            if span > steps:
                raise ValueError(
                    f"{name}: the kernel spans {span} steps (kernel_size={self.kernel_size}, "
                    f"dilation_rate={self.dilation_rate}) but the input has only {steps} steps with "
                    "padding='valid'; use a smaller kernel_size, padding='same' or 'causal', or a longer "
                    "sequence."
                )

    def compute_mask(self, x, mask):
        """Keras drops masks at convolutions; conv1dx keeps them (see `conv_ops.downsample_mask`), so
        a masked global pooling after convolutions still ignores right padding."""
        if mask is None:
            return None
        steps = mask.shape[1]
        out_len = ops.conv_output_length(steps, self.kernel_size, self.padding, self.strides,
                                         self.dilation_rate)
        span = ops.effective_kernel_size(self.kernel_size, self.dilation_rate)
        pad_left = ops.padding_amounts(steps, self.kernel_size, self.padding, self.strides,
                                       self.dilation_rate)[0]
        return ops.downsample_mask(mask, out_len, self.strides, span, pad_left)

    def _finish(self, y_BxOxF: jax.Array) -> jax.Array:
        if self.use_bias:
            y_BxOxF = y_BxOxF + self.bias[...]
        return ops.from_channels_last(self.activation(y_BxOxF), self.data_format)


class Conv1D(_Conv):
    """1D convolution: `x_BxTxC` -> `y_BxOxF`, F = filters, O from `conv_ops.conv_output_length`.

    Keras' `Conv1D` arguments and defaults; `groups` splits the channels into groups convolved separately.
    """

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides=1,
        padding: str = "valid",
        data_format: str = "channels_last",
        dilation_rate=1,
        groups: int = 1,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        *,
        input_shape=None,
        name: str | None = None,
        rngs=None,
    ):
        super().__init__(activity_regularizer=activity_regularizer, name=name)
        self.filters = ops.as_int(filters, "filters")
        self.groups = ops.as_int(groups, "groups")
        if self.filters % self.groups:
            raise ValueError(
                f"Conv1D: filters ({self.filters}) must be divisible by groups ({self.groups})."
            )
        self._configure(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias)
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer
        self.kernel_constraint, self.bias_constraint = kernel_constraint, bias_constraint
        self._init_build(input_shape, rngs)

    def check_input_shape(self, input_shape: Shape) -> None:
        super().check_input_shape(input_shape)
        channels = self._steps_channels(input_shape)[1]
        if channels % self.groups:
            raise ValueError(
                f"Conv1D: input channels ({channels}) must be divisible by groups ({self.groups})."
            )

    def build(self, input_shape: Shape, rngs) -> None:
        channels = self._steps_channels(input_shape)[1]
        self.add_weight(
            "kernel", (self.kernel_size, channels // self.groups, self.filters), self.kernel_initializer,
            rngs, regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
        )
        if self.use_bias:
            self.add_weight(
                "bias", (self.filters,), self.bias_initializer, rngs,
                regularizer=self.bias_regularizer, constraint=self.bias_constraint,
            )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        steps, _ = self._steps_channels(input_shape)
        out = ops.conv_output_length(steps, self.kernel_size, self.padding, self.strides,
                                     self.dilation_rate)
        return self._pack(out, self.filters)

    def forward(self, x, *, mask, training, rngs):
        x_BxTxC = ops.to_channels_last(x, self.data_format)
        y = ops.conv1d(x_BxTxC, self.kernel[...], stride=self.strides, padding=self.padding,
                       dilation=self.dilation_rate, groups=self.groups)
        return self._finish(y)


class DepthwiseConv1D(_Conv):
    """Each input channel convolved with its own `depth_multiplier` filters: `x_BxTxC` -> `y_BxOx(C*M)`.

    Output channel `c * M + m` is channel c convolved with `depthwise_kernel[:, c, m]`.
    """

    def __init__(
        self,
        kernel_size,
        strides=1,
        padding: str = "valid",
        depth_multiplier: int = 1,
        data_format: str = "channels_last",
        dilation_rate=1,
        activation=None,
        use_bias: bool = True,
        depthwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        depthwise_constraint=None,
        bias_constraint=None,
        *,
        input_shape=None,
        name: str | None = None,
        rngs=None,
    ):
        super().__init__(activity_regularizer=activity_regularizer, name=name)
        self.depth_multiplier = ops.as_int(depth_multiplier, "depth_multiplier")
        self._configure(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias)
        self.depthwise_initializer, self.bias_initializer = depthwise_initializer, bias_initializer
        self.depthwise_regularizer, self.bias_regularizer = depthwise_regularizer, bias_regularizer
        self.depthwise_constraint, self.bias_constraint = depthwise_constraint, bias_constraint
        self._init_build(input_shape, rngs)

    def build(self, input_shape: Shape, rngs) -> None:
        channels = self._steps_channels(input_shape)[1]
        self.add_weight(
            "depthwise_kernel", (self.kernel_size, channels, self.depth_multiplier),
            self.depthwise_initializer, rngs,
            regularizer=self.depthwise_regularizer, constraint=self.depthwise_constraint,
        )
        if self.use_bias:
            self.add_weight(
                "bias", (channels * self.depth_multiplier,), self.bias_initializer, rngs,
                regularizer=self.bias_regularizer, constraint=self.bias_constraint,
            )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        steps, channels = self._steps_channels(input_shape)
        out = ops.conv_output_length(steps, self.kernel_size, self.padding, self.strides,
                                     self.dilation_rate)
        return self._pack(out, channels * self.depth_multiplier)

    def forward(self, x, *, mask, training, rngs):
        x_BxTxC = ops.to_channels_last(x, self.data_format)
        y = depthwise_conv1d(x_BxTxC, self.depthwise_kernel[...], stride=self.strides,
                             padding=self.padding, dilation=self.dilation_rate)
        return self._finish(y)


def depthwise_conv1d(x_BxTxC, kernel_KxCxM, *, stride, padding, dilation):
    """Depthwise convolution as a grouped convolution with C groups: returns `y_BxOx(C*M)`."""
    k, c, m = kernel_KxCxM.shape
    return ops.conv1d(x_BxTxC, kernel_KxCxM.reshape(k, 1, c * m), stride=stride, padding=padding,
                      dilation=dilation, groups=c)


class SeparableConv1D(_Conv):
    """Depthwise convolution followed by a pointwise (kernel size 1) convolution to `filters` channels.

    `x_BxTxC` -> depthwise `BxOx(C*M)` -> pointwise `y_BxOxF`; the bias is added after the pointwise step.
    """

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides=1,
        padding: str = "valid",
        data_format: str = "channels_last",
        dilation_rate=1,
        depth_multiplier: int = 1,
        activation=None,
        use_bias: bool = True,
        depthwise_initializer="glorot_uniform",
        pointwise_initializer="glorot_uniform",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        pointwise_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        depthwise_constraint=None,
        pointwise_constraint=None,
        bias_constraint=None,
        *,
        input_shape=None,
        name: str | None = None,
        rngs=None,
    ):
        super().__init__(activity_regularizer=activity_regularizer, name=name)
        self.filters = ops.as_int(filters, "filters")
        self.depth_multiplier = ops.as_int(depth_multiplier, "depth_multiplier")
        self._configure(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias)
        self.depthwise_initializer = depthwise_initializer
        self.pointwise_initializer = pointwise_initializer
        self.bias_initializer = bias_initializer
        self.depthwise_regularizer = depthwise_regularizer
        self.pointwise_regularizer = pointwise_regularizer
        self.bias_regularizer = bias_regularizer
        self.depthwise_constraint = depthwise_constraint
        self.pointwise_constraint = pointwise_constraint
        self.bias_constraint = bias_constraint
        self._init_build(input_shape, rngs)

    def build(self, input_shape: Shape, rngs) -> None:
        channels = self._steps_channels(input_shape)[1]
        self.add_weight(
            "depthwise_kernel", (self.kernel_size, channels, self.depth_multiplier),
            self.depthwise_initializer, rngs,
            regularizer=self.depthwise_regularizer, constraint=self.depthwise_constraint,
        )
        self.add_weight(
            "pointwise_kernel", (1, channels * self.depth_multiplier, self.filters),
            self.pointwise_initializer, rngs,
            regularizer=self.pointwise_regularizer, constraint=self.pointwise_constraint,
        )
        if self.use_bias:
            self.add_weight(
                "bias", (self.filters,), self.bias_initializer, rngs,
                regularizer=self.bias_regularizer, constraint=self.bias_constraint,
            )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        steps, _ = self._steps_channels(input_shape)
        out = ops.conv_output_length(steps, self.kernel_size, self.padding, self.strides,
                                     self.dilation_rate)
        return self._pack(out, self.filters)

    def forward(self, x, *, mask, training, rngs):
        x_BxTxC = ops.to_channels_last(x, self.data_format)
        h = depthwise_conv1d(x_BxTxC, self.depthwise_kernel[...], stride=self.strides,
                             padding=self.padding, dilation=self.dilation_rate)
        y = jnp.einsum("boc,cf->bof", h, self.pointwise_kernel[0])
        return self._finish(y)


class Conv1DTranspose(_Conv):
    """Transposed 1D convolution ("deconvolution"): `x_BxTxC` -> `y_BxOxF`, Keras' output length.

    O = T*stride + max(span - stride, 0) for "valid" and T*stride for "same" (span = dilation*(K-1)+1),
    or (T-1)*stride + span - 2*pad + output_padding when `output_padding` is given.
    """

    paddings = ("valid", "same")

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides=1,
        padding: str = "valid",
        output_padding: int | None = None,
        data_format: str = "channels_last",
        dilation_rate=1,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        *,
        input_shape=None,
        name: str | None = None,
        rngs=None,
    ):
        super().__init__(activity_regularizer=activity_regularizer, name=name)
        self.filters = ops.as_int(filters, "filters")
        self._configure(kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias)
        if output_padding is not None:
            output_padding = ops.as_int(output_padding, "output_padding", minimum=0)
            if output_padding >= self.strides:
                raise ValueError(
                    f"Conv1DTranspose: output_padding ({output_padding}) must be smaller than strides "
                    f"({self.strides})."
                )
        self.output_padding = output_padding
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer
        self.kernel_constraint, self.bias_constraint = kernel_constraint, bias_constraint
        self._init_build(input_shape, rngs)

    def check_input_shape(self, input_shape: Shape) -> None:
        Layer.check_input_shape(self, input_shape)
        channels = self._steps_channels(input_shape)[1]
        if channels is None:
            raise ValueError(f"Conv1DTranspose needs a known number of input channels, got {input_shape}.")
        if self.built and channels != self._steps_channels(self.input_shape)[1]:
            raise ValueError(
                f"Conv1DTranspose was built for {self._steps_channels(self.input_shape)[1]} input "
                f"channels but got {channels}."
            )

    def compute_mask(self, x, mask):
        return None

    def build(self, input_shape: Shape, rngs) -> None:
        channels = self._steps_channels(input_shape)[1]
        self.add_weight(
            "kernel", (self.kernel_size, self.filters, channels), self.kernel_initializer, rngs,
            regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
        )
        if self.use_bias:
            self.add_weight(
                "bias", (self.filters,), self.bias_initializer, rngs,
                regularizer=self.bias_regularizer, constraint=self.bias_constraint,
            )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        steps, _ = self._steps_channels(input_shape)
        out = ops.conv_transpose_output_length(steps, self.kernel_size, self.padding, self.strides,
                                               self.dilation_rate, self.output_padding)
        return self._pack(out, self.filters)

    def forward(self, x, *, mask, training, rngs):
        x_BxTxC = ops.to_channels_last(x, self.data_format)
        y = ops.conv1d_transpose(x_BxTxC, self.kernel[...], stride=self.strides, padding=self.padding,
                                 dilation=self.dilation_rate, output_padding=self.output_padding)
        return self._finish(y)
