"""Shared base of the recurrent layers (GRU, LSTM): Keras' RNN arguments, calling, shapes and masks.

A subclass sets `gates` (3 for GRU, 4 for LSTM) and `state_size` (number of state tensors),
creates `kernel (C, gates*U)` and `recurrent_kernel (U, gates*U)` with `build_kernels` and its
`bias` in `build`, and returns its one-step cell from `make_cell`. This class projects all input
steps outside the time loop (one `proj_TxBxU` per gate), samples the dropout masks once per call
(Keras: the same mask at every step) and runs the recurrence with `conv1dx.nn.rnn_scan.scan_rnn`.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from conv1dx.nn import activations, arguments, constraints, initializers, regularizers
from conv1dx.nn.layer import Layer, Shape, add_bias, rng_key
from conv1dx.nn.rnn_scan import State, dropout_keep_mask, resolve_mask, scan_rnn

_CONFIG_KEYS = (
    "units", "activation", "recurrent_activation", "use_bias", "kernel_initializer",
    "recurrent_initializer", "bias_initializer", "kernel_regularizer", "recurrent_regularizer",
    "bias_regularizer", "activity_regularizer", "kernel_constraint", "recurrent_constraint",
    "bias_constraint", "dropout", "recurrent_dropout", "return_sequences", "return_state",
    "go_backwards", "unroll", "zero_output_for_mask", "name",
)


def _check_unroll(who: str, unroll) -> int | bool:
    """`lax.scan`'s unroll: True unrolls fully, an int >= 1 that many steps (1: a plain loop)."""
    if unroll is True or unroll is False:
        return True if unroll else 1
    return arguments.positive_int(who, "unroll (a bool or an int)", unroll)


def loop_weight(weight: jax.Array) -> jax.Array:
    """A weight the time loop closes over, kept in (at least) float32: the cell casts it to the
    compute dtype at each step.

    The transpose of `lax.scan` sums a closed-over weight's gradient over the steps in the weight's
    dtype; with a bfloat16 weight that sum loses the small late terms once it is a few hundred
    times larger than they are. Closing over the float32 copy makes that sum float32, while each
    step still computes in bfloat16. In float32 both casts are the identity.
    """
    return weight.astype(jnp.promote_types(weight.dtype, jnp.float32))


class Recurrent(Layer):
    """Base of GRU and LSTM. Input `x_BxTxC`; output `y_BxTxU` (return_sequences) or `y_BxU`.

    With `return_state` the call returns `(output, *states)`, each state `(B, U)`.
    """

    expected_rank = 3
    supports_masking = True
    gates: int = 1
    state_size: int = 1

    def __init__(
        self, units, *, activation, recurrent_activation, use_bias, kernel_initializer,
        recurrent_initializer, bias_initializer, kernel_regularizer, recurrent_regularizer,
        bias_regularizer, activity_regularizer, kernel_constraint, recurrent_constraint,
        bias_constraint, dropout, recurrent_dropout, return_sequences, return_state, go_backwards,
        unroll, zero_output_for_mask, name,
    ):
        super().__init__(activity_regularizer=activity_regularizer, name=name)
        who = type(self).__name__
        self.units = arguments.positive_int(who, "units", units)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        for init in (kernel_initializer, recurrent_initializer, bias_initializer):
            initializers.get(init)  # fail early on an unknown name
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = arguments.dropout_rate(who, "dropout", dropout)
        self.recurrent_dropout = arguments.dropout_rate(who, "recurrent_dropout", recurrent_dropout)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.unroll = _check_unroll(who, unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)

    def get_config(self) -> dict:
        """Constructor arguments that recreate this layer (with fresh weights), as Keras'."""
        return {key: getattr(self, key) for key in _CONFIG_KEYS}

    # -- shapes and masks ---------------------------------------------------------------------
    def check_input_shape(self, input_shape: Shape) -> None:
        super().check_input_shape(input_shape)
        who = type(self).__name__
        if input_shape[-1] is None:
            raise ValueError(f"{who} needs a known features dimension, got {input_shape}.")
        if self.built and input_shape[-1] != self.input_shape[-1]:
            raise ValueError(
                f"{who} was built for {self.input_shape[-1]} input features but got "
                f"{input_shape[-1]}."
            )

    def compute_output_shape(self, input_shape: Shape):
        """`(T, U)` with return_sequences else `(U,)`; return_state adds `(U,)` per state."""
        output = (input_shape[0], self.units) if self.return_sequences else (self.units,)
        if self.return_state:
            return (output, *(((self.units,),) * self.state_size))
        return output

    def compute_mask(self, x, mask):
        """The input mask for a sequence output (unchanged, also with go_backwards), else None."""
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return (output_mask, *((None,) * self.state_size))
        return output_mask

    # -- weights and subclass hooks -----------------------------------------------------------
    def build_kernels(self, input_shape: Shape, rngs) -> None:
        """`kernel (C, gates*U)` and `recurrent_kernel (U, gates*U)`; the subclass adds `bias`."""
        width = self.gates * self.units
        self.add_configured_weight("kernel", (input_shape[-1], width), rngs)
        self.add_configured_weight(
            "recurrent_kernel", (self.units, width), rngs, prefix="recurrent"
        )

    def input_bias(self) -> jax.Array | None:
        """Bias added to the input projections, `(gates * U,)`, or None."""
        return self.bias[...] if self.use_bias else None

    def dropout_mask_count(self) -> int | None:
        """None: one dropout mask shared by the gates; an int: one mask per gate."""
        return None

    def make_cell(self, recurrent_mask):
        """The one-step cell `cell(projections, state) -> new_state`, a `(B, U)` block per gate."""
        raise NotImplementedError

    # -- calling ------------------------------------------------------------------------------
    def __call__(self, x, *, mask=None, training: bool = False, rngs=None, lengths=None,
                 initial_state=None):
        """Run the layer on `x_BxTxC`.

        `mask_BxT` (bool, True = valid step) or `lengths_B` (int, right-padded sequences) skip
        steps; `initial_state` is `h_BxU` for GRU (or a one-element sequence) and
        `(h_BxU, c_BxU)` for LSTM; `rngs` feeds dropout when `training`.
        """
        x = self.ensure_built(x)
        mask = resolve_mask(x, mask, lengths, who=type(self).__name__)
        y = self.forward(x, mask=mask, training=training, rngs=rngs, initial_state=initial_state)
        if self.activity_regularizer is not None:
            outputs = y if isinstance(y, tuple) else (y,)
            penalty = sum(self.activity_regularizer(o) for o in outputs)
            self.activity_loss[...] = jnp.asarray(penalty, jnp.float32)
        return y

    def forward(self, x, *, mask, training, rngs, initial_state=None):
        batch, steps, features = x.shape
        dtype = self.kernel[...].dtype
        state0 = self._initial_state(initial_state, batch, dtype)
        input_mask, recurrent_mask = self._dropout_masks(training, rngs, batch, features, dtype)
        projections = self._project_inputs(x.astype(dtype), input_mask)
        outputs, state = scan_rnn(
            self.make_cell(recurrent_mask), projections, state0, mask,
            go_backwards=self.go_backwards, unroll=self.unroll,
            return_sequences=self.return_sequences, zero_output_for_mask=self.zero_output_for_mask,
        )
        y = outputs if self.return_sequences else state[0]
        return (y, *state) if self.return_state else y

    def _project_inputs(self, x_BxTxC, input_mask) -> tuple[jax.Array, ...]:
        """All input steps through the kernel outside the time loop: one `proj_TxBxU` per gate.

        Time-major, one array per gate rather than one `(T, B, G)` array: each scan step then
        reads whole contiguous `(B, U)` blocks, which XLA's CPU backend fuses far better than
        column slices of a step (forward about 2x faster on CPU; the same FLOPs everywhere).
        """
        x_TxBxC = jnp.swapaxes(x_BxTxC, 0, 1)
        if input_mask is not None and input_mask.ndim == 2:  # one mask shared by the gates
            x_TxBxC = x_TxBxC * input_mask
        kernel_CxG, bias_G, units = self.kernel[...], self.input_bias(), self.units
        projections = []
        for k in range(self.gates):
            x_k = x_TxBxC if input_mask is None or input_mask.ndim == 2 else x_TxBxC * input_mask[k]
            proj_TxBxU = x_k @ kernel_CxG[:, k * units:(k + 1) * units]
            if bias_G is not None:
                proj_TxBxU = add_bias(proj_TxBxU, bias_G[k * units:(k + 1) * units])
            projections.append(proj_TxBxU)
        return tuple(projections)

    def _dropout_masks(self, training, rngs, batch, features, dtype):
        """(input, recurrent) dropout multipliers `(B, C)`, `(B, U)` (per gate: `(gates, B, .)`)."""
        use_input = bool(training) and self.dropout > 0.0
        use_recurrent = bool(training) and self.recurrent_dropout > 0.0
        if not (use_input or use_recurrent):
            return None, None
        if rngs is None:
            raise ValueError(
                f"{type(self).__name__}(dropout={self.dropout}, recurrent_dropout="
                f"{self.recurrent_dropout}) needs rngs=nnx.Rngs(dropout=seed) (or a PRNG key) when "
                "training=True."
            )
        key_input, key_recurrent = jax.random.split(rng_key(rngs, "dropout"))
        count = self.dropout_mask_count()
        lead = () if count is None else (count,)
        input_mask = (
            dropout_keep_mask(key_input, self.dropout, (*lead, batch, features), dtype)
            if use_input else None
        )
        recurrent_mask = (
            dropout_keep_mask(
                key_recurrent, self.recurrent_dropout, (*lead, batch, self.units), dtype
            )
            if use_recurrent else None
        )
        return input_mask, recurrent_mask

    def _initial_state(self, initial_state, batch: int, dtype) -> State:
        who = type(self).__name__
        if initial_state is None:
            return tuple(jnp.zeros((batch, self.units), dtype) for _ in range(self.state_size))
        if not isinstance(initial_state, Sequence):
            initial_state = (initial_state,)
        if len(initial_state) != self.state_size:
            raise ValueError(
                f"{who}: initial_state needs {self.state_size} array(s) of shape (batch, units), "
                f"got {len(initial_state)}."
            )
        states = tuple(jnp.asarray(s, dtype) for s in initial_state)
        for s in states:
            if s.shape != (batch, self.units):
                raise ValueError(
                    f"{who}: each initial state must have shape (batch, units) = ({batch}, "
                    f"{self.units}), got {s.shape}."
                )
        return states
