"""Embedding: lookup, masking, Keras defaults and counts, out-of-range ids, jit and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conv1dx.nn.embedding import Embedding


def n_params(layer) -> int:
    return sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(layer, nnx.Param)))


IDS_BxT = np.array([[3, 0, 7, 7, 1], [9, 2, 0, 0, 0]], np.int32)


def test_lookup_returns_rows_of_the_table():
    layer = Embedding(10, 4, rngs=nnx.Rngs(0))
    y = layer(IDS_BxT)
    table = np.asarray(layer.embeddings[...])
    assert table.shape == (10, 4)
    expected = np.stack([[table[i] for i in row] for row in IDS_BxT])
    np.testing.assert_array_equal(np.asarray(y), expected)
    assert y.shape == (2, *layer.compute_output_shape((5,))) == (2, 5, 4)


def test_default_initializer_is_keras_uniform():
    table = np.asarray(Embedding(200, 16, input_shape=(3,), rngs=nnx.Rngs(1)).embeddings[...])
    assert np.all(np.abs(table) <= 0.05) and table.std() > 0.02  # U(-0.05, 0.05): std 0.029
    ones = Embedding(5, 2, embeddings_initializer="ones", input_shape=(3,), rngs=nnx.Rngs(1))
    np.testing.assert_array_equal(np.asarray(ones.embeddings[...]), np.ones((5, 2)))


def test_parameter_count_matches_keras():
    assert n_params(Embedding(10000, 128, input_shape=(20,), rngs=nnx.Rngs(0))) == 1_280_000


def test_mask_zero():
    masked = Embedding(10, 3, mask_zero=True, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(np.asarray(masked.compute_mask(IDS_BxT, None)), IDS_BxT != 0)
    plain = Embedding(10, 3, rngs=nnx.Rngs(0))
    incoming = np.ones(IDS_BxT.shape, bool)
    assert plain.compute_mask(IDS_BxT, None) is None
    assert plain.compute_mask(IDS_BxT, incoming) is incoming


def test_out_of_range_ids_raise_eagerly():
    layer = Embedding(10, 3, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"outside \[0, 10\).*\[10\]"):
        layer(np.array([[1, 10]]))
    with pytest.raises(ValueError, match=r"\[-1\]"):
        layer(np.array([[-1, 2]]))


def test_out_of_range_ids_read_nan_under_jit():
    layer = Embedding(10, 3, input_shape=(4,), rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(layer)
    y = jax.jit(lambda ids: nnx.merge(graphdef, state)(ids))(jnp.array([[1, 10, -1, 9]]))
    y = np.asarray(y)
    table = np.asarray(layer.embeddings[...])
    np.testing.assert_array_equal(y[0, [0, 3]], table[[1, 9]])
    assert np.all(np.isnan(y[0, [1, 2]]))  # neither clamped to row 9 nor wrapped to row 9


def test_gradient_counts_each_id_under_jit():
    layer = Embedding(10, 3, input_shape=(5,), rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(layer)

    @jax.jit
    def loss(params, ids):
        return jnp.sum(nnx.merge(graphdef, params)(ids))

    grads = jax.grad(loss)(params, jnp.asarray(IDS_BxT))
    grad_table = np.asarray(jax.tree.leaves(grads)[0])
    counts = np.zeros(10)
    for i in IDS_BxT.ravel():
        counts[i] += 1  # d(sum of looked-up rows) / d(row i) = number of times i occurs
    np.testing.assert_array_equal(grad_table, np.repeat(counts[:, None], 3, axis=1))


def test_input_length():
    layer = Embedding(10, 3, input_length=5, rngs=nnx.Rngs(0))
    assert layer.built and layer.input_shape == (5,)
    assert layer(IDS_BxT).shape == (2, 5, 3)
    with pytest.raises(ValueError, match="input_length=5"):
        layer(IDS_BxT[:, :4])


def test_float_ids_are_cast_like_keras():
    layer = Embedding(10, 3, rngs=nnx.Rngs(0))
    y_float = layer(IDS_BxT.astype(np.float32))
    np.testing.assert_array_equal(np.asarray(y_float), np.asarray(layer(IDS_BxT)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(input_dim=0, output_dim=3), "input_dim"),
        (dict(input_dim=10, output_dim=-1), "output_dim"),
        (dict(input_dim=10.5, output_dim=3), "input_dim"),
        (dict(input_dim=10, output_dim=3, input_length=0), "input_length"),
        (dict(input_dim=10, output_dim=3, embeddings_initializer="nope"), "initializer"),
    ],
)
def test_invalid_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Embedding(**kwargs, input_shape=(4,), rngs=nnx.Rngs(0))


def test_rank_and_rngs_errors():
    with pytest.raises(ValueError, match="rank 2"):
        Embedding(10, 3, rngs=nnx.Rngs(0))(np.zeros((2, 5, 1), np.int32))
    with pytest.raises(ValueError, match="rngs"):
        Embedding(10, 3)(IDS_BxT)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_lookup_rows_nan_for_bad_ids_and_scatter_gradient(dtype):
    from conv1dx.nn.lookup import lookup

    rng = np.random.default_rng(3)
    table = rng.normal(size=(7, 4)).astype(np.float32)
    ids = np.array([[0, 6, 7, -1, 3], [3, 3, -7, 100, 0]])
    weights = rng.normal(size=(2, 5, 4)).astype(np.float32)
    rows = np.asarray(jax.jit(lookup)(jnp.asarray(table, dtype), jnp.asarray(ids)), np.float32)
    good = (ids >= 0) & (ids < 7)
    np.testing.assert_array_equal(rows[good], np.asarray(jnp.asarray(table, dtype), np.float32)[ids[good]])
    assert np.isnan(rows[~good]).all()

    grad = jax.jit(jax.grad(lambda t: jnp.sum(jnp.where(
        jnp.asarray(good)[..., None], lookup(t, jnp.asarray(ids)) * weights, 0.0))))(
        jnp.asarray(table, dtype))
    want, magnitude = np.zeros_like(table), np.zeros_like(table)
    for (b, t), i in np.ndenumerate(ids):  # d/d table[i] of sum w * table[ids] = sum of w over i's
        if good[b, t]:
            want[i] += weights[b, t]
            magnitude[i] += np.abs(weights[b, t])
    assert grad.dtype == dtype
    # bfloat16 rounds each cotangent and each partial sum (relative 2**-9 each, 3 terms at most).
    tolerance = 4 * 2.0**-9 * magnitude if dtype == jnp.bfloat16 else 1e-6 * magnitude
    assert np.all(np.abs(np.asarray(grad, np.float32) - want) <= tolerance + 1e-7)
