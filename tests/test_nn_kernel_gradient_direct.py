"""conv1dx's own kernel-gradient loops (`onednn.kernel_gradient_direct`, kernel_gradient.cc) against the
NumPy reference written from the definition, their bits across pool sizes, and conv1d through them. They
need AVX-512F; elsewhere the candidate is not offered (tests/test_nn_correlate_direct.py checks where
`conv_lowering` offers each of conv1dx's direct loops)."""

import itertools
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conv1dx.nn import conv_lowering, conv_ops, onednn
from tests import reference
from tests.guarded_harness import run_guarded_harness
from tests.thread_pool_checks import assert_same_bits_with_threads

needs_direct = pytest.mark.skipif(not onednn.direct_available(),
                                  reason="the direct kernel gradient needs the C++ handlers and AVX-512F")

# B, T, C, F, K. A tile is 32 gradient rows (k, c) by up to 14 columns f: K*C of 1, 30, 32, 33, 64, 105
# and F of 1, 13, 14, 15, 29, 43 cross the tiles' edges and leave narrow last tiles; the last shape's
# batch is walked in several cache blocks (4 examples each, the last one short).
SHAPES = [(1, 9, 1, 1, 1), (2, 17, 3, 13, 10), (3, 30, 8, 15, 4), (2, 40, 33, 14, 1), (1, 12, 16, 29, 2),
          (2, 25, 21, 43, 5), (9, 200, 40, 30, 3)]
GRID = list(itertools.product(SHAPES, [1, 2, 3], [1, 2], ["valid", "same", "causal"]))


def _operands(shape, stride, dilation, padding, seed=0):
    batch, length, channels, filters, kernel_size = shape
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, length, channels)).astype(np.float32)
    out_len = conv_ops.conv_output_length(length, kernel_size, padding, stride, dilation)
    dy = rng.normal(size=(batch, max(out_len, 0), filters)).astype(np.float32)
    pads = conv_ops.padding_amounts(length, kernel_size, padding, stride, dilation)
    return x, dy, pads


@needs_direct
@pytest.mark.parametrize("shape,stride,dilation,padding", GRID)
def test_matches_the_numpy_reference(shape, stride, dilation, padding):
    kernel_size = shape[4]
    if conv_ops.conv_output_length(shape[1], kernel_size, padding, stride, dilation) < 1:
        pytest.skip("kernel longer than the padded sequence")
    x, dy, pads = _operands(shape, stride, dilation, padding)
    got = jax.jit(lambda a, g: onednn.kernel_gradient_direct(a, g, kernel_size, stride, pads, dilation))(x, dy)
    want = reference.conv1d_kernel_gradient(x, dy, kernel_size, stride=stride, padding=padding, dilation=dilation)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@needs_direct
@pytest.mark.parametrize("pads", [(0, 0), (7, 0), (0, 9), (30, 30)])
def test_windows_reaching_far_into_the_padding(pads):
    """Padding wider than the kernel: whole windows of zeros at both ends (masked loads outside x)."""
    x = np.random.default_rng(3).normal(size=(3, 11, 5)).astype(np.float32)
    out_len = (11 + sum(pads) - 2 * 3 - 1) // 2 + 1
    dy = np.random.default_rng(4).normal(size=(3, out_len, 6)).astype(np.float32)
    got = onednn.kernel_gradient_direct(x, dy, 4, 2, pads, 2)
    xpad = np.pad(x.astype(np.float64), ((0, 0), pads, (0, 0)))
    want = np.stack([np.einsum("boc,bof->cf", xpad[:, 2 * k:2 * k + 2 * (out_len - 1) + 1:2], dy)
                     for k in range(4)])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@needs_direct
def test_a_window_longer_than_the_input_on_one_side_only():
    """K = 7 over T = 6 padded on the right only: the one window starts inside x and ends in the padding,
    so no row is interior (a first interior row of 0 would read into the next example)."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 6, 1)).astype(np.float32)
    dy = rng.normal(size=(2, 1, 4)).astype(np.float32)
    got = onednn.kernel_gradient_direct(x, dy, 7, 2, (0, 1), 1)
    xpad = np.pad(x.astype(np.float64), ((0, 0), (0, 1), (0, 0)))
    np.testing.assert_allclose(got, np.einsum("bkc,bf->kcf", xpad, dy[:, 0]), rtol=1e-5, atol=1e-6)


@needs_direct
def test_an_output_length_that_does_not_fit_the_geometry_is_an_error():
    x, dy, _ = _operands((2, 20, 3, 4, 3), 1, 1, "valid")
    with pytest.raises(Exception, match="O does not follow from T, K"):
        jax.block_until_ready(onednn.kernel_gradient_direct(x, dy[:, :-1], 3, 1, (0, 0), 1))
    # A kernel longer than the input has no window (O = 0, floor division): O = 1 is an error, O = 0 zeros.
    x = np.ones((2, 4, 3), np.float32)
    with pytest.raises(Exception, match="O does not follow from T, K"):
        jax.block_until_ready(onednn.kernel_gradient_direct(x, np.ones((2, 1, 5), np.float32), 5, 2, (0, 0), 1))
    np.testing.assert_array_equal(onednn.kernel_gradient_direct(x, np.ones((2, 0, 5), np.float32), 5, 2, (0, 0), 1),
                                  np.zeros((5, 3, 5)))


_BITS_SOURCE = textwrap.dedent("""
    import numpy as np
    from conv1dx.nn import onednn

    def result():
        rng = np.random.default_rng(5)
        x = rng.normal(size=(9, 200, 40)).astype(np.float32)
        dy = rng.normal(size=(9, 100, 30)).astype(np.float32)
        return onednn.kernel_gradient_direct(x, dy, 3, 2, (1, 1), 1)
""")


@needs_direct
@pytest.mark.parametrize("threads", [1, 3, 8])
def test_the_same_bits_whatever_the_pool_size(tmp_path, threads):
    """Each element is summed by one thread in a fixed order, so pools of 1, 3 and 8 threads give the bits
    this process's pool gives (and a second call here the same again)."""
    assert_same_bits_with_threads(_BITS_SOURCE, threads, tmp_path)


def _choose_direct(key, fingerprint, candidates, operands):
    """`conv_lowering.choose` stand-in: the direct kernel gradient where offered, XLA for the other passes."""
    return "direct" if "direct" in candidates else "xla"


@needs_direct
@pytest.mark.parametrize("stride,dilation,padding", [(1, 1, "valid"), (2, 1, "same"), (1, 3, "causal")])
def test_conv1d_with_the_direct_kernel_gradient_is_the_same_function(monkeypatch, stride, dilation, padding):
    x, _, _ = _operands((4, 40, 6, 7, 4), stride, dilation, padding, seed=1)
    kernel = np.random.default_rng(2).normal(size=(4, 6, 7)).astype(np.float32)

    def loss(a, b):
        return jnp.sum(jnp.sin(conv_ops.conv1d(a, b, stride=stride, padding=padding, dilation=dilation)))

    with conv_lowering.conv_lowering("xla"):
        want = jax.jit(jax.grad(loss, argnums=(0, 1)))(x, kernel)
    monkeypatch.setattr(conv_lowering, "MIN_TUNED_FLOPS", 0)
    monkeypatch.setattr(conv_lowering, "choose", _choose_direct)
    with conv_lowering.conv_lowering("auto"):
        grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
        hlo = grad.lower(x, kernel).as_text()
        got = grad(x, kernel)
    assert hlo.count("conv1dx_kernel_gradient_direct") >= 1 and "conv1dx_onednn" not in hlo
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@needs_direct
def test_vmap_over_replicas():
    x, dy, pads = _operands((3, 20, 4, 5, 3), 1, 1, "same")
    got = jax.vmap(lambda a, g: onednn.kernel_gradient_direct(a, g, 3, 1, pads, 1))(np.stack([x, 2 * x]),
                                                                                     np.stack([dy, dy]))
    np.testing.assert_allclose(got[1], 2 * reference.conv1d_kernel_gradient(x, dy, 3, padding="same"),
                               rtol=1e-4, atol=1e-4)


@needs_direct
@pytest.mark.slow
def test_no_read_outside_x_or_dy(tmp_path):
    """The loops (not the XLA handler around them) on x and dy placed against unreadable pages, 2,000
    random geometries (strides to 7, dilations to 3, padding to 40, K C to 330, batches of several cache
    blocks, 1-4 threads): a load that should have been masked kills the harness with SIGSEGV (an unmasked
    load of a partial tile does), and every sum is checked against a float64 reference."""
    run_guarded_harness(tmp_path, "kernel_gradient_guarded.cc", seed=7, count=2000)
