"""Pooling layers against NumPy references from the TF/Keras definitions (explicit window loops)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conv1dx.nn.pooling import (
    AveragePooling1D,
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    MaxPooling1D,
    pool1d,
)

POOLS = {"max": MaxPooling1D, "avg": AveragePooling1D}


def reference_pool(
    x_BxTxC: np.ndarray, pool: int, strides: int, padding: str, kind: str
) -> np.ndarray:
    """Windowed pooling by the definition: window o covers steps [o*S - left, o*S - left + P),
    clipped to the real steps (padded steps neither win a max nor count in a mean)."""
    steps = x_BxTxC.shape[1]
    if padding == "valid":
        out, left = (steps - pool) // strides + 1, 0
    else:  # TF "same": ceil(T / S) outputs, the extra padded step goes on the right
        out = math.ceil(steps / strides)
        left = max((out - 1) * strides + pool - steps, 0) // 2
    y = np.zeros((x_BxTxC.shape[0], out, x_BxTxC.shape[2]), np.float64)
    for o in range(out):
        window = [t for t in range(o * strides - left, o * strides - left + pool) if 0 <= t < steps]
        values = x_BxTxC[:, window, :].astype(np.float64)
        y[:, o] = values.max(axis=1) if kind == "max" else values.mean(axis=1)
    return y


def reference_global(x_BxTxC: np.ndarray, mask_BxT: np.ndarray, kind: str) -> np.ndarray:
    """Max / mean over the valid steps of each row; zeros for a row without valid steps."""
    y = np.zeros((x_BxTxC.shape[0], x_BxTxC.shape[2]), np.float64)
    for b in range(x_BxTxC.shape[0]):
        valid = x_BxTxC[b, mask_BxT[b]].astype(np.float64)
        if len(valid):
            y[b] = valid.max(axis=0) if kind == "max" else valid.mean(axis=0)
    return y


GRID = [
    (steps, pool, strides)
    for steps in (7, 10, 13)
    for pool in range(1, 6)
    for strides in (1, 2, 3, None)
]


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_matches_reference_over_grid(kind, padding, data_format):
    """Every (T, P, S) of the grid: S == P (or None) takes the reshape path, the rest slices."""
    rng = np.random.default_rng(0)
    xs_BxTxC = {steps: rng.normal(size=(2, steps, 3)).astype(np.float32) for steps in (7, 10, 13)}
    first = data_format == "channels_first"
    layers = [
        POOLS[kind](
            pool, strides, padding, data_format, input_shape=(3, steps) if first else (steps, 3)
        )
        for steps, pool, strides in GRID
    ]

    @jax.jit  # one compilation for the whole grid keeps the test fast
    def pool_all(xs):
        return [
            layer(xs[steps].transpose(0, 2, 1) if first else xs[steps])
            for layer, (steps, _, _) in zip(layers, GRID, strict=True)
        ]

    for y, layer, (steps, pool, strides) in zip(pool_all(xs_BxTxC), layers, GRID, strict=True):
        assert y.shape[1:] == layer.compute_output_shape(layer.input_shape)
        y = np.asarray(y).transpose(0, 2, 1) if first else np.asarray(y)
        expected = reference_pool(xs_BxTxC[steps], pool, strides or pool, padding, kind)
        np.testing.assert_allclose(
            y, expected, rtol=1e-5, atol=1e-6, err_msg=f"T={steps} P={pool} S={strides}"
        )


def test_eager_call_matches_reference():
    x_BxTxC = np.random.default_rng(3).normal(size=(2, 11, 3)).astype(np.float32)
    for kind, padding in [("max", "valid"), ("avg", "same")]:
        y = POOLS[kind](3, 2, padding)(x_BxTxC)
        np.testing.assert_allclose(
            np.asarray(y), reference_pool(x_BxTxC, 3, 2, padding, kind), rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_long_windows_use_reduce_window_and_match_reference(kind, padding):
    x_BxTxC = np.random.default_rng(1).normal(size=(2, 41, 2)).astype(np.float32)
    for pool, strides in [(17, 17), (20, 3), (17, 1)]:
        y = POOLS[kind](pool, strides, padding)(x_BxTxC)
        expected = reference_pool(x_BxTxC, pool, strides, padding, kind)
        np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-6)


def test_max_pooling_same_padding_never_picks_padding():
    x_BxTxC = -np.ones((1, 5, 1), np.float32) * np.arange(1, 6, dtype=np.float32)[None, :, None]
    y = MaxPooling1D(4, 2, "same")(x_BxTxC)  # all inputs negative: a zero pad would win
    np.testing.assert_array_equal(np.asarray(y)[0, :, 0], [-1.0, -2.0, -4.0])


def test_output_length_formulas_and_unknown_steps():
    assert MaxPooling1D(3, 2).compute_output_shape((10, 4)) == (4, 4)
    assert MaxPooling1D(3, 2, "same").compute_output_shape((10, 4)) == (5, 4)
    assert AveragePooling1D(2, data_format="channels_first").compute_output_shape((4, 9)) == (4, 4)
    assert MaxPooling1D(2).compute_output_shape((None, 4)) == (None, 4)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("strides", [None, 2])
def test_jit_and_finite_gradients(kind, strides):
    layer = POOLS[kind](3, strides, "same", input_shape=(11, 4))
    graphdef, state = nnx.split(layer)
    x_BxTxC = jax.random.normal(jax.random.key(0), (2, 11, 4))

    @jax.jit
    def loss(x):
        return jnp.sum(nnx.merge(graphdef, state)(x) ** 2)

    np.testing.assert_allclose(loss(x_BxTxC), jnp.sum(layer(x_BxTxC) ** 2), rtol=1e-5)
    grad = jax.jit(jax.grad(loss))(x_BxTxC)
    assert grad.shape == x_BxTxC.shape and bool(jnp.all(jnp.isfinite(grad)))
    assert bool(jnp.any(grad != 0))


def test_pooling_layers_have_no_parameters():
    for layer in (
        MaxPooling1D(2),
        AveragePooling1D(2),
        GlobalMaxPooling1D(),
        GlobalAveragePooling1D(),
    ):
        layer(jnp.ones((1, 6, 3)))
        assert nnx.state(layer, nnx.Param) == nnx.State({})


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(pool_size=0), "pool_size"),
        (dict(pool_size=-2), "pool_size"),
        (dict(pool_size=2.5), "pool_size"),
        (dict(pool_size=2, strides=0), "strides"),
        (dict(pool_size=2, padding="full"), "padding"),
        (dict(pool_size=2, data_format="NWC"), "data_format"),
    ],
)
def test_invalid_arguments_raise(kwargs, message):
    for cls in POOLS.values():
        with pytest.raises(ValueError, match=message):
            cls(**kwargs)


def test_input_errors():
    with pytest.raises(ValueError, match="fewer than pool_size"):
        MaxPooling1D(5)(jnp.ones((1, 3, 2)))
    with pytest.raises(ValueError, match="rank 3"):
        AveragePooling1D(2)(jnp.ones((4, 6)))
    with pytest.raises(ValueError, match="data_format"):
        GlobalMaxPooling1D(data_format="NCW")
    with pytest.raises(ValueError, match="mask must have shape"):
        GlobalAveragePooling1D()(jnp.ones((2, 5, 3)), mask=jnp.ones((2, 4), bool))
    assert MaxPooling1D(5, padding="SAME")(jnp.ones((1, 3, 2))).shape == (1, 1, 2)
    with pytest.raises(ValueError, match="kind must be"):
        pool1d(jnp.ones((1, 4, 2)), 2, 2, "valid", "min")
    with pytest.raises(ValueError, match="fewer than pool_size"):
        pool1d(jnp.ones((1, 4, 2)), 5, 1, "valid", "max")


def _masked_batch():
    """Rows: all valid, mostly padded (one valid step), half valid, none valid; padding is huge."""
    rng = np.random.default_rng(2)
    x_BxTxC = rng.normal(size=(4, 9, 3)).astype(np.float32)
    lengths = np.array([9, 1, 5, 0])
    mask_BxT = np.arange(9)[None, :] < lengths[:, None]
    x_BxTxC[~mask_BxT] = 1e6  # would win every max and dominate every mean if it leaked in
    return x_BxTxC, mask_BxT


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize(
    "kind, cls", [("max", GlobalMaxPooling1D), ("avg", GlobalAveragePooling1D)]
)
def test_global_pooling_honours_mask(kind, cls, data_format):
    x_BxTxC, mask_BxT = _masked_batch()
    layer = cls(data_format=data_format)
    x = x_BxTxC if data_format == "channels_last" else x_BxTxC.transpose(0, 2, 1)
    y = layer(x, mask=mask_BxT)
    np.testing.assert_allclose(np.asarray(y), reference_global(x_BxTxC, mask_BxT, kind), rtol=1e-6)
    assert layer.compute_mask(x, mask_BxT) is None
    unmasked = layer(x)
    full = np.ones(mask_BxT.shape, bool)
    np.testing.assert_allclose(
        np.asarray(unmasked), reference_global(x_BxTxC, full, kind), rtol=1e-6
    )


@pytest.mark.parametrize("cls", [GlobalMaxPooling1D, GlobalAveragePooling1D])
def test_global_pooling_gradient_ignores_padding(cls):
    x_BxTxC, mask_BxT = _masked_batch()
    layer = cls(input_shape=x_BxTxC.shape[1:])
    graphdef, state = nnx.split(layer)
    grad = jax.jit(jax.grad(lambda x, m: jnp.sum(nnx.merge(graphdef, state)(x, mask=m))))(
        jnp.asarray(x_BxTxC), jnp.asarray(mask_BxT)
    )
    grad = np.asarray(grad)
    assert np.all(np.isfinite(grad))
    assert np.all(grad[~mask_BxT] == 0)
    assert np.all(grad[mask_BxT].sum(axis=0) > 0)


@pytest.mark.parametrize("cls", [GlobalMaxPooling1D, GlobalAveragePooling1D])
def test_global_pooling_keepdims_shapes(cls):
    x_BxTxC = jnp.ones((2, 5, 3))
    last, first = cls(keepdims=True), cls(data_format="channels_first", keepdims=True)
    assert last(x_BxTxC).shape == (2, *last.compute_output_shape((5, 3))) == (2, 1, 3)
    assert first(x_BxTxC).shape == (2, *first.compute_output_shape((5, 3))) == (2, 5, 1)
    assert cls()(x_BxTxC).shape == (2, *cls().compute_output_shape((5, 3))) == (2, 3)
