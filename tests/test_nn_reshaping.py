"""Flatten, Reshape, ZeroPadding1D, Cropping1D, UpSampling1D, Activation vs NumPy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conv1dx.nn.reshaping import (
    Activation,
    Cropping1D,
    Flatten,
    Reshape,
    UpSampling1D,
    ZeroPadding1D,
)

X_BxTxC = np.random.default_rng(0).normal(size=(2, 7, 3)).astype(np.float32)
MASK_BxT = np.arange(7)[None, :] < np.array([7, 4])[:, None]


def check_shape(layer, x, y):
    assert y.shape == (x.shape[0], *layer.compute_output_shape(x.shape[1:]))


def test_flatten():
    layer = Flatten()
    y = layer(X_BxTxC)
    expected = np.array([[X_BxTxC[b, t, c] for t in range(7) for c in range(3)] for b in range(2)])
    np.testing.assert_array_equal(np.asarray(y), expected)
    check_shape(layer, X_BxTxC, y)
    assert layer.compute_mask(X_BxTxC, MASK_BxT) is None
    # channels_first input (B, C, T) flattens in the same (channels-last) order
    first = Flatten("channels_first")(X_BxTxC.transpose(0, 2, 1))
    np.testing.assert_array_equal(np.asarray(first), expected)
    assert Flatten()(jnp.ones((4, 5))).shape == (4, 5)
    assert Flatten()(jnp.ones((2, 3, 4, 5))).shape == (2, 60)
    assert Flatten().compute_output_shape((None, 3)) == (None,)
    with pytest.raises(ValueError, match="rank >= 2"):
        Flatten()(jnp.ones((4,)))


def test_reshape():
    layer = Reshape((3, -1))
    y = layer(X_BxTxC)
    np.testing.assert_array_equal(np.asarray(y), X_BxTxC.reshape(2, 3, 7))
    check_shape(layer, X_BxTxC, y)
    assert Reshape((21,))(X_BxTxC).shape == (2, 21)
    assert Reshape((-1, 3)).compute_output_shape((None, 3)) == (None, 3)
    with pytest.raises(ValueError, match="has 21 values per example but target_shape"):
        Reshape((4, 5))(X_BxTxC)
    with pytest.raises(ValueError, match="not divisible"):
        Reshape((-1, 4))(X_BxTxC)
    with pytest.raises(ValueError, match="not divisible"):
        Reshape((-1, 4), input_shape=(7, 3))
    for bad in [(-1, -1), (0, 21), (-2, 3)]:
        with pytest.raises(ValueError, match="at most one -1"):
            Reshape(bad)


def reference_zero_pad(x_BxTxC, left, right):
    batch, steps, channels = x_BxTxC.shape
    y = np.zeros((batch, left + steps + right, channels), x_BxTxC.dtype)
    for t in range(steps):
        y[:, left + t] = x_BxTxC[:, t]
    return y


@pytest.mark.parametrize(
    "padding, pair", [(1, (1, 1)), (2, (2, 2)), ((0, 3), (0, 3)), ((2, 1), (2, 1))]
)
def test_zero_padding(padding, pair):
    layer = ZeroPadding1D(padding)
    y = layer(X_BxTxC)
    np.testing.assert_array_equal(np.asarray(y), reference_zero_pad(X_BxTxC, *pair))
    check_shape(layer, X_BxTxC, y)
    mask = np.asarray(layer.compute_mask(X_BxTxC, MASK_BxT))
    np.testing.assert_array_equal(mask, reference_zero_pad(MASK_BxT[..., None], *pair)[..., 0])
    first = ZeroPadding1D(padding, data_format="channels_first")
    y_first = first(X_BxTxC.transpose(0, 2, 1))
    np.testing.assert_array_equal(np.asarray(y_first).transpose(0, 2, 1), np.asarray(y))
    check_shape(first, X_BxTxC.transpose(0, 2, 1), y_first)


@pytest.mark.parametrize("cropping, pair", [(1, (1, 1)), ((0, 2), (0, 2)), ((3, 3), (3, 3))])
def test_cropping(cropping, pair):
    layer = Cropping1D(cropping)
    y = layer(X_BxTxC)
    kept = [t for t in range(7) if pair[0] <= t < 7 - pair[1]]
    np.testing.assert_array_equal(np.asarray(y), X_BxTxC[:, kept])
    check_shape(layer, X_BxTxC, y)
    np.testing.assert_array_equal(
        np.asarray(layer.compute_mask(X_BxTxC, MASK_BxT)), MASK_BxT[:, kept]
    )


@pytest.mark.parametrize("size", [1, 2, 3])
def test_upsampling(size):
    layer = UpSampling1D(size)
    y = layer(X_BxTxC)
    expected = np.zeros((2, 7 * size, 3), np.float32)
    for t in range(7):
        for k in range(size):
            expected[:, t * size + k] = X_BxTxC[:, t]
    np.testing.assert_array_equal(np.asarray(y), expected)
    check_shape(layer, X_BxTxC, y)
    mask = np.asarray(layer.compute_mask(X_BxTxC, MASK_BxT))
    np.testing.assert_array_equal(mask, np.stack([np.repeat(m, size) for m in MASK_BxT]))


def test_activation_any_rank_and_mask():
    layer = Activation("relu")
    for x in (X_BxTxC, X_BxTxC[:, 0], X_BxTxC[..., None]):
        np.testing.assert_array_equal(np.asarray(layer(x)), np.where(x > 0, x, 0))
    assert layer.compute_mask(X_BxTxC, MASK_BxT) is MASK_BxT
    np.testing.assert_allclose(
        np.asarray(Activation(jnp.tanh)(X_BxTxC)), np.tanh(X_BxTxC), rtol=1e-6
    )
    with pytest.raises(ValueError, match="Unknown activation"):
        Activation("no_such_activation")


def test_chain_under_jit_with_finite_gradients():
    layers = [
        ZeroPadding1D((1, 2), input_shape=(7, 3)),
        Cropping1D(1, input_shape=(10, 3)),
        UpSampling1D(2, input_shape=(8, 3)),
        Activation("tanh", input_shape=(16, 3)),
        Reshape((-1, 6), input_shape=(16, 3)),
        Flatten(input_shape=(8, 6)),
    ]
    graphdefs_states = [nnx.split(layer) for layer in layers]

    def forward(x):
        for graphdef, state in graphdefs_states:
            x = nnx.merge(graphdef, state)(x)
        return x

    y = jax.jit(forward)(jnp.asarray(X_BxTxC))
    assert y.shape == (2, 48)
    grad = jax.jit(jax.grad(lambda x: jnp.sum(forward(x) ** 2)))(jnp.asarray(X_BxTxC))
    assert bool(jnp.all(jnp.isfinite(grad))) and bool(jnp.all(grad != 0))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ZeroPadding1D(-1), "non-negative"),
        (lambda: ZeroPadding1D((1, 2, 3)), "pair"),
        (lambda: ZeroPadding1D(1, data_format="NWC"), "data_format"),
        (lambda: Cropping1D((1, -1)), "non-negative"),
        (lambda: UpSampling1D(0), "size"),
        (lambda: Flatten("NWC"), "data_format"),
    ],
)
def test_invalid_arguments_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_cropping_too_large_raises():
    with pytest.raises(ValueError, match="must leave at least one"):
        Cropping1D((4, 3))(X_BxTxC)
    with pytest.raises(ValueError, match="must leave at least one"):
        Cropping1D(5, input_shape=(9, 2))
