"""Embedding lookup with a NaN row for bad ids and a plain scatter-add gradient.

`lookup(table_VxD, ids_BxT)` returns `rows_BxTxD = table[ids]`, and a row of NaN for an id outside
`[0, V)` (loud: the loss becomes NaN), which contributes no gradient. `jnp.take(..., mode="fill")`
computes the same, as a gather followed by a select over all the rows, and its gradient goes through
a scatter whose updates XLA first copies into another layout. On the IMDB convnet (128 x 500 ids,
D = 128: 33 MB of rows) dropping those two extra passes made CPU training 6-8% faster (the compiled
epoch with either lookup, 5 interleaved rounds in one process, run twice).
Here the table is extended by one NaN row that bad ids point to, so the forward pass is a single
gather, and the gradient is one scatter-add of the (B*T, D) cotangents that drops bad ids.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


@jax.custom_vjp
def lookup(table_VxD: jax.Array, ids_BxT: jax.Array) -> jax.Array:
    """`table[ids]` with NaN rows for ids outside `[0, V)`: `rows_BxTxD` (any shape of int ids)."""
    return _gather(table_VxD, _checked_ids(ids_BxT, table_VxD.shape[0]))


def _checked_ids(ids: jax.Array, vocabulary: int) -> jax.Array:
    """Ids with every one outside [0, V) replaced by V, the index of the NaN row."""
    return jnp.where((ids < 0) | (ids >= vocabulary), vocabulary, ids)


def _gather(table_VxD: jax.Array, checked_ids: jax.Array) -> jax.Array:
    nan_row = jnp.full((1, table_VxD.shape[1]), jnp.nan, table_VxD.dtype)
    extended = jnp.concatenate([table_VxD, nan_row])
    return jnp.take(extended, checked_ids, axis=0, mode="clip")  # every id is in bounds


def _lookup_fwd(table_VxD, ids_BxT):
    checked = _checked_ids(ids_BxT, table_VxD.shape[0])
    return _gather(table_VxD, checked), (table_VxD, checked)


def _lookup_bwd(residuals, d_rows):
    table_VxD, checked = residuals  # the table only for its shape and dtype
    dim = table_VxD.shape[1]
    d_table = jnp.zeros(table_VxD.shape, d_rows.dtype).at[checked.reshape(-1)].add(
        d_rows.reshape(-1, dim), mode="drop")
    return d_table.astype(table_VxD.dtype), None


lookup.defvjp(_lookup_fwd, _lookup_bwd)


def embed(table_VxD: jax.Array, ids_BxT: jax.Array) -> jax.Array:
    """`lookup` in (at least) float32, the rows cast back to the table's dtype: `rows_BxTxD`.

    As Keras' mixed precision does: the table's gradient, summed over every occurrence of a token, then
    accumulates in float32 (a bfloat16 table would saturate: 1,000 occurrences of a token sum to 256).
    """
    wide_VxD = table_VxD.astype(jnp.promote_types(table_VxD.dtype, jnp.float32))
    return lookup(wide_VxD, ids_BxT).astype(table_VxD.dtype)
