"""Dropout and SpatialDropout1D: inverted scaling, drop rate, shared draws, rng handling, jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conv1dx.nn.dropout import Dropout, SpatialDropout1D


def test_identity_unless_training_with_positive_rate():
    x_BxTxC = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(Dropout(0.5)(x_BxTxC)), x_BxTxC)
    np.testing.assert_array_equal(np.asarray(Dropout(0.0)(x_BxTxC, training=True)), x_BxTxC)
    np.testing.assert_array_equal(np.asarray(SpatialDropout1D(0.5)(x_BxTxC)), x_BxTxC)


def test_training_without_rngs_is_a_clear_error():
    with pytest.raises(ValueError, match="training=True but no rngs"):
        Dropout(0.5)(jnp.ones((2, 4)), training=True)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_inverted_scaling_and_drop_rate(rate):
    x_BxD = np.random.default_rng(1).uniform(1.0, 2.0, size=(100, 1000)).astype(np.float32)
    y = np.asarray(Dropout(rate)(x_BxD, training=True, rngs=nnx.Rngs(dropout=3)))
    dropped = y == 0
    np.testing.assert_allclose(y[~dropped], x_BxD[~dropped] / (1 - rate), rtol=1e-6)
    # 100,000 Bernoulli draws: the dropped fraction is within 5 standard deviations of rate.
    assert abs(dropped.mean() - rate) < 5 * np.sqrt(rate * (1 - rate) / dropped.size)


def test_fresh_masks_per_call_and_reproducible_keys():
    x_BxD = jnp.ones((8, 64))
    layer = Dropout(0.5)
    rngs = nnx.Rngs(dropout=0)
    first = layer(x_BxD, training=True, rngs=rngs)
    second = layer(x_BxD, training=True, rngs=rngs)
    assert not np.array_equal(np.asarray(first), np.asarray(second))
    key = jax.random.key(7)
    np.testing.assert_array_equal(
        np.asarray(layer(x_BxD, training=True, rngs=key)),
        np.asarray(layer(x_BxD, training=True, rngs=key)),
    )
    seeded = [Dropout(0.5, seed=s)(x_BxD, training=True, rngs=key) for s in (1, 2)]
    assert not np.array_equal(np.asarray(seeded[0]), np.asarray(seeded[1]))


def test_noise_shape_shares_draws_along_size_one_axes():
    x_BxTxC = jnp.ones((4, 30, 6))
    y = np.asarray(Dropout(0.5, noise_shape=(None, 1, 6))(x_BxTxC, training=True, rngs=nnx.Rngs(0)))
    assert np.all(y == y[:, :1, :])  # the same draw at every step
    assert np.any(y == 0) and np.any(y == 2.0)


def test_spatial_dropout_drops_whole_channels():
    x_BxTxC = np.random.default_rng(2).uniform(1.0, 2.0, size=(8, 20, 16)).astype(np.float32)
    y = np.asarray(SpatialDropout1D(0.5)(x_BxTxC, training=True, rngs=nnx.Rngs(dropout=1)))
    dropped_BxC = np.all(y == 0, axis=1)
    kept_BxC = np.all(y != 0, axis=1)
    assert np.all(dropped_BxC | kept_BxC)  # each channel of each example: all dropped or all kept
    assert dropped_BxC.any() and kept_BxC.any()
    kept = np.broadcast_to(kept_BxC[:, None, :], y.shape)
    np.testing.assert_allclose(y[kept], x_BxTxC[kept] * 2.0, rtol=1e-6)


def test_any_rank_and_masking():
    layer = Dropout(0.3)
    for shape in [(4, 5), (2, 3, 4, 5)]:
        assert layer(jnp.ones(shape), training=True, rngs=nnx.Rngs(0)).shape == shape
    mask_BxT = jnp.array([[True, False]])
    assert layer.compute_mask(jnp.ones((1, 2, 3)), mask_BxT) is mask_BxT
    assert SpatialDropout1D(0.3).compute_mask(jnp.ones((1, 2, 3)), mask_BxT) is mask_BxT


@pytest.mark.parametrize("cls", [Dropout, SpatialDropout1D])
def test_jit_and_gradient(cls):
    layer = cls(0.25, input_shape=(6, 5))
    graphdef, state = nnx.split(layer)

    @jax.jit
    def loss(x, key):
        return jnp.sum(nnx.merge(graphdef, state)(x, training=True, rngs=key))

    x_BxTxC = jax.random.normal(jax.random.key(0), (3, 6, 5))
    key = jax.random.key(4)
    grad = np.asarray(jax.grad(loss)(x_BxTxC, key))
    eager = np.asarray(layer(x_BxTxC, training=True, rngs=key))
    # d(sum y)/dx is 1/(1 - rate) where kept and 0 where dropped, with the eager call's mask.
    np.testing.assert_allclose(grad, np.where(eager != 0, 1 / 0.75, 0.0), rtol=1e-6)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, "half", True])
def test_invalid_rate_raises(rate):
    for cls in (Dropout, SpatialDropout1D):
        with pytest.raises(ValueError, match="rate must be a float in \\[0, 1\\)"):
            cls(rate)


def test_noise_shape_errors():
    with pytest.raises(ValueError, match="has rank 2 but the input has rank 3"):
        Dropout(0.5, noise_shape=(4, 1))(jnp.ones((4, 5, 6)), training=True, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="does not broadcast"):
        Dropout(0.5, noise_shape=(4, 2, 6))(jnp.ones((4, 5, 6)), training=True, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="rank 3"):
        SpatialDropout1D(0.5)(jnp.ones((4, 5)))
