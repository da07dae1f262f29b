"""conv1dx's own correlation loops (correlate.cc): `onednn.forward_direct` and `onednn.input_gradient_direct`
(stride 1) against the NumPy references written from the definitions, their bits across pool sizes, and
where `conv_lowering` offers the direct loops. They need AVX-512F; elsewhere no direct candidate is offered
(tested too). The loops' reads and writes against unreadable pages: tests/test_nn_correlate_guarded.py."""

import itertools
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conv1dx.nn import conv_lowering, conv_ops, onednn
from tests import reference
from tests.thread_pool_checks import assert_same_bits_with_threads

needs_direct = pytest.mark.skipif(not onednn.direct_available(),
                                  reason="the direct loops need the C++ handlers and AVX-512F")

# B, T, C, F, K. Vectors hold 16 examples and a tile is up to 2 rows by 14 output channels: batches of 1,
# 16, 17 and 33 leave empty lanes in the last block; output channels (F forward, C for the input gradient)
# of 1, 13, 14, 15 and 29 cross the tiles' edges.
SHAPES = [(1, 9, 1, 1, 1), (16, 17, 3, 13, 10), (17, 30, 14, 15, 4), (33, 40, 29, 14, 1), (5, 12, 15, 29, 2),
          (3, 64, 40, 30, 7)]
GRID = list(itertools.product(SHAPES, [1, 2, 3], ["valid", "same", "causal"]))


def _operands(shape, dilation, padding, seed=0):
    batch, length, channels, filters, kernel_size = shape
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, length, channels)).astype(np.float32)
    kernel = rng.normal(size=(kernel_size, channels, filters)).astype(np.float32)
    out_len = conv_ops.conv_output_length(length, kernel_size, padding, 1, dilation)
    dy = rng.normal(size=(batch, max(out_len, 0), filters)).astype(np.float32)
    pads = conv_ops.padding_amounts(length, kernel_size, padding, 1, dilation)
    return x, kernel, dy, pads


@needs_direct
@pytest.mark.parametrize("shape,dilation,padding", GRID)
def test_both_passes_match_the_numpy_references(shape, dilation, padding):
    length, kernel_size = shape[1], shape[4]
    if conv_ops.conv_output_length(length, kernel_size, padding, 1, dilation) < 1:
        pytest.skip("kernel longer than the padded sequence")
    x, kernel, dy, pads = _operands(shape, dilation, padding)
    y = jax.jit(lambda a, k: onednn.forward_direct(a, k, pads, dilation))(x, kernel)
    np.testing.assert_allclose(y, reference.conv1d(x, kernel, padding=padding, dilation=dilation),
                               rtol=1e-4, atol=1e-4)
    dx = jax.jit(lambda g, k: onednn.input_gradient_direct(g, k, length, pads, dilation))(dy, kernel)
    np.testing.assert_allclose(dx, reference.conv1d_input_gradient(dy, kernel, length, padding=padding,
                                                                   dilation=dilation), rtol=1e-4, atol=1e-4)


@needs_direct
@pytest.mark.parametrize("pads", [(0, 0), (7, 0), (0, 9), (30, 30)])
def test_padding_wider_than_the_kernel(pads):
    """Rows whose windows read only padding (the correlation's lead is negative for the input gradient)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(18, 11, 5)).astype(np.float32)
    kernel = rng.normal(size=(4, 5, 6)).astype(np.float32)
    out_len = 11 + sum(pads) - 2 * 3
    dy = rng.normal(size=(18, out_len, 6)).astype(np.float32)
    xpad = np.pad(x.astype(np.float64), ((0, 0), pads, (0, 0)))
    want_y = sum(np.einsum("boc,cf->bof", xpad[:, 2 * k:2 * k + out_len], kernel[k]) for k in range(4))
    np.testing.assert_allclose(onednn.forward_direct(x, kernel, pads, 2), want_y, rtol=1e-4, atol=1e-4)
    dxpad = np.zeros_like(xpad)
    for k in range(4):
        dxpad[:, 2 * k:2 * k + out_len] += np.einsum("bof,cf->boc", dy, kernel[k])
    np.testing.assert_allclose(onednn.input_gradient_direct(dy, kernel, 11, pads, 2),
                               dxpad[:, pads[0]:pads[0] + 11], rtol=1e-4, atol=1e-4)


@needs_direct
def test_the_correlation_itself_at_any_lead_and_length():
    """out[b, t] = sum_k src[b, t - lead + k d] @ w[k], zero rows outside src, for leads and output lengths
    the passes do not use (rows far past either end)."""
    rng = np.random.default_rng(7)
    src = rng.normal(size=(20, 9, 3)).astype(np.float32)
    weights = rng.normal(size=(3, 3, 16)).astype(np.float32)
    for lead, out_len in [(-12, 5), (0, 30), (5, 1), (25, 40)]:
        got = np.asarray(onednn.correlate_direct(src, weights, out_len, lead, 2))
        want = np.zeros((20, out_len, 16))
        for t, k in itertools.product(range(out_len), range(3)):
            row = t - lead + 2 * k
            if 0 <= row < 9:
                want[:, t] += src[:, row].astype(np.float64) @ weights[k]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@needs_direct
def test_lengths_that_do_not_fit_and_leads_beyond_any_sequence_are_errors():
    x, kernel, dy, pads = _operands((2, 20, 3, 4, 3), 1, "valid")
    with pytest.raises(ValueError, match="dy has 17 steps, but an input of 20 steps"):
        onednn.input_gradient_direct(dy[:, :-1], kernel, 20, pads, 1)
    with pytest.raises(ValueError, match="span 7 is longer than the padded input"):
        onednn.forward_direct(x[:, :5], np.ones((4, 3, 4), np.float32), (0, 0), 2)
    with pytest.raises(Exception, match=r"\|lead\| and the lengths at most 2\^40"):
        jax.block_until_ready(onednn.correlate_direct(x, kernel, 1, -(2 ** 60), 1))


_BITS_SOURCE = textwrap.dedent("""
    import numpy as np
    from conv1dx.nn import onednn

    def result():
        rng = np.random.default_rng(5)
        dy = rng.normal(size=(40, 100, 30)).astype(np.float32)
        kernel = rng.normal(size=(3, 20, 30)).astype(np.float32)
        return onednn.input_gradient_direct(dy, kernel, 102, (0, 0), 1)
""")


@needs_direct
@pytest.mark.parametrize("threads", [1, 3, 8])
def test_the_same_bits_whatever_the_pool_size(tmp_path, threads):
    """Each element is summed by one tile in a fixed order, so pools of 1, 3 and 8 threads give the bits
    this process's pool gives (and a second call here the same again)."""
    assert_same_bits_with_threads(_BITS_SOURCE, threads, tmp_path)


def _choose_direct(key, fingerprint, candidates, operands):
    """`conv_lowering.choose` stand-in: the direct loops where offered, XLA elsewhere."""
    return "direct" if "direct" in candidates else "xla"


@needs_direct
@pytest.mark.parametrize("dilation,padding", [(1, "valid"), (1, "same"), (3, "causal")])
def test_conv1d_with_every_pass_direct_is_the_same_function(monkeypatch, dilation, padding):
    x, kernel, _, _ = _operands((18, 40, 6, 7, 4), dilation, padding, seed=1)

    def loss(a, b):
        return jnp.sum(jnp.sin(conv_ops.conv1d(a, b, padding=padding, dilation=dilation)))

    with conv_lowering.conv_lowering("xla"):
        want = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(x, kernel)
    monkeypatch.setattr(conv_lowering, "MIN_TUNED_FLOPS", 0)
    monkeypatch.setattr(conv_lowering, "choose", _choose_direct)
    with conv_lowering.conv_lowering("auto"):
        grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
        hlo = grad.lower(x, kernel).as_text()
        got = grad(x, kernel)
    assert hlo.count("conv1dx_correlate_direct") == 2 and "conv1dx_onednn" not in hlo
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@needs_direct
def test_vmap_over_replicas():
    x, kernel, dy, pads = _operands((3, 20, 4, 5, 3), 1, "same")
    got = jax.vmap(lambda a, k: onednn.forward_direct(a, k, pads, 1))(np.stack([x, 2 * x]), np.stack([kernel, kernel]))
    np.testing.assert_allclose(got[1], 2 * reference.conv1d(x, kernel, padding="same"), rtol=1e-4, atol=1e-4)
    got = jax.vmap(lambda g, k: onednn.input_gradient_direct(g, k, 20, pads, 1))(np.stack([dy, dy]),
                                                                                  np.stack([kernel, -kernel]))
    np.testing.assert_allclose(got[1], -reference.conv1d_input_gradient(dy, kernel, 20, padding="same"),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("stride", [1, 2])
def test_direct_loops_offered_where_they_can_run(monkeypatch, stride):
    """The kernel gradient is offered the direct loops at any stride, the forward and input gradient with
    stride 1 only; none of them where `direct_available()` is False (a CPU without AVX-512F)."""
    if not onednn.available():
        pytest.skip("no C++ handlers here")
    offered = {}

    def record(key, fingerprint, candidates, operands):
        offered[key.split()[0]] = sorted(candidates)
        return "xla"

    monkeypatch.setattr(conv_lowering, "MIN_TUNED_FLOPS", 0)
    monkeypatch.setattr(conv_lowering, "choose", record)
    x, kernel = jnp.ones((2, 16, 3)), jnp.ones((3, 3, 4))

    def trace():
        offered.clear()
        with conv_lowering.conv_lowering("auto"):
            jax.jit(jax.grad(lambda a, b: jnp.sum(conv_ops.conv1d(a, b, stride=stride)), argnums=(0, 1))).lower(
                x, kernel)
        return dict(offered)

    onednn_only = ["onednn", "onednn_blocked", "xla"]
    with_direct = ["direct", *onednn_only]
    monkeypatch.setattr(onednn, "direct_available", lambda: True)
    strided = onednn_only if stride > 1 else with_direct
    assert trace() == {"forward": strided, "input_gradient": strided, "kernel_gradient": with_direct}
    monkeypatch.setattr(onednn, "direct_available", lambda: False)
    assert trace() == {"forward": onednn_only, "input_gradient": onednn_only, "kernel_gradient": onednn_only}
