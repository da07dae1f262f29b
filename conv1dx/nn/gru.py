"""GRU layer (Cho et al. 2014) with Keras 3's arguments, weight layout, equations and dropout."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from conv1dx.nn.layer import Shape, add_bias
from conv1dx.nn.recurrent import Recurrent, loop_weight


def gru_cell(recurrent_kernel_UxG, recurrent_bias_G, recurrent_mask, *, reset_after, activation,
             recurrent_activation):
    """One GRU step `cell((x_z, x_r, x_h), (h_BxU,)) -> (h_BxU,)`, gate order [z, r, h].

    `x_z, x_r, x_h` (each `(B, U)`) are the step's input projections `x W_k + b_k`.
    `recurrent_bias_G` (reset_after only) is added to `h U`. `recurrent_mask` is None or one
    dropout multiplier per gate, `(3, B, U)`, applied to h before each gate's recurrent matmul
    (Keras' implementation 1).

    reset_after=True:  h~ = act(x W_h + b_h + r * (h U_h + b_rh))
    reset_after=False: h~ = act(x W_h + b_h + (r * h) U_h)
    h_new = z * h + (1 - z) * h~, with z, r = recurrent_activation(x W + b + h U [+ b_r]) of
    their gate blocks.
    """
    units = recurrent_kernel_UxG.shape[0]
    compute_dtype = recurrent_kernel_UxG.dtype
    # The loop closes over float32 copies and casts them at each step (see `loop_weight`).
    kernel_UxG = loop_weight(recurrent_kernel_UxG)
    kernel_z, kernel_r, kernel_h = (kernel_UxG[:, k * units:(k + 1) * units] for k in range(3))
    bias_G = bias_z = bias_r = bias_h = None
    if recurrent_bias_G is not None:
        bias_G = loop_weight(recurrent_bias_G)
        bias_z, bias_r, bias_h = jnp.split(bias_G, 3)

    def recurrent_term(h_BxU, kernel_UxN, bias_N):
        """`h_BxU @ kernel_UxN (+ bias_N)` in the compute dtype: `(B, N)`."""
        out_BxN = h_BxU @ kernel_UxN.astype(compute_dtype)
        return out_BxN if bias_N is None else add_bias(out_BxN, bias_N.astype(compute_dtype))

    def cell(projections, state):
        (h_BxU,) = state
        x_z, x_r, x_h = projections
        if recurrent_mask is None:
            h_h = h_BxU
            if reset_after:
                inner_BxG = recurrent_term(h_BxU, kernel_UxG, bias_G)
                rec_z, rec_r, rec_h = jnp.split(inner_BxG, 3, axis=-1)
            else:
                rec_z, rec_r = jnp.split(recurrent_term(h_BxU, kernel_UxG[:, : 2 * units], None), 2,
                                         axis=-1)
        else:
            # Each gate sees h under its own mask, so each gate has its own matmul: separate
            # (B, U) x (U, U) dots, which beat one block-diagonal matmul over the masked gates on
            # CPU. Recurrent dropout costs the Jena conv-GRU about 10%: experiments/recurrent_dropout.
            mask_z, mask_r, mask_h = recurrent_mask
            h_h = h_BxU * mask_h
            rec_z = recurrent_term(h_BxU * mask_z, kernel_z, bias_z)
            rec_r = recurrent_term(h_BxU * mask_r, kernel_r, bias_r)
            if reset_after:
                rec_h = recurrent_term(h_h, kernel_h, bias_h)
        z = recurrent_activation(x_z + rec_z)
        r = recurrent_activation(x_r + rec_r)
        if reset_after:
            candidate = activation(x_h + r * rec_h)
        else:
            candidate = activation(x_h + recurrent_term(r * h_h, kernel_h, None))
        return (z * h_BxU + (1.0 - z) * candidate,)

    return cell


class GRU(Recurrent):
    """Gated recurrent unit over `x_BxTxC` (channels last), Keras 3 semantics.

    Weights (Keras names and layout, gate order [z, r, h]): `kernel (C, 3U)`,
    `recurrent_kernel (U, 3U)`, `bias (3U,)` when `reset_after=False`, `(2, 3U)` when True (row 0
    input bias, row 1 recurrent bias).
    Output `y_BxTxU` with `return_sequences`, else `y_BxU` (the state after the last valid step);
    `return_state` returns `(output, h_BxU)`.

    Masking (`mask_BxT` or `lengths_B` at call): a masked step keeps the previous state, and its
    output repeats the previous output (zeros if `zero_output_for_mask`, which `Bidirectional`
    sets). `go_backwards` processes the steps last to first and returns the sequence in that
    (reversed) order. Dropout as Keras 3: `dropout` on the inputs and `recurrent_dropout` on h, each
    mask sampled once per call and reused at every step; one mask shared by the gates, or one per
    gate for both when `recurrent_dropout > 0` (Keras' GRU cell switches to implementation 1 then).
    `unroll` (bool or int) is passed to `jax.lax.scan`.
    """

    gates = 3
    state_size = 1

    def __init__(
        self,
        units: int,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
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
        reset_after: bool = True,
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
        self.reset_after = bool(reset_after)
        self._init_build(input_shape, rngs)

    def get_config(self) -> dict:
        return {**super().get_config(), "reset_after": self.reset_after}

    def build(self, input_shape: Shape, rngs) -> None:
        self.build_kernels(input_shape, rngs)
        if self.use_bias:
            width = 3 * self.units
            self.add_configured_weight("bias", (2, width) if self.reset_after else (width,), rngs)

    def input_bias(self) -> jax.Array | None:
        if not self.use_bias:
            return None
        return self.bias[0] if self.reset_after else self.bias[...]

    def dropout_mask_count(self) -> int | None:
        return self.gates if self.recurrent_dropout > 0.0 else None

    def make_cell(self, recurrent_mask):
        recurrent_bias = self.bias[1] if (self.use_bias and self.reset_after) else None
        return gru_cell(
            self.recurrent_kernel[...], recurrent_bias, recurrent_mask,
            reset_after=self.reset_after, activation=self.activation,
            recurrent_activation=self.recurrent_activation,
        )
