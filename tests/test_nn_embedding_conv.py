"""A Conv1D computed straight from an Embedding's table (`conv1dx.nn.embedding_conv`): the function against
NumPy references written from the definitions, its use inside `Sequential`, and the mode and timing."""

import concurrent.futures
import itertools
import json
import platform
import sys
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conv1dx import nn
from conv1dx.nn import conv_lowering, conv_ops, embedding_conv, onednn
from conv1dx.nn.embedding_conv import embedding_conv1d, unfused_embedding_conv1d
from conv1dx.train.config_check import ConfigError, check_config
from tests import reference
from tests.thread_pool_checks import run_with_threads

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


@pytest.mark.slow
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
    for function in (embedding_conv1d, unfused_embedding_conv1d):  # a window read a NaN row: NaN
        d_kernel = jax.grad(lambda k, f=function: jnp.nansum(f(table, ids, k, padding="same")))(kernel)
        assert np.isnan(d_kernel).all()
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


def test_bfloat16_table_gradients_accumulate_in_float32():
    table = jnp.ones((3, 1), jnp.bfloat16)
    kernel = jnp.ones((1, 1, 1), jnp.bfloat16)
    ids = np.ones((4, 1024), np.int32)  # token 1, 4,096 times: a bfloat16 sum would stop at 256
    d_table = jax.grad(lambda t: jnp.sum(embedding_conv1d(t, ids, kernel).astype(jnp.float32)))(table)
    assert d_table.dtype == jnp.bfloat16 and float(d_table[1, 0]) == 4096.0 and float(d_table[0, 0]) == 0.0


# -- the C++ handlers for the taps (CPU) ------------------------------------------------------------------
needs_handlers = pytest.mark.skipif(not (sys.platform == "linux" and platform.machine() == "x86_64"),
                                    reason="conv1dx builds its C++ handlers on Linux x86-64 only")
_TAPS_SCRIPT = """
import numpy as np, jax
from conv1dx.nn import onednn
rng = np.random.default_rng(0)
for K, R, F, B, O in [(7, 50, 32, 4, 30), (3, 5, 7, 3, 4), (5, 9, 17, 1, 7), (1, 2, 1, 1, 1), (2, 4, 3, 0, 5)]:
    P = rng.normal(size=(K, R, F)).astype(np.float32)
    rows = rng.integers(0, R, (K, B, O)).astype(np.int32)
    dy = rng.normal(size=(B, O, F)).astype(np.float32)
    y = jax.jit(onednn.embedding_taps_sum)(P, rows)
    d = jax.jit(onednn.embedding_taps_scatter, static_argnums=2)(dy, rows, R)
    want_d = np.zeros((K, R, F), np.float32)
    for k in range(K):
        np.add.at(want_d[k], rows[k].reshape(-1), dy.reshape(-1, F))
    np.testing.assert_allclose(y, sum(P[k][rows[k]] for k in range(K)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(d, want_d, rtol=1e-6, atol=1e-6)
print("checked")
"""


@needs_handlers
@pytest.mark.parametrize("threads", [None, 3, 8])
def test_the_taps_handlers_match_numpy_over_thread_counts(threads):
    """The sum splits output steps across XLA's pool and the scatter its taps (NPROC sizes the pool):
    fewer steps or taps than threads, uneven splits, F off the vector width, an empty batch."""
    run_with_threads(_TAPS_SCRIPT, threads)


@needs_handlers
def test_a_taps_row_out_of_range_is_an_error_not_a_stray_read():
    with pytest.raises(Exception, match=r"row 5 outside \[0, 5\)"):
        jax.block_until_ready(jax.jit(onednn.embedding_taps_sum)(np.zeros((1, 5, 2), np.float32),
                                                                 np.full((1, 1, 1), 5, np.int32)))


@needs_handlers
def test_handlers_and_xla_compute_the_same_fused_layer():
    table, ids, kernel, dy = _operands(40, 3, 25, 8, 6, 5, 2, 1, "same", seed=2)

    def run():
        def loss(t, k):
            return jnp.sum(embedding_conv1d(t, ids, k, stride=2, padding="same") * dy)
        function = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
        return function(table, kernel), function.lower(table, kernel).as_text()

    with conv_lowering.conv_lowering("auto"):
        (with_handlers, text_handlers) = run()
    with conv_lowering.conv_lowering("xla"):  # XLA's own operations throughout
        (with_xla, text_xla) = run()
    assert "conv1dx_embedding_taps_sum" in text_handlers and "conv1dx_embedding_taps_scatter" in text_handlers
    assert "conv1dx_embedding_taps" not in text_xla
    for got, want in zip(jax.tree.leaves(with_handlers), jax.tree.leaves(with_xla), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


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


@pytest.mark.slow
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


class _ScaledEmbedding(nn.Embedding):
    def forward(self, x, *, mask, training, rngs):
        return 4.0 * super().forward(x, mask=mask, training=training, rngs=rngs)


def _on_and_off(model, ids, **call):
    outputs = {}
    for mode in ("on", "off"):
        with embedding_conv.embedding_conv_fusion(mode):
            outputs[mode] = model(ids, **call)
    return outputs["on"], outputs["off"]


@pytest.mark.parametrize("layers", [
    lambda: [_ScaledEmbedding(50, 16), nn.Conv1D(8, 3)],  # a subclass may compute something else
    lambda: [nn.Embedding(50, 30), nn.Conv1D(8, 3, data_format="channels_first")],  # steps == dims
    lambda: [nn.Embedding(50, 16), nn.Conv1D(8, 3), nn.Dropout(0.5), nn.Conv1D(4, 3)],  # rngs after the pair
], ids=["embedding subclass", "channels_first", "dropout after"])
def test_sequential_gives_the_same_outputs_on_and_off(layers):
    model = nn.Sequential(layers(), input_shape=(30,), rngs=nnx.Rngs(0))
    on, off = _on_and_off(model, _ids(), training=True, rngs=jax.random.key(7))
    np.testing.assert_allclose(on, off, rtol=1e-5, atol=1e-5)


def test_narrow_integer_ids_are_widened_before_the_padding_row():
    model = nn.Sequential([nn.Embedding(255, 4), nn.Conv1D(2, 5, padding="same")], input_shape=(12,),
                          rngs=nnx.Rngs(0))
    ids = np.random.default_rng(0).integers(0, 255, (3, 12))
    want = model(jnp.asarray(ids, jnp.int32))
    for got in _on_and_off(model, jnp.asarray(ids, jnp.uint8)):  # V + 1 = 256 wraps to 0 in uint8
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_a_kernel_longer_than_the_sequence_is_named_when_fused():
    model = nn.Sequential([nn.Embedding(50, 4), nn.Conv1D(2, 5)], rngs=nnx.Rngs(0))
    model(jnp.zeros((1, 8), jnp.int32))  # built for 8 steps
    with embedding_conv.embedding_conv_fusion("on"), pytest.raises(ValueError, match="kernel spans 5 steps"):
        model(jnp.zeros((1, 3), jnp.int32))


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
    monkeypatch.setattr(embedding_conv.MODE, "mode", None)
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


@pytest.mark.slow
def test_auto_times_the_fusion_once_and_keeps_the_decision(monkeypatch):
    monkeypatch.setattr(conv_lowering, "MIN_TUNED_FLOPS", 0)
    geometry = dict(stride=1, padding="valid", dilation=1)
    with embedding_conv.embedding_conv_fusion("auto"), conv_lowering.conv_lowering("auto"):
        # on a thread, so a deadlock (the unfused candidate's convolutions are timed inside this timing)
        # fails the test instead of hanging it
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            first = pool.submit(embedding_conv.fusion_choice, *_shapes(20, 8, 64), **geometry).result(timeout=300)
        stored = json.loads(conv_lowering.tuning_file().read_text())
        decisions = {key: value for machine in stored.values() for key, value in machine.items()
                     if key.startswith("embedding_conv")}
        device = jax.devices()[0]
        assert list(decisions) == [f"embedding_conv B8 T64 V20 D16 F8 K5 stride1 pad0,0 dilation1 lowering auto "
                                   f"on {device.platform} {device.device_kind}"]
        (decision,) = decisions.values()
        assert set(decision["ms"]) == {"xla", "fused"} and decision["choice"] == ("fused" if first else "xla")
        monkeypatch.setattr(conv_lowering, "time_candidates", lambda *a: pytest.fail("timed again"))
        assert embedding_conv.fusion_choice(*_shapes(20, 8, 64), **geometry) == first


@pytest.mark.parametrize("shapes", [
    _shapes(250, 8, 64),  # more than half the batch's 480 output steps (but not of its 512 input steps)
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


def test_threads_asking_for_one_pass_share_one_timing(monkeypatch):
    calls = []
    release = threading.Event()

    def slow_timing(candidates, operands):
        calls.append(1)
        release.wait(10)
        return {"xla": 2.0, "fused": 1.0}

    monkeypatch.setattr(conv_lowering, "time_candidates", slow_timing)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = [pool.submit(conv_lowering.choose, "pass P", "machine", {"xla": None, "fused": None}, [])
                   for _ in range(4)]
        time.sleep(1.0)  # all four have asked while the first is still timing
        release.set()
        assert [answer.result(timeout=30) for answer in answers] == ["fused"] * 4
    assert len(calls) == 1
