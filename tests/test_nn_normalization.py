"""BatchNormalization and LayerNormalization against NumPy references from their definitions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conv1dx.nn.normalization import BatchNormalization, LayerNormalization


def n_values(layer, kind) -> int:
    return sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(layer, kind)))


def reference_normalize(x, mean, var, gamma, beta, eps):
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _randomize_affine(layer, rng, channels):
    """Non-trivial gamma and beta so that a mix-up of the two cannot pass."""
    gamma = rng.uniform(0.5, 2.0, channels).astype(np.float32)
    beta = rng.normal(size=channels).astype(np.float32)
    layer.gamma[...] = jnp.asarray(gamma)
    layer.beta[...] = jnp.asarray(beta)
    return gamma, beta


def test_batchnorm_training_statistics_and_moving_update():
    rng = np.random.default_rng(0)
    layer = BatchNormalization(momentum=0.9, input_shape=(7, 4), rngs=nnx.Rngs(0))
    gamma, beta = _randomize_affine(layer, rng, 4)
    moving_mean, moving_var = np.zeros(4), np.ones(4)  # Keras' initial moving statistics
    for step in range(2):
        x_BxTxC = (rng.normal(size=(3, 7, 4)) * (step + 2) + step).astype(np.float32)
        y = layer(x_BxTxC, training=True)
        flat = x_BxTxC.reshape(-1, 4).astype(np.float64)
        mean, var = flat.mean(axis=0), ((flat - flat.mean(axis=0)) ** 2).mean(axis=0)
        expected = reference_normalize(x_BxTxC, mean, var, gamma, beta, 1e-3)
        np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-4, atol=1e-5)
        moving_mean = moving_mean * 0.9 + mean * 0.1
        moving_var = moving_var * 0.9 + var * 0.1
        np.testing.assert_allclose(np.asarray(layer.moving_mean[...]), moving_mean, rtol=1e-5)
        np.testing.assert_allclose(np.asarray(layer.moving_variance[...]), moving_var, rtol=1e-5)


def test_batchnorm_inference_uses_moving_statistics_and_keeps_them():
    rng = np.random.default_rng(1)
    layer = BatchNormalization(input_shape=(5, 3), rngs=nnx.Rngs(0))
    gamma, beta = _randomize_affine(layer, rng, 3)
    mean = rng.normal(size=3).astype(np.float32)
    var = rng.uniform(0.5, 3.0, 3).astype(np.float32)
    layer.moving_mean[...] = jnp.asarray(mean)
    layer.moving_variance[...] = jnp.asarray(var)
    x_BxTxC = rng.normal(size=(2, 5, 3)).astype(np.float32)
    y = layer(x_BxTxC, training=False)
    expected = reference_normalize(x_BxTxC, mean, var, gamma, beta, 1e-3)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(layer.moving_mean[...]), mean)
    np.testing.assert_array_equal(np.asarray(layer.moving_variance[...]), var)


@pytest.mark.parametrize("channels_first", [False, True])
def test_batchnorm_masked_statistics_ignore_padding(channels_first):
    rng = np.random.default_rng(2)
    x_BxTxC = rng.normal(size=(3, 6, 2)).astype(np.float32)
    mask_BxT = np.arange(6)[None, :] < np.array([6, 2, 4])[:, None]
    x_BxTxC[~mask_BxT] = 1e4  # would dominate the statistics if it leaked in
    valid = x_BxTxC[mask_BxT].astype(np.float64)  # (number of valid steps, C)
    mean, var = valid.mean(axis=0), valid.var(axis=0)
    axis = 1 if channels_first else -1
    layer = BatchNormalization(axis=axis, momentum=0.5, rngs=nnx.Rngs(0))
    x = x_BxTxC.transpose(0, 2, 1) if channels_first else x_BxTxC
    y = np.asarray(layer(x, mask=mask_BxT, training=True))
    y = y.transpose(0, 2, 1) if channels_first else y
    expected = reference_normalize(x_BxTxC, mean, var, 1.0, 0.0, 1e-3)
    np.testing.assert_allclose(y[mask_BxT], expected[mask_BxT], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(layer.moving_mean[...]), 0.5 * mean, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(layer.moving_variance[...]), 0.5 + 0.5 * var, rtol=1e-5)
    assert layer.compute_mask(x, mask_BxT) is mask_BxT


def test_batchnorm_under_jit_updates_state_like_eager():
    x_BxTxC = jax.random.normal(jax.random.key(0), (4, 9, 3)) * 2.0 + 1.0
    eager = BatchNormalization(input_shape=(9, 3), rngs=nnx.Rngs(0))
    y_eager = eager(x_BxTxC, training=True)
    model = BatchNormalization(input_shape=(9, 3), rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)

    @jax.jit
    def train_forward(state, x):
        layer = nnx.merge(graphdef, state)
        y = layer(x, training=True)
        return y, nnx.state(layer)

    y, new_state = train_forward(state, x_BxTxC)
    np.testing.assert_allclose(np.asarray(y), np.asarray(y_eager), rtol=1e-5, atol=1e-6)
    nnx.update(model, new_state)
    np.testing.assert_allclose(model.moving_mean[...], eager.moving_mean[...], rtol=1e-6)
    np.testing.assert_allclose(model.moving_variance[...], eager.moving_variance[...], rtol=1e-6)
    assert not np.allclose(np.asarray(model.moving_mean[...]), 0.0)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradients_are_finite(training):
    layer = BatchNormalization(input_shape=(6, 3), rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(layer, nnx.Param, ...)
    x_BxTxC = jax.random.normal(jax.random.key(1), (2, 6, 3))

    @jax.jit  # the batch statistics are an argument too: a closed-over state cannot be updated
    def loss(params, rest, x):
        return jnp.sum(nnx.merge(graphdef, params, rest)(x, training=training) ** 3)

    grads_params, grads_x = jax.grad(loss, argnums=(0, 2))(params, rest, x_BxTxC)
    leaves = [*jax.tree.leaves(grads_params), grads_x]
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert all(bool(jnp.any(g != 0)) for g in leaves)


def test_batchnorm_parameter_counts_match_keras():
    layer = BatchNormalization(input_shape=(10, 16), rngs=nnx.Rngs(0))
    assert n_values(layer, nnx.Param) == 32  # gamma, beta
    assert n_values(layer, nnx.BatchStat) == 32  # moving_mean, moving_variance
    bare = BatchNormalization(center=False, scale=False, input_shape=(10, 16), rngs=nnx.Rngs(0))
    assert n_values(bare, nnx.Param) == 0 and n_values(bare, nnx.BatchStat) == 32
    first = BatchNormalization(axis=1, input_shape=(5, 10), rngs=nnx.Rngs(0))
    assert first.gamma.shape == first.moving_variance.shape == (5,)


def test_batchnorm_regularizer_is_recorded():
    layer = BatchNormalization(gamma_regularizer="l2", input_shape=(4, 8), rngs=nnx.Rngs(0))
    # Keras' l2 default factor 0.01 times the sum of squares of gamma (ones).
    np.testing.assert_allclose(float(layer.weight_penalty()), 0.01 * 8, rtol=1e-6)


@pytest.mark.parametrize("axis", [-1, (1, 2)])
def test_layernorm_matches_reference(axis):
    rng = np.random.default_rng(3)
    x_BxTxC = (rng.normal(size=(3, 5, 4)) * 3 + 2).astype(np.float32)
    layer = LayerNormalization(axis=axis, input_shape=(5, 4), rngs=nnx.Rngs(0))
    shape = (4,) if axis == -1 else (5, 4)
    assert layer.gamma.shape == layer.beta.shape == shape
    gamma = rng.uniform(0.5, 2.0, shape).astype(np.float32)
    beta = rng.normal(size=shape).astype(np.float32)
    layer.gamma[...], layer.beta[...] = jnp.asarray(gamma), jnp.asarray(beta)
    x = x_BxTxC.astype(np.float64)
    if axis == -1:
        mean, var = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
    else:
        mean, var = x.mean(axis=(1, 2), keepdims=True), x.var(axis=(1, 2), keepdims=True)
    expected = reference_normalize(x, mean, var, gamma, beta, 1e-3)
    for training in (False, True):
        y = layer(x_BxTxC, training=training)
        np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-4, atol=1e-5)


def test_layernorm_counts_jit_and_gradients():
    layer = LayerNormalization(input_shape=(7, 6), rngs=nnx.Rngs(0))
    assert n_values(layer, nnx.Param) == 12 and n_values(layer, nnx.BatchStat) == 0
    assert (
        n_values(LayerNormalization(center=False, scale=False, input_shape=(7, 6)), nnx.Param) == 0
    )
    graphdef, state = nnx.split(layer)
    x_BxTxC = jax.random.normal(jax.random.key(2), (2, 7, 6))
    grad = jax.jit(jax.grad(lambda x: jnp.sum(nnx.merge(graphdef, state)(x) ** 3)))(x_BxTxC)
    assert bool(jnp.all(jnp.isfinite(grad))) and bool(jnp.any(grad != 0))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: BatchNormalization(axis=0, input_shape=(5, 3), rngs=nnx.Rngs(0)), "batch axis"),
        (lambda: BatchNormalization(axis=3, input_shape=(5, 3), rngs=nnx.Rngs(0)), "out of range"),
        (lambda: BatchNormalization(axis=(1, 2)), "axis must be an int"),
        (lambda: BatchNormalization(momentum=1.5), "momentum"),
        (lambda: BatchNormalization(epsilon=0.0), "epsilon"),
        (lambda: LayerNormalization(axis="last"), "axis must be"),
        (lambda: LayerNormalization(axis=(0, 1), input_shape=(5, 3)), "batch axis"),
    ],
)
def test_invalid_arguments_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_input_errors():
    layer = BatchNormalization(input_shape=(5, 3), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="built for size"):
        layer(jnp.ones((2, 5, 4)))
    with pytest.raises(ValueError, match="does not fit"):
        layer(jnp.ones((2, 5, 3)), mask=jnp.ones((2, 5, 3), bool), training=True)
    with pytest.raises(ValueError, match="rank >= 2"):
        LayerNormalization()(jnp.ones((3,)))
