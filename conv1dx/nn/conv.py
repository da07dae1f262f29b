"""Convolution layers with Keras' argument surface: Conv1D, Conv1DTranspose and their shared base.

Inputs are `x_BxTxC` ("channels_last", the default) or `x_BxCxT` ("channels_first"); outputs use the
same format. Kernels use Keras' layouts, so weights port one-to-one: Conv1D
`(K, C/groups, filters)`, Conv1DTranspose `(K, filters, C)`. The depthwise and separable layers
are in `depthwise_conv.py`.
"""

from __future__ import annotations

import jax

from conv1dx.nn import activations, arguments, embedding_conv
from conv1dx.nn import conv_ops as ops
from conv1dx.nn.embedding import Embedding
from conv1dx.nn.layer import Layer, Shape, add_bias


class ConvBase(Layer):
    """Arguments, shape checks, masks and bias of the 1D convolution layers.

    A subclass stores its Keras weight options (`kernel_initializer`, ..., `bias_constraint`), calls
    `_configure`, and in `build` creates its kernel(s) with `add_configured_weight`, then calls
    `_add_bias`.
    """

    paddings: tuple[str, ...] = ops.PADDINGS

    def _configure(
        self, kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias
    ):
        who = type(self).__name__
        self.kernel_size = arguments.positive_int(who, "kernel_size", kernel_size)
        self.strides = arguments.positive_int(who, "strides", strides)
        self.dilation_rate = arguments.positive_int(who, "dilation_rate", dilation_rate)
        padding = padding.lower() if isinstance(padding, str) else padding
        if padding not in self.paddings:
            raise ValueError(f"{who}: unknown padding {padding!r}; use one of {self.paddings}.")
        self.padding = padding
        self.data_format = arguments.data_format(who, data_format)
        if self.strides > 1 and self.dilation_rate > 1:
            raise ValueError(
                f"{who}: strides > 1 together with dilation_rate > 1 is not supported "
                f"(got strides={self.strides}, dilation_rate={self.dilation_rate}); "
                "set one of them to 1."
            )
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)

    def _steps_channels(self, input_shape: Shape) -> tuple[int | None, int | None]:
        if self.data_format == "channels_first":
            return input_shape[1], input_shape[0]
        return input_shape[0], input_shape[1]

    def _pack(self, steps, channels) -> Shape:
        return (channels, steps) if self.data_format == "channels_first" else (steps, channels)

    def _check_channels(self, input_shape: Shape) -> None:
        """Known input channels, equal to the built ones once built."""
        channels = self._steps_channels(input_shape)[1]
        name = type(self).__name__
        if channels is None:
            raise ValueError(
                f"{name} needs a known number of input channels, got shape {input_shape}."
            )
        if self.built:
            built_channels = self._steps_channels(self.input_shape)[1]
            if channels != built_channels:
                raise ValueError(
                    f"{name} was built for {built_channels} input channels but got {channels} "
                    f"(input shape without batch {input_shape}, data_format={self.data_format!r})."
                )

    def check_input_shape(self, input_shape: Shape) -> None:
        super().check_input_shape(input_shape)
        self._check_channels(input_shape)
        steps = self._steps_channels(input_shape)[0]
        if steps is not None and self.padding == "valid":
            span = ops.effective_kernel_size(self.kernel_size, self.dilation_rate)
            if span > steps:
                raise ValueError(
                    f"{type(self).__name__}: the kernel spans {span} steps (kernel_size="
                    f"{self.kernel_size}, dilation_rate={self.dilation_rate}) but the input has "
                    f"only {steps} steps with padding='valid'; use a smaller kernel_size, "
                    "padding='same' or 'causal', or a longer sequence."
                )

    def compute_mask(self, x, mask):
        """The output's `mask_BxO`: Keras drops masks at convolutions, conv1dx keeps them (see
        `conv_ops.downsample_mask`), so a masked global pooling after convolutions still ignores
        right padding."""
        if mask is None:
            return None
        steps = mask.shape[1]
        out_len = ops.conv_output_length(steps, self.kernel_size, self.padding, self.strides,
                                         self.dilation_rate)
        span = ops.effective_kernel_size(self.kernel_size, self.dilation_rate)
        pad_left = ops.padding_amounts(steps, self.kernel_size, self.padding, self.strides,
                                       self.dilation_rate)[0]
        return ops.downsample_mask(mask, out_len, self.strides, span, pad_left)

    def _output_steps(self, input_shape: Shape) -> int | None:
        steps = self._steps_channels(input_shape)[0]
        return ops.conv_output_length(steps, self.kernel_size, self.padding, self.strides,
                                      self.dilation_rate)

    def _add_bias(self, size: int, rngs) -> None:
        if self.use_bias:
            self.add_configured_weight("bias", (size,), rngs)

    def _finish(self, y_BxOxF: jax.Array) -> jax.Array:
        if self.use_bias:
            y_BxOxF = add_bias(y_BxOxF, self.bias[...])
        return ops.from_channels_last(self.activation(y_BxOxF), self.data_format)


class Conv1D(ConvBase):
    """1D convolution: `x_BxTxC` -> `y_BxOxF`, F = filters, O from `conv_ops.conv_output_length`.

    Keras' `Conv1D` arguments and defaults; `groups` splits the channels into groups convolved
    separately.
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
        self.filters = arguments.positive_int("Conv1D", "filters", filters)
        self.groups = arguments.positive_int("Conv1D", "groups", groups)
        if self.filters % self.groups:
            raise ValueError(
                f"Conv1D: filters ({self.filters}) must be divisible by groups ({self.groups})."
            )
        self._configure(
            kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias
        )
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
        self.add_configured_weight(
            "kernel", (self.kernel_size, channels // self.groups, self.filters), rngs
        )
        self._add_bias(self.filters, rngs)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return self._pack(self._output_steps(input_shape), self.filters)

    def forward(self, x, *, mask, training, rngs):
        x_BxTxC = ops.to_channels_last(x, self.data_format)
        y = ops.conv1d(x_BxTxC, self.kernel[...], stride=self.strides, padding=self.padding,
                       dilation=self.dilation_rate, groups=self.groups)
        return self._finish(y)

    def takes_embedding(self, embedding: Embedding, ids_BxT: jax.Array) -> bool:
        """Whether `call_on_embedding(embedding, ids)` computes this layer on `embedding(ids)` here: a
        channels-last, single-group convolution of an Embedding without an activity regularizer, and
        `embedding_conv.fusion_choice` says so for the shapes."""
        if (self.data_format != "channels_last" or self.groups != 1 or not self.built or not embedding.built
                or embedding.activity_regularizer is not None):
            return False
        table, kernel = embedding.embeddings[...], self.kernel[...]
        return embedding_conv.fusion_choice(
            jax.ShapeDtypeStruct(table.shape, table.dtype), jax.ShapeDtypeStruct(ids_BxT.shape, ids_BxT.dtype),
            jax.ShapeDtypeStruct(kernel.shape, kernel.dtype),
            stride=self.strides, padding=self.padding, dilation=self.dilation_rate)

    def call_on_embedding(self, embedding: Embedding, ids_BxT: jax.Array) -> jax.Array:
        """`self(embedding(ids_BxT))` without the embedded rows (`embedding_conv.embedding_conv1d`)."""
        ids_BxT = embedding.token_ids(embedding.ensure_built(ids_BxT))
        self.check_input_shape(embedding.compute_output_shape(ids_BxT.shape[1:]))  # e.g. a too long kernel
        y = embedding_conv.embedding_conv1d(embedding.embeddings[...], ids_BxT, self.kernel[...],
                                            stride=self.strides, padding=self.padding,
                                            dilation=self.dilation_rate)
        return self.record_activity(self._finish(y))


class Conv1DTranspose(ConvBase):
    """Transposed 1D convolution ("deconvolution"): `x_BxTxC` -> `y_BxOxF`, Keras' output length.

    O = T*stride + max(span - stride, 0) for "valid" and T*stride for "same" (span =
    dilation*(K-1)+1), or (T-1)*stride + span - 2*pad + output_padding when `output_padding` is
    given. The output has no padding mask (each output step mixes several input steps).
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
        self.filters = arguments.positive_int("Conv1DTranspose", "filters", filters)
        self._configure(
            kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias
        )
        if output_padding is not None:
            output_padding = arguments.positive_int(
                "Conv1DTranspose", "output_padding", output_padding, minimum=0
            )
            if output_padding >= self.strides:
                raise ValueError(
                    f"Conv1DTranspose: output_padding ({output_padding}) must be smaller than "
                    f"strides ({self.strides})."
                )
        self.output_padding = output_padding
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer
        self.kernel_constraint, self.bias_constraint = kernel_constraint, bias_constraint
        self._init_build(input_shape, rngs)

    def check_input_shape(self, input_shape: Shape) -> None:
        Layer.check_input_shape(self, input_shape)  # any length works: no 'valid' span check
        self._check_channels(input_shape)

    def compute_mask(self, x, mask):
        return None

    def build(self, input_shape: Shape, rngs) -> None:
        channels = self._steps_channels(input_shape)[1]
        self.add_configured_weight("kernel", (self.kernel_size, self.filters, channels), rngs)
        self._add_bias(self.filters, rngs)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        steps, _ = self._steps_channels(input_shape)
        out = ops.conv_transpose_output_length(steps, self.kernel_size, self.padding, self.strides,
                                               self.dilation_rate, self.output_padding)
        return self._pack(out, self.filters)

    def forward(self, x, *, mask, training, rngs):
        x_BxTxC = ops.to_channels_last(x, self.data_format)
        y = ops.conv1d_transpose(
            x_BxTxC, self.kernel[...], stride=self.strides, padding=self.padding,
            dilation=self.dilation_rate, output_padding=self.output_padding,
        )
        return self._finish(y)
