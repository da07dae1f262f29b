"""Depthwise and separable 1D convolutions with Keras' arguments: DepthwiseConv1D, SeparableConv1D.

Inputs `x_BxTxC` ("channels_last") or `x_BxCxT` ("channels_first"), outputs in the same format.
Keras' kernel layouts: depthwise `(K, C, depth_multiplier)`, pointwise
`(1, C*depth_multiplier, filters)`.
Arguments, shapes and masks as the other convolutions (`conv.ConvBase`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from conv1dx.nn import arguments
from conv1dx.nn import conv_ops as ops
from conv1dx.nn.conv import ConvBase
from conv1dx.nn.layer import Shape


def depthwise_conv1d(x_BxTxC, kernel_KxCxM, *, stride, padding, dilation) -> jax.Array:
    """Depthwise convolution as a grouped convolution with C groups: returns `y_BxOx(C*M)`.

    Output channel `c * M + m` is input channel c convolved with `kernel_KxCxM[:, c, m]`.
    """
    k, c, m = kernel_KxCxM.shape
    return ops.conv1d(x_BxTxC, kernel_KxCxM.reshape(k, 1, c * m), stride=stride, padding=padding,
                      dilation=dilation, groups=c)


class DepthwiseConv1D(ConvBase):
    """Each input channel convolved with its own `depth_multiplier` (M) filters: `x_BxTxC` ->
    `y_BxOx(C*M)`.

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
        self.depth_multiplier = arguments.positive_int(
            "DepthwiseConv1D", "depth_multiplier", depth_multiplier
        )
        self._configure(
            kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias
        )
        self.depthwise_initializer, self.bias_initializer = depthwise_initializer, bias_initializer
        self.depthwise_regularizer, self.bias_regularizer = depthwise_regularizer, bias_regularizer
        self.depthwise_constraint, self.bias_constraint = depthwise_constraint, bias_constraint
        self._init_build(input_shape, rngs)

    def build(self, input_shape: Shape, rngs) -> None:
        channels = self._steps_channels(input_shape)[1]
        self.add_configured_weight(
            "depthwise_kernel", (self.kernel_size, channels, self.depth_multiplier), rngs,
            prefix="depthwise",
        )
        self._add_bias(channels * self.depth_multiplier, rngs)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        channels = self._steps_channels(input_shape)[1]
        return self._pack(self._output_steps(input_shape), channels * self.depth_multiplier)

    def forward(self, x, *, mask, training, rngs):
        x_BxTxC = ops.to_channels_last(x, self.data_format)
        y = depthwise_conv1d(x_BxTxC, self.depthwise_kernel[...], stride=self.strides,
                             padding=self.padding, dilation=self.dilation_rate)
        return self._finish(y)


class SeparableConv1D(ConvBase):
    """A depthwise convolution, then a pointwise (kernel size 1) convolution to `filters` (F).

    `x_BxTxC` -> depthwise `BxOx(C*M)` -> pointwise `y_BxOxF`; the bias is added after the pointwise
    step.
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
        self.filters = arguments.positive_int("SeparableConv1D", "filters", filters)
        self.depth_multiplier = arguments.positive_int(
            "SeparableConv1D", "depth_multiplier", depth_multiplier
        )
        self._configure(
            kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias
        )
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
        self.add_configured_weight(
            "depthwise_kernel", (self.kernel_size, channels, self.depth_multiplier), rngs,
            prefix="depthwise",
        )
        self.add_configured_weight(
            "pointwise_kernel", (1, channels * self.depth_multiplier, self.filters), rngs,
            prefix="pointwise",
        )
        self._add_bias(self.filters, rngs)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return self._pack(self._output_steps(input_shape), self.filters)

    def forward(self, x, *, mask, training, rngs):
        x_BxTxC = ops.to_channels_last(x, self.data_format)
        h = depthwise_conv1d(x_BxTxC, self.depthwise_kernel[...], stride=self.strides,
                             padding=self.padding, dilation=self.dilation_rate)
        y = jnp.einsum("boc,cf->bof", h, self.pointwise_kernel[0])
        return self._finish(y)
