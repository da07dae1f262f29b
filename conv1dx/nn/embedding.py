"""Embedding: a lookup table from integer token ids to dense vectors (Keras arguments, masking)."""

import jax
import jax.numpy as jnp
import numpy as np

from conv1dx.nn import arguments
from conv1dx.nn.layer import Layer, Shape, is_traced
from conv1dx.nn.lookup import embed


class Embedding(Layer):
    """`y_BxTxD = embeddings[ids_BxT]` for int ids in `[0, input_dim)`; weight `embeddings` (V, D).

    Out-of-range ids: an eager call with concrete ids raises a ValueError naming the bad ids. Under
    jit/grad the ids are not known, so an id `< 0` or `>= input_dim` yields a row of NaN (loud: the
    loss becomes NaN) and contributes no gradient; it is neither clamped nor wrapped.

    `mask_zero=True` reserves id 0 for padding: `compute_mask` returns `ids != 0` (so `input_dim`
    must count the padding id). `input_length` (Keras 1/2) fixes the number of steps and builds the
    layer when `rngs` is given.
    """

    expected_rank = 2

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer="uniform",
        embeddings_regularizer=None,
        activity_regularizer=None,
        embeddings_constraint=None,
        mask_zero: bool = False,
        input_length: int | None = None,
        *,
        input_shape=None,
        name: str | None = None,
        rngs=None,
    ):
        super().__init__(activity_regularizer=activity_regularizer, name=name)
        self.input_dim = arguments.positive_int("Embedding", "input_dim", input_dim)
        self.output_dim = arguments.positive_int("Embedding", "output_dim", output_dim)
        if input_length is not None:
            input_length = arguments.positive_int("Embedding", "input_length", input_length)
        # Keras' "uniform" is RandomUniform(-0.05, 0.05), our "random_uniform".
        self.embeddings_initializer = (
            "random_uniform" if embeddings_initializer == "uniform" else embeddings_initializer
        )
        self.embeddings_regularizer = embeddings_regularizer
        self.embeddings_constraint = embeddings_constraint
        self.mask_zero = bool(mask_zero)
        self.input_length = input_length
        if input_shape is None and self.input_length is not None and rngs is not None:
            input_shape = (self.input_length,)
        self._init_build(input_shape, rngs)

    def check_input_shape(self, input_shape: Shape) -> None:
        super().check_input_shape(input_shape)
        steps = input_shape[0]
        if self.input_length is not None and steps is not None and steps != self.input_length:
            raise ValueError(
                f"Embedding was given input_length={self.input_length} but got inputs with {steps} "
                "steps; pad or crop the sequences, or drop input_length."
            )

    def build(self, input_shape: Shape, rngs) -> None:
        self.add_configured_weight("embeddings", (self.input_dim, self.output_dim), rngs)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (*input_shape, self.output_dim)

    def compute_mask(self, x: jax.Array, mask: jax.Array | None) -> jax.Array | None:
        """`ids_BxT != 0` when `mask_zero`, else the incoming mask."""
        return jnp.not_equal(x, 0) if self.mask_zero else mask

    def forward(self, x: jax.Array, *, mask, training, rngs) -> jax.Array:
        return embed(self.embeddings[...], self.token_ids(x))

    def token_ids(self, x: jax.Array) -> jax.Array:
        """`x` as int ids; raises a ValueError naming the ids outside `[0, input_dim)` when concrete."""
        ids_BxT = x
        # Keras casts float ids too. Narrow integers are widened: the padding and bad-id rows V and V + 1
        # (lookup.py, embedding_conv.py) would wrap around in 8 or 16 bits.
        if not jnp.issubdtype(ids_BxT.dtype, jnp.integer) or jnp.iinfo(ids_BxT.dtype).bits < 32:
            ids_BxT = ids_BxT.astype(jnp.int32)
        if not is_traced(ids_BxT):
            ids = np.asarray(ids_BxT)
            bad = ids[(ids < 0) | (ids >= self.input_dim)]
            if bad.size:
                raise ValueError(
                    f"Embedding(input_dim={self.input_dim}) got token ids outside "
                    f"[0, {self.input_dim}): {np.unique(bad)[:10].tolist()}; increase input_dim or "
                    "fix the vocabulary."
                )
        return ids_BxT
