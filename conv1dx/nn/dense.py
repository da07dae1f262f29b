"""Dense (fully connected) layer over the last axis, with Keras' arguments."""

import jax
import jax.numpy as jnp

from conv1dx.nn import activations, arguments
from conv1dx.nn.layer import Layer, Shape, add_bias


class Dense(Layer):
    """y = activation(x @ kernel + bias) over the last axis.

    Input `x_Bx...xC`, output `y_Bx...xU` with `U = units`. Kernel `(C, U)`, glorot-uniform by default.
    """

    expected_rank = None
    supports_masking = True

    def __init__(
        self,
        units: int,
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
        self.units = arguments.positive_int("Dense", "units", units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = kernel_regularizer
        self.bias_regularizer = bias_regularizer
        self.kernel_constraint = kernel_constraint
        self.bias_constraint = bias_constraint
        self._init_build(input_shape, rngs)

    def check_input_shape(self, input_shape: Shape) -> None:
        if len(input_shape) < 1:
            raise ValueError("Dense expects inputs of rank >= 2 (batch, ..., features).")
        if input_shape[-1] is None:
            raise ValueError("Dense needs a known last (features) dimension.")
        if self.built and input_shape[-1] != self.input_shape[-1]:
            raise ValueError(
                f"Dense was built for {self.input_shape[-1]} input features but got {input_shape[-1]}."
            )

    def build(self, input_shape: Shape, rngs) -> None:
        self.add_configured_weight("kernel", (input_shape[-1], self.units), rngs)
        if self.use_bias:
            self.add_configured_weight("bias", (self.units,), rngs)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape[:-1], self.units)

    def forward(self, x: jax.Array, *, mask, training, rngs) -> jax.Array:
        y = jnp.matmul(x, self.kernel[...])
        if self.use_bias:
            y = add_bias(y, self.bias[...])
        return self.activation(y)
