"""Pure numerical core of the recurrent layers: padding masks, dropout masks, the masked time scan.

Only the recurrent part of an RNN runs step by step: the layers project every input step at once
(outside the loop, time-major) and hand `scan_rnn` a cell that adds the recurrent matmul.
Masking follows Keras 3 (keras/src/backend/jax/rnn.py): at a masked step every state keeps its
previous value and the step's output repeats the previous output (`states[0]`), or is zero when
`zero_output_for_mask`.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from conv1dx.nn.dropout import keep_mask

State = tuple[jax.Array, ...]
Cell = Callable[[tuple[jax.Array, ...], State], State]


def lengths_to_mask(lengths_B: jax.Array, steps: int) -> jax.Array:
    """`mask_BxT` (True = valid) of right-padded sequences with `lengths_B` valid steps each."""
    return jnp.arange(steps)[None, :] < jnp.asarray(lengths_B)[:, None]


def resolve_mask(x_BxTxC, mask=None, lengths=None, *, who: str = "RNN") -> jax.Array | None:
    """Boolean `mask_BxT` from either a mask or per-sequence lengths (right padding), or None."""
    batch, steps = x_BxTxC.shape[:2]
    if mask is not None and lengths is not None:
        raise ValueError(
            f"{who}: pass either mask= (bool, batch x steps) or lengths= (int, batch), not both."
        )
    if lengths is not None:
        lengths = jnp.asarray(lengths)
        if lengths.shape != (batch,) or not jnp.issubdtype(lengths.dtype, jnp.integer):
            raise ValueError(
                f"{who}: lengths must be an integer array of shape (batch,) = ({batch},), got "
                f"shape {lengths.shape} and dtype {lengths.dtype}."
            )
        return lengths_to_mask(lengths, steps)
    if mask is None:
        return None
    mask = jnp.asarray(mask)
    if mask.shape != (batch, steps):
        raise ValueError(
            f"{who}: mask must have shape (batch, steps) = ({batch}, {steps}), got {mask.shape}."
        )
    return mask.astype(bool)


def dropout_keep_mask(key: jax.Array, rate: float, shape: tuple[int, ...], dtype=jnp.float32):
    """Inverted-dropout multiplier of `shape`: 0 with probability `rate`, else 1 / (1 - rate)."""
    keep = keep_mask(key, rate, shape)
    return keep.astype(dtype) / jnp.asarray(1.0 - rate, dtype)


def scan_rnn(
    cell: Cell,
    projections: tuple[jax.Array, ...],
    state0: State,
    mask_BxT: jax.Array | None,
    *,
    go_backwards: bool,
    unroll: int | bool,
    return_sequences: bool,
    zero_output_for_mask: bool,
) -> tuple[jax.Array | None, State]:
    """Run `cell` over time with `jax.lax.scan`; returns `(outputs_BxTxU or None, final state)`.

    `projections` are time-major input projections (e.g. one `proj_TxBxU` per gate);
    `cell(projections at step t, state) -> new_state` computes one step, and the step's output is
    `new_state[0]` (shape `(B, U)`). With `go_backwards` the steps run from last
    to first and the outputs come back in processing order (reversed time), as in Keras. The final
    state is the state after the last valid step of each sequence. `outputs_BxTxU` is None unless
    `return_sequences`.
    """
    if mask_BxT is None:

        def step(state, proj_t):
            new_state = cell(proj_t, state)
            return new_state, (new_state[0] if return_sequences else None)

        xs = projections
    else:

        def step(state, inputs):
            proj_t, valid_B = inputs
            new_state = cell(proj_t, state)
            valid_Bx1 = valid_B[:, None]
            new_state = tuple(
                jnp.where(valid_Bx1, n, s) for n, s in zip(new_state, state, strict=True)
            )
            if not return_sequences:
                return new_state, None
            out = new_state[0]
            if zero_output_for_mask:
                out = jnp.where(valid_Bx1, out, jnp.zeros_like(out))
            return new_state, out

        xs = (projections, jnp.swapaxes(mask_BxT, 0, 1))

    state, outputs_TxBxU = jax.lax.scan(
        step, tuple(state0), xs, reverse=go_backwards, unroll=unroll
    )
    if not return_sequences:
        return None, state
    if go_backwards:
        outputs_TxBxU = jnp.flip(outputs_TxBxU, axis=0)
    return jnp.swapaxes(outputs_TxBxU, 0, 1), state
