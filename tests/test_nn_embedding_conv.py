"""A Conv1D computed straight from an Embedding's table (`conv1dx.nn.embedding_conv`): the function against
NumPy references written from the definitions, its use inside `Sequential`, and the mode and timing."""

import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conv1dx import nn
from conv1dx.nn import conv_lowering, conv_ops, embedding_conv
from conv1dx.nn.embedding_conv import embedding_conv1d, unfused_embedding_conv1d
from conv1dx.train.config_check import ConfigError, check_config
from tests import reference

# V, B, T, D, F, K: vocabularies smaller and larger than the batch's steps, K = 1, a kernel as long as T
SHAPES = [(11, 2, 17, 3, 5, 3), (40, 3, 12, 6, 4, 5), (5, 1, 9, 4, 2, 1), (9, 4, 6, 2, 3, 6)]
GRID = list(itertools.product(SHAPES, [1, 2, 3], [1, 2], ["valid", "same", "causal"]))


def _operands(vocabulary, batch, length, dim, filters, kernel_size, stride, dilation, padding, seed=0):
    rng = np.random.default_rng(seed)
    table = rng.normal(size=(vocabulary, dim)).astype(np.float32)
    ids = rng.integers(0, vocabulary, (batch, length))
    kernel = rng.normal(size=(kernel_size, dim, filters)).astype(np.float32)
    out_len = conv_ops.conv_output_length(length, kernel_size, padding, stride, dilation)
    dy = rng.normal(size=(batch, out_len, filters)).astype(np.float32)
    return table, ids, kernel, dy


def _numpy_reference(table, ids, kernel, dy, **geometry):
    """y = conv(table[ids]); d_table sums the embedded rows' gradients per id; d_kernel as for any input."""
    x = table[ids]
    y = reference.conv1d(x, kernel, **geometry)
    dx = reference.conv1d_input_gradient(dy, kernel, ids.shape[1], **geometry)
    d_table = np.zeros_like(table)
    np.add.at(d_table, ids.reshape(-1), dx.reshape(-1, table.shape[1]))
    d_kernel = reference.conv1d_kernel_gradient(x, dy, kernel.shape[0], **geometry)
    return y, d_table, d_kernel


@pytest.mark.parametrize("shape,stride,dilation,padding", GRID)
def test_it_matches_the_numpy_references(shape, stride, dilation, padding):
    vocabulary, batch, length, dim, filters, kernel_size = shape
    if conv_ops.conv_output_length(length, kernel_size, padding, stride, dilation) < 1:
        pytest.skip("kernel longer than the padded sequence")
    table, ids, kernel, dy = _operands(*shape, stride, dilation, padding)
    geometry = dict(stride=stride, padding=padding, dilation=dilation)
    y, backward = jax.vjp(lambda t, k: embedding_conv1d(t, ids, k, **geometry), table, kernel)
    d_table, d_kernel = backward(dy)
    want_y, want_table, want_kernel = _numpy_reference(table, ids, kernel, dy, **geometry)
    np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(d_table, want_table, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(d_kernel, want_kernel, rtol=1e-4, atol=1e-4)


def test_it_agrees_with_the_unfused_layers_under_jit():
    table, ids, kernel, dy = _operands(30, 4, 40, 16, 8, 5, 1, 1, "same", seed=3)

    def value_and_grads(function):
        def loss(t, k):
            return jnp.sum(jnp.tanh(function(t, ids, k, padding="same")) * dy)
        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(table, kernel)

    fused, unfused = value_and_grads(embedding_conv1d), value_and_grads(unfused_embedding_conv1d)
    for got, want in zip(jax.tree.leaves(fused), jax.tree.leaves(unfused), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_it_vectorizes_over_replicas_like_the_unfused_layers():
    tables = np.random.default_rng(4).normal(size=(3, 20, 6)).astype(np.float32)
    kernels = np.random.default_rng(5).normal(size=(3, 3, 6, 4)).astype(np.float32)
    ids = np.random.default_rng(6).integers(0, 20, (3, 2, 15))  # each replica its own batch

    def grads(function):
        def loss(table, kernel, ids):
            return jnp.sum(jnp.cos(function(table, ids, kernel, padding="causal")))
        return jax.vmap(jax.grad(loss, argnums=(0, 1)))(tables, kernels, ids)

    for got, want in zip(grads(embedding_conv1d), grads(unfused_embedding_conv1d), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_a_bad_id_gives_nan_windows_and_no_table_gradient():
    table = np.ones((6, 2), np.float32)
    kernel = np.ones((3, 2, 1), np.float32)
    ids = np.array([[1, 2, 9, 3, 4, 5, -1, 0]])  # 9 and -1 are outside [0, 6)
    y, backward = jax.vjp(lambda t: embedding_conv1d(t, ids, kernel, padding="same"), table)
    unfused = unfused_embedding_conv1d(table, ids, kernel, padding="same")
    np.testing.assert_array_equal(y, unfused)  # NaN exactly where the window holds a bad id
    assert np.isnan(y[0, :, 0]).tolist() == [False, True, True, True, False, True, True, True]
    (d_table,) = backward(np.ones_like(y))
    assert np.isfinite(d_table).all()
    # ids 1..5 and 0 each sit under as many taps as their position allows; no row for the bad ids
    np.testing.assert_array_equal(d_table[:, 0], [2, 2, 3, 3, 3, 3])


def test_bfloat16_computes_in_float32_and_returns_the_operands_dtypes():
    table, ids, kernel, dy = _operands(13, 2, 20, 8, 4, 3, 1, 1, "valid")
    table16, kernel16 = jnp.asarray(table, jnp.bfloat16), jnp.asarray(kernel, jnp.bfloat16)
    y, backward = jax.vjp(lambda t, k: embedding_conv1d(t, ids, k), table16, kernel16)
    d_table, d_kernel = backward(jnp.asarray(dy, jnp.bfloat16))
    assert (y.dtype, d_table.dtype, d_kernel.dtype) == (jnp.bfloat16,) * 3
    want_y, want_table, _ = _numpy_reference(np.asarray(table16, np.float32), ids,
                                             np.asarray(kernel16, np.float32), np.asarray(dy))
    np.testing.assert_allclose(np.asarray(y, np.float32), want_y, rtol=2e-2, atol=5e-2)
    np.testing.assert_allclose(np.asarray(d_table, np.float32), want_table, rtol=2e-2, atol=5e-2)


# -- in Sequential --------------------------------------------------------------------------------------
def _model(conv_kwargs=None, embedding_kwargs=None, seed=0):
    return nn.Sequential([
        nn.Embedding(50, 16, **(embedding_kwargs or {})),
        nn.Conv1D(8, 5, activation="relu", **(conv_kwargs or {})),
        nn.GlobalMaxPooling1D(),
        nn.Dense(1),
    ], input_shape=(30,), rngs=nnx.Rngs(seed))


def _ids(seed=1, batch=6, length=30, vocabulary=50):
    ids = np.random.default_rng(seed).integers(1, vocabulary, (batch, length))
    ids[:, -4:] = 0  # right padding, for the masked variants
    return jnp.asarray(ids)


def _outputs_and_grads(model, ids, mode):
    with embedding_conv.embedding_conv_fusion(mode):
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)

        @jax.jit
        def loss(params, rest):
            return jnp.sum(jnp.sin(nnx.merge(graphdef, params, rest)(ids)))
        value, grads = jax.value_and_grad(loss)(params, rest)
        jaxpr = str(jax.make_jaxpr(jax.grad(loss))(params, rest))
    return value, jax.tree.leaves(grads), jaxpr.count("conv_general_dilated")


@pytest.mark.parametrize("conv_kwargs", [{}, {"padding": "causal", "dilation_rate": 2},
                                         {"strides": 2, "padding": "same"}])
def test_sequential_fuses_an_embedding_and_a_conv_with_the_same_results(conv_kwargs):
    model, ids = _model(conv_kwargs), _ids()
    fused_value, fused_grads, fused_convs = _outputs_and_grads(model, ids, "on")
    value, grads, convs = _outputs_and_grads(model, ids, "off")
    assert convs > 0 and fused_convs == 0  # "on" left no convolution to XLA
    np.testing.assert_allclose(fused_value, value, rtol=1e-5)
    for got, want in zip(fused_grads, grads, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_masks_and_activity_regularizers_survive_the_fusion():
    model = nn.Sequential([
        nn.Embedding(50, 16, mask_zero=True),
        nn.Conv1D(8, 3, padding="same", activity_regularizer="l2"),
        nn.GlobalAveragePooling1D(),  # masked: the padded steps do not count
    ], input_shape=(30,), rngs=nnx.Rngs(0))
    ids = _ids()
    results = {}
    for mode in ("on", "off"):
        with embedding_conv.embedding_conv_fusion(mode):
            out = model(ids)
            results[mode] = (out, nn.regularization_loss(model))
    np.testing.assert_allclose(results["on"][0], results["off"][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results["on"][1], results["off"][1], rtol=1e-5)
    assert float(results["on"][1]) > 0


@pytest.mark.parametrize("conv_kwargs,embedding_kwargs", [
    ({"groups": 2}, {}),
    ({}, {"activity_regularizer": "l1"}),  # the embedded rows are observed
])
def test_layers_that_cannot_be_fused_stay_apart(conv_kwargs, embedding_kwargs):
    model, ids = _model(conv_kwargs, embedding_kwargs), _ids()
    _, _, convs = _outputs_and_grads(model, ids, "on")
    assert convs > 0


def test_intermediates_need_the_embedded_rows_so_they_are_not_fused():
    model, ids = _model(), _ids()
    with embedding_conv.embedding_conv_fusion("on"):
        out, intermediates = model(ids, return_intermediates=True)
        fused = model(ids)
    assert intermediates["embedding"].shape == (6, 30, 16)
    np.testing.assert_allclose(out, fused, rtol=1e-5, atol=1e-6)


def test_an_eager_call_still_names_bad_ids():
    with embedding_conv.embedding_conv_fusion("on"), pytest.raises(ValueError, match=r"outside \[0, 50\): \[77\]"):
        _model()(jnp.full((2, 30), 77))


# -- the mode and the timed choice ------------------------------------------------------------------------
def test_the_mode_comes_from_the_setter_then_the_environment(monkeypatch):
    monkeypatch.setattr(embedding_conv, "_mode", None)
    monkeypatch.setenv("CONV1DX_EMBEDDING_CONV_FUSION", "off")
    assert embedding_conv.get_embedding_conv_fusion() == "off"
    with embedding_conv.embedding_conv_fusion("on"):
        assert embedding_conv.get_embedding_conv_fusion() == "on"
    assert embedding_conv.get_embedding_conv_fusion() == "off"
    with pytest.raises(ValueError, match="embedding_conv_fusion='fast'"):
        embedding_conv.set_embedding_conv_fusion("fast")
    monkeypatch.setenv("CONV1DX_EMBEDDING_CONV_FUSION", "sometimes")
    with pytest.raises(ValueError, match="CONV1DX_EMBEDDING_CONV_FUSION='sometimes'"):
        embedding_conv.get_embedding_conv_fusion()


def _shapes(vocabulary, batch, length, dim=16, filters=8, kernel_size=5, dtype=jnp.float32):
    return (jax.ShapeDtypeStruct((vocabulary, dim), dtype), jax.ShapeDtypeStruct((batch, length), jnp.int32),
            jax.ShapeDtypeStruct((kernel_size, dim, filters), dtype))


def test_auto_times_the_fusion_once_and_keeps_the_decision(monkeypatch):
    monkeypatch.setattr(conv_lowering, "MIN_TUNED_FLOPS", 0)
    geometry = dict(stride=1, padding="valid", dilation=1)
    with embedding_conv.embedding_conv_fusion("auto"):
        first = embedding_conv.fusion_choice(*_shapes(20, 8, 64), **geometry)
        stored = json.loads(conv_lowering.tuning_file().read_text())
        decisions = {key: value for machine in stored.values() for key, value in machine.items()
                     if key.startswith("embedding_conv")}
        assert list(decisions) == ["embedding_conv B8 T64 V20 D16 F8 K5 stride1 pad0,0 dilation1 lowering auto"]
        (decision,) = decisions.values()
        assert set(decision["ms"]) == {"xla", "fused"} and decision["choice"] == ("fused" if first else "xla")
        monkeypatch.setattr(conv_lowering, "time_candidates", lambda *a: pytest.fail("timed again"))
        assert embedding_conv.fusion_choice(*_shapes(20, 8, 64), **geometry) == first


@pytest.mark.parametrize("shapes", [
    _shapes(300, 8, 64),  # the vocabulary exceeds half the batch's 480 output steps
    _shapes(20, 8, 64, dtype=jnp.bfloat16),
])
def test_auto_does_not_even_time_what_cannot_pay(monkeypatch, shapes):
    monkeypatch.setattr(conv_lowering, "MIN_TUNED_FLOPS", 0)
    monkeypatch.setattr(conv_lowering, "time_candidates", lambda *a: pytest.fail("timed"))
    with embedding_conv.embedding_conv_fusion("auto"):
        assert not embedding_conv.fusion_choice(*shapes, stride=1, padding="valid", dilation=1)


def test_a_wrong_trainer_mode_is_a_config_error():
    from conv1dx.train import compose_config

    cfg = compose_config(["trainer.embedding_conv_fusion=always"])
    with pytest.raises(ConfigError, match="trainer.embedding_conv_fusion must be auto, on, off"):
        check_config(cfg)
