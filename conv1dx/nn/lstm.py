"""LSTM layer (Hochreiter & Schmidhuber 1997) with Keras 3's arguments, weights and dropout."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from conv1dx.nn import initializers
from conv1dx.nn.layer import Shape
from conv1dx.nn.recurrent import Recurrent, loop_weight


def lstm_cell(recurrent_kernel_UxG, recurrent_mask_BxU, *, activation, recurrent_activation):
    """One LSTM step `cell((x_i, x_f, x_c, x_o), (h_BxU, c_BxU)) -> (h_BxU, c_BxU)`.

    `x_i, x_f, x_c, x_o` (each `(B, U)`) are the step's input projections `x W_k + b_k`, gate order
    [i, f, c, o]; `recurrent_mask_BxU` (None or a dropout multiplier) scales h before the
    recurrent matmul.
    i, f, o = recurrent_activation(.), c_new = f * c + i * activation(x W_c + b_c + h U_c),
    h_new = o * activation(c_new).
    """

    compute_dtype = recurrent_kernel_UxG.dtype
    kernel_UxG = loop_weight(recurrent_kernel_UxG)  # cast at each step: see `loop_weight`

    def cell(projections, state):
        h_BxU, c_BxU = state
        h_in = h_BxU if recurrent_mask_BxU is None else h_BxU * recurrent_mask_BxU
        rec_i, rec_f, rec_c, rec_o = jnp.split(h_in @ kernel_UxG.astype(compute_dtype), 4, axis=-1)
        x_i, x_f, x_c, x_o = projections
        z_i, z_f, z_c, z_o = x_i + rec_i, x_f + rec_f, x_c + rec_c, x_o + rec_o
        c_new = recurrent_activation(z_f) * c_BxU + recurrent_activation(z_i) * activation(z_c)
        h_new = recurrent_activation(z_o) * activation(c_new)
        return (h_new, c_new)

    return cell


def unit_forget_bias_initializer(bias_initializer):
    """Keras' unit_forget_bias: `bias_initializer` for the i, c, o blocks, ones for f."""
    base = initializers.get(bias_initializer)

    def init(key, shape, dtype=jnp.float32):
        units = shape[0] // 4
        key_i, key_co = jax.random.split(key)
        return jnp.concatenate([
            base(key_i, (units,), dtype),
            jnp.ones((units,), dtype),
            base(key_co, (2 * units,), dtype),
        ])

    return init


class LSTM(Recurrent):
    """Long short-term memory over `x_BxTxC` (channels last), Keras 3 semantics.

    Weights (Keras names and layout, gate order [i, f, c, o]): `kernel (C, 4U)`,
    `recurrent_kernel (U, 4U)`, `bias (4U,)`; `unit_forget_bias` initializes the forget block to 1.
    Output `y_BxTxU` with `return_sequences`, else `y_BxU`; `return_state` returns
    `(output, h_BxU, c_BxU)`. Masking, `go_backwards` and `unroll` as in `GRU`. Dropout as Keras 3's
    LSTM: one input mask `(B, C)` and one recurrent mask `(B, U)`, shared by the four gates, sampled
    once per call and reused at every step.
    """

    gates = 4
    state_size = 2

    def __init__(
        self,
        units: int,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias: bool = True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        unroll: int | bool = 1,
        zero_output_for_mask: bool = False,
        *,
        input_shape=None,
        name: str | None = None,
        rngs=None,
    ):
        super().__init__(
            units, activation=activation, recurrent_activation=recurrent_activation,
            use_bias=use_bias, kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer, activity_regularizer=activity_regularizer,
            kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint, dropout=dropout, recurrent_dropout=recurrent_dropout,
            return_sequences=return_sequences, return_state=return_state,
            go_backwards=go_backwards, unroll=unroll, zero_output_for_mask=zero_output_for_mask,
            name=name,
        )
        self.unit_forget_bias = bool(unit_forget_bias)
        self._init_build(input_shape, rngs)

    def get_config(self) -> dict:
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}

    def build(self, input_shape: Shape, rngs) -> None:
        self.build_kernels(input_shape, rngs)
        if self.use_bias:
            bias_init = (
                unit_forget_bias_initializer(self.bias_initializer)
                if self.unit_forget_bias else self.bias_initializer
            )
            self.add_configured_weight("bias", (4 * self.units,), rngs, initializer=bias_init)

    def make_cell(self, recurrent_mask):
        return lstm_cell(
            self.recurrent_kernel[...], recurrent_mask, activation=self.activation,
            recurrent_activation=self.recurrent_activation,
        )
