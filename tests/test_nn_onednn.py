"""oneDNN's convolution passes (`conv1dx.nn.onednn`) against the NumPy references, through `conv_ops`,
and the build's errors. On Linux x86-64 oneDNN is a dependency, so there it must build; elsewhere the
tests that need it are skipped."""

import itertools
import platform
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conv1dx.nn import conv_lowering, conv_ops, onednn
from conv1dx.nn.onednn import library
from tests import reference
from tests.thread_pool_checks import run_with_threads

SUPPORTED = sys.platform == "linux" and platform.machine() == "x86_64"
needs_onednn = pytest.mark.skipif(not SUPPORTED, reason="conv1dx installs oneDNN on Linux x86-64 only")

# B, T, C, F, K; a call splits the batch across XLA's threads (uneven chunks: 3 or 7 rows over 2 threads;
# other thread counts: test_chunking_over_other_thread_counts)
SHAPES = [(2, 17, 3, 5, 3), (3, 30, 8, 16, 5), (1, 9, 4, 2, 1), (7, 12, 6, 4, 3)]
GRID = list(itertools.product(SHAPES, [1, 2, 3], [1, 2], ["valid", "same", "causal"], [False, True]))


def _operands(batch, length, channels, filters, kernel_size, stride, dilation, padding, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, length, channels)).astype(np.float32)
    kernel = rng.normal(size=(kernel_size, channels, filters)).astype(np.float32)
    out_len = conv_ops.conv_output_length(length, kernel_size, padding, stride, dilation)
    dy = rng.normal(size=(batch, out_len, filters)).astype(np.float32)
    pads = conv_ops.padding_amounts(length, kernel_size, padding, stride, dilation)
    return x, kernel, dy, pads


@needs_onednn
def test_it_builds_here():
    assert onednn.available()
    assert onednn.version().startswith("3.")


@needs_onednn
@pytest.mark.parametrize("shape,stride,dilation,padding,blocked", GRID)
def test_passes_match_the_numpy_references(shape, stride, dilation, padding, blocked):
    batch, length, channels, filters, kernel_size = shape
    if conv_ops.conv_output_length(length, kernel_size, padding, stride, dilation) < 1:
        pytest.skip("kernel longer than the padded sequence")
    x, kernel, dy, pads = _operands(*shape, stride, dilation, padding)
    geometry = dict(stride=stride, padding=padding, dilation=dilation)
    y = jax.jit(lambda a, b: onednn.forward(a, b, stride, pads, dilation, blocked))(x, kernel)
    dx = jax.jit(lambda a, b: onednn.input_gradient(a, b, length, stride, pads, dilation, blocked))(dy, kernel)
    dk = jax.jit(lambda a, b: onednn.kernel_gradient(a, b, kernel_size, stride, pads, dilation, blocked))(x, dy)
    np.testing.assert_allclose(y, reference.conv1d(x, kernel, **geometry), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx, reference.conv1d_input_gradient(dy, kernel, length, **geometry),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dk, reference.conv1d_kernel_gradient(x, dy, kernel_size, **geometry),
                               rtol=1e-4, atol=1e-4)


@needs_onednn
@pytest.mark.parametrize("stride,dilation,padding", [(1, 1, "valid"), (2, 1, "same"), (1, 3, "causal")])
def test_conv1d_lowered_to_onednn_is_the_same_function(stride, dilation, padding):
    x, kernel, _, _ = _operands(4, 40, 6, 7, 4, stride, dilation, padding, seed=1)

    def loss(a, b):
        return jnp.sum(jnp.sin(conv_ops.conv1d(a, b, stride=stride, padding=padding, dilation=dilation)))

    with conv_lowering.conv_lowering("onednn"):
        grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
        hlo = grad.lower(x, kernel).as_text()
        value, (dx, dk) = grad(x, kernel)
    for target in ("conv1dx_onednn_forward", "conv1dx_onednn_input_gradient", "conv1dx_onednn_kernel_gradient"):
        assert target in hlo
    with conv_lowering.conv_lowering("xla"):
        hlo_xla = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(x, kernel).as_text()
        want_value, (want_dx, want_dk) = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(x, kernel)
    assert "conv1dx_onednn" not in hlo_xla
    np.testing.assert_allclose(value, want_value, rtol=1e-5)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dk, want_dk, rtol=1e-4, atol=1e-4)


@needs_onednn
def test_calls_repeat_bit_for_bit_and_run_side_by_side():
    """A call splits its batch across XLA's threads (the kernel gradient sums the chunks in a fixed order):
    the same operands give the same bits every time, and independent calls in one program, which XLA may
    run at once on the same pool, each give the reference's answer."""
    x, kernel, dy, pads = _operands(9, 50, 8, 12, 5, 1, 1, "valid", seed=2)

    @jax.jit
    def passes(a, b, g):
        return (onednn.kernel_gradient(a, g, 5, 1, pads, 1), onednn.kernel_gradient(2 * a, g, 5, 1, pads, 1),
                onednn.forward(a, b, 1, pads, 1), onednn.input_gradient(g, b, 50, 1, pads, 1))

    first, second = passes(x, kernel, dy), passes(x, kernel, dy)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    want_dk = reference.conv1d_kernel_gradient(x, dy, 5)
    np.testing.assert_allclose(first[0], want_dk, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(first[1], 2 * want_dk, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(first[2], reference.conv1d(x, kernel), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(first[3], reference.conv1d_input_gradient(dy, kernel, 50), rtol=1e-4, atol=1e-4)


_CHUNKING_SCRIPT = textwrap.dedent("""
    import numpy as np, jax
    from conv1dx.nn import conv_ops, onednn
    from tests import reference
    for batch in (1, 2, 4, 5, 9):
        for stride, dilation, padding in ((1, 1, "valid"), (2, 2, "same")):
            rng = np.random.default_rng(batch)
            x = rng.normal(size=(batch, 23, 6)).astype(np.float32)
            kernel = rng.normal(size=(3, 6, 5)).astype(np.float32)
            pads = conv_ops.padding_amounts(23, 3, padding, stride, dilation)
            out_len = conv_ops.conv_output_length(23, 3, padding, stride, dilation)
            dy = rng.normal(size=(batch, out_len, 5)).astype(np.float32)
            geometry = dict(stride=stride, padding=padding, dilation=dilation)
            for blocked in (False, True):
                got = (onednn.forward(x, kernel, stride, pads, dilation, blocked),
                       onednn.input_gradient(dy, kernel, 23, stride, pads, dilation, blocked),
                       onednn.kernel_gradient(x, dy, 3, stride, pads, dilation, blocked))
                want = (reference.conv1d(x, kernel, **geometry),
                        reference.conv1d_input_gradient(dy, kernel, 23, **geometry),
                        reference.conv1d_kernel_gradient(x, dy, 3, **geometry))
                for g, w in zip(got, want):
                    np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)
    print("checked")
""")


@needs_onednn
@pytest.mark.parametrize("threads", [3, 8])
@pytest.mark.slow
def test_chunking_over_other_thread_counts(threads):
    """XLA's pool has as many threads as `NPROC` says (else the cores): batches smaller than the pool,
    and uneven splits over 3 and 8 threads, still give the references' answers."""
    run_with_threads(_CHUNKING_SCRIPT, threads)


@needs_onednn
def test_what_onednn_does_not_cover_stays_on_xla():
    """Grouped, bfloat16 and empty convolutions are XLA's even when oneDNN is forced."""
    x = jnp.ones((2, 12, 4))
    with conv_lowering.conv_lowering("onednn"):
        grouped = jax.jit(lambda a, b: conv_ops.conv1d(a, b, groups=2)).lower(x, jnp.ones((3, 2, 6)))
        bf16 = jax.jit(conv_ops.conv1d).lower(x.astype(jnp.bfloat16), jnp.ones((3, 4, 6), jnp.bfloat16))
        empty = jax.jit(conv_ops.conv1d)(jnp.ones((0, 12, 4)), jnp.ones((3, 4, 6)))
    assert "conv1dx_onednn" not in grouped.as_text() + bf16.as_text()
    assert empty.shape == (0, 10, 6)


@needs_onednn
def test_vmap_of_a_lowered_convolution():
    x, kernel, _, _ = _operands(3, 20, 4, 5, 3, 1, 1, "valid")
    xs = np.stack([x, 2 * x])
    with conv_lowering.conv_lowering("onednn"):
        got = jax.jit(jax.vmap(lambda a: conv_ops.conv1d(a, kernel)))(xs)
    np.testing.assert_allclose(got[1], reference.conv1d(2 * x, kernel), rtol=1e-4, atol=1e-4)


def test_missing_onednn_names_the_packages(monkeypatch, tmp_path):
    monkeypatch.setenv("CONV1DX_ONEDNN_ROOT", str(tmp_path))
    with pytest.raises(library.OnednnUnavailable, match=r"pip install onednn-cpu-gomp==2023\.2\.0"):
        library.build()


@needs_onednn
def test_missing_or_failing_compiler_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("CONV1DX_ONEDNN_BUILD_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", "no-such-compiler-conv1dx")
    with pytest.raises(library.OnednnUnavailable, match="no C\\+\\+ compiler 'no-such-compiler-conv1dx'"):
        library.build()
    monkeypatch.setenv("CXX", "false")  # a "compiler" that fails
    with pytest.raises(library.OnednnUnavailable, match="building oneDNN's convolutions failed"):
        library.build()
    assert not list(tmp_path.glob("*.so"))  # nothing half-built is left to be loaded


@needs_onednn
@pytest.mark.slow
def test_the_build_is_kept_and_keyed_by_its_inputs(monkeypatch, tmp_path):
    monkeypatch.setenv("CONV1DX_ONEDNN_BUILD_DIR", str(tmp_path))
    first = library.build()
    stamp = first.stat().st_mtime_ns
    assert library.build() == first and first.stat().st_mtime_ns == stamp  # not rebuilt
    monkeypatch.setattr(library.jaxlib, "__version__", "0.0.0-another")
    assert library.library_path() != first  # another jaxlib gets its own library
