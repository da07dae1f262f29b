"""Bidirectional wrapper for the recurrent layers (GRU, LSTM), with Keras 3's semantics."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from conv1dx.nn.layer import Layer, Shape, rng_key
from conv1dx.nn.recurrent import Recurrent
from conv1dx.nn.rnn_scan import resolve_mask

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _merge(y_fwd, y_bwd, merge_mode):
    if merge_mode == "concat":
        return jnp.concatenate([y_fwd, y_bwd], axis=-1)
    if merge_mode == "sum":
        return y_fwd + y_bwd
    if merge_mode == "mul":
        return y_fwd * y_bwd
    if merge_mode == "ave":
        return (y_fwd + y_bwd) / 2
    return (y_fwd, y_bwd)


class Bidirectional(Layer):
    """Runs a recurrent layer forwards and a copy backwards over `x_BxTxC` and merges the outputs.

    As in Keras, both directions are fresh layers recreated from `layer.get_config()` (own
    weights; the weights of `layer` itself are not reused): `forward_layer`, and `backward_layer`
    with `go_backwards=True` unless one is given. With `return_sequences` both directions output
    zeros at masked steps (Keras forces `zero_output_for_mask`), and the backward outputs are
    flipped back to forward time order, so with right padding position t holds the backward state
    over steps `length-1, ..., t` of its own sequence. Output `y_BxTx2U` / `y_Bx2U` for "concat",
    `U` wide for "sum", "mul", "ave", and a pair `(y_fwd, y_bwd)` for None; with `return_state` the
    forward states and then the backward states follow the output(s).
    """

    expected_rank = 3
    supports_masking = True

    def __init__(
        self,
        layer: Recurrent,
        merge_mode: str | None = "concat",
        backward_layer: Recurrent | None = None,
        *,
        input_shape=None,
        name: str | None = None,
        rngs=None,
    ):
        super().__init__(name=name)
        if not isinstance(layer, Recurrent):
            raise ValueError(
                f"Bidirectional wraps a recurrent layer (GRU, LSTM), got {type(layer).__name__}."
            )
        if merge_mode not in MERGE_MODES:
            raise ValueError(
                f"Bidirectional: unknown merge_mode {merge_mode!r}; use one of {MERGE_MODES}."
            )
        if layer.go_backwards:
            raise ValueError(
                "Bidirectional: the wrapped layer must have go_backwards=False (it becomes the "
                "forward direction; the backward copy gets go_backwards=True)."
            )
        self.merge_mode = merge_mode
        base_name = layer.name or type(layer).__name__.lower()
        config = layer.get_config()
        zero_output = layer.return_sequences
        self.forward_layer = type(layer)(
            **{**config, "zero_output_for_mask": zero_output, "name": f"forward_{base_name}"}
        )
        if backward_layer is None:
            backward_layer = type(layer)(
                **{**config, "go_backwards": True, "zero_output_for_mask": zero_output,
                   "name": f"backward_{base_name}"}
            )
        else:
            self._check_backward_layer(layer, backward_layer)
            backward_layer.zero_output_for_mask = backward_layer.return_sequences
        self.backward_layer = backward_layer
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        if input_shape is None and layer.built:
            input_shape = layer.input_shape
        self._init_build(input_shape, rngs)

    @staticmethod
    def _check_backward_layer(layer, backward_layer) -> None:
        if not isinstance(backward_layer, Recurrent):
            raise ValueError(
                "Bidirectional: backward_layer must be a recurrent layer (GRU, LSTM), got "
                f"{type(backward_layer).__name__}."
            )
        if not backward_layer.go_backwards:
            raise ValueError("Bidirectional: backward_layer must have go_backwards=True.")
        for attr in ("return_sequences", "return_state"):
            if getattr(layer, attr) != getattr(backward_layer, attr):
                raise ValueError(
                    f"Bidirectional: layer and backward_layer need the same {attr}, got "
                    f"{getattr(layer, attr)} and {getattr(backward_layer, attr)}."
                )

    def check_input_shape(self, input_shape: Shape) -> None:
        self.forward_layer.check_input_shape(input_shape)
        self.backward_layer.check_input_shape(input_shape)

    def build(self, input_shape: Shape, rngs) -> None:
        self.forward_layer.build_for(input_shape, rngs)
        self.backward_layer.build_for(input_shape, rngs)

    def compute_output_shape(self, input_shape: Shape):
        fwd = self.forward_layer.compute_output_shape(input_shape)
        bwd = self.backward_layer.compute_output_shape(input_shape)
        states = ()
        if self.return_state:
            (fwd, *fwd_states), (bwd, *bwd_states) = fwd, bwd
            states = (*fwd_states, *bwd_states)
        if self.merge_mode is None:
            return (fwd, bwd, *states)
        out = (*fwd[:-1], fwd[-1] + bwd[-1]) if self.merge_mode == "concat" else fwd
        return (out, *states) if self.return_state else out

    def compute_mask(self, x, mask):
        out_mask = mask if self.return_sequences else None
        outs = (out_mask, out_mask) if self.merge_mode is None else (out_mask,)
        if self.return_state:
            n_states = self.forward_layer.state_size + self.backward_layer.state_size
            return (*outs, *((None,) * n_states))
        return outs if self.merge_mode is None else out_mask

    def __call__(self, x, *, mask=None, training: bool = False, rngs=None, lengths=None,
                 initial_state=None):
        """Run both directions on `x_BxTxC`; arguments as `GRU.__call__`.

        `initial_state` is the forward layer's states followed by the backward layer's states.
        """
        x = self.ensure_built(x)
        mask = resolve_mask(x, mask, lengths, who="Bidirectional")
        fwd_state = bwd_state = None
        if initial_state is not None:
            n_fwd = self.forward_layer.state_size
            if len(initial_state) != n_fwd + self.backward_layer.state_size:
                raise ValueError(
                    "Bidirectional: initial_state must list the forward states then the backward "
                    f"states ({n_fwd + self.backward_layer.state_size} arrays), got "
                    f"{len(initial_state)}."
                )
            fwd_state, bwd_state = tuple(initial_state[:n_fwd]), tuple(initial_state[n_fwd:])
        fwd_rngs = bwd_rngs = None
        if rngs is not None and training:
            fwd_rngs, bwd_rngs = jax.random.split(rng_key(rngs, "dropout"))
        y_fwd = self.forward_layer(
            x, mask=mask, training=training, rngs=fwd_rngs, initial_state=fwd_state
        )
        y_bwd = self.backward_layer(
            x, mask=mask, training=training, rngs=bwd_rngs, initial_state=bwd_state
        )
        states = ()
        if self.return_state:
            (y_fwd, *fwd_states), (y_bwd, *bwd_states) = y_fwd, y_bwd
            states = (*fwd_states, *bwd_states)
        if self.return_sequences:
            y_bwd = jnp.flip(y_bwd, axis=1)
        merged = _merge(y_fwd, y_bwd, self.merge_mode)
        if not self.return_state:
            return merged
        merged = merged if self.merge_mode is None else (merged,)
        return (*merged, *states)
