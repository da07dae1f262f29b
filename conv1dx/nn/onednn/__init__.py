"""oneDNN's 1D convolution passes, called from compiled JAX code through `jax.ffi` (CPU only).

`forward`, `input_gradient` and `kernel_gradient` compute the three passes of conv1dx's channels-last,
single-group, float32 convolution (`conv_ops.conv1d`'s definition) with oneDNN's kernels, which are
faster than XLA's CPU convolutions on the conv-heavy seed models (experiments/conv_lowering).
`blocked=True` lets oneDNN reorder the operands into its own blocked layouts inside the call.

The same library holds plain C++ handlers: conv1dx's own AVX-512 loops (where `direct_available()`) for the
kernel gradient (`kernel_gradient_direct`, `kernel_gradient.cc`) and, with stride 1, the forward pass and the
input gradient (`forward_direct`, `input_gradient_direct`: one correlation, `correlate.cc`); and for
`conv1dx.nn.embedding_conv` `embedding_taps_sum` and `embedding_taps_scatter` (its gathers and scatter-adds),
all on XLA's threads.

`available()` builds and registers the handlers on first use (`library.build`); it is False, with the reason
logged once, when oneDNN, a compiler or the build is missing, and conv_ops then uses
XLA's convolution.
"""

from __future__ import annotations

import ctypes
import functools
import logging

import jax
import jax.numpy as jnp
import numpy as np

from conv1dx.nn.onednn import library
from conv1dx.nn.onednn.library import OnednnUnavailable

__all__ = ["OnednnUnavailable", "available", "build_id", "correlate_direct", "direct_available",
           "embedding_taps_scatter", "embedding_taps_sum", "forward", "forward_direct", "input_gradient",
           "input_gradient_direct", "kernel_gradient", "kernel_gradient_direct", "load", "version"]

_log = logging.getLogger(__name__)
_TARGETS = {
    "conv1dx_onednn_forward": "Conv1dxOnednnForward",
    "conv1dx_onednn_input_gradient": "Conv1dxOnednnInputGradient",
    "conv1dx_onednn_kernel_gradient": "Conv1dxOnednnKernelGradient",
    "conv1dx_embedding_taps_sum": "Conv1dxEmbeddingTapsSum",
    "conv1dx_embedding_taps_scatter": "Conv1dxEmbeddingTapsScatter",
    "conv1dx_kernel_gradient_direct": "Conv1dxKernelGradientDirect",
    "conv1dx_correlate_direct": "Conv1dxCorrelateDirect",
}


@functools.cache
def load() -> ctypes.CDLL:
    """Builds (once per version) and loads the handlers, registers them as XLA FFI targets for the CPU and
    returns the loaded library.

    The handlers run oneDNN single-threaded on chunks of the batch, on XLA's own intra-op threads (no
    OpenMP team). Raises `OnednnUnavailable` when that cannot be done.
    """
    path = library.build()
    try:
        handlers = ctypes.CDLL(str(path))
    except OSError as error:
        raise OnednnUnavailable(f"cannot load {path} ({error}); delete it to rebuild.") from error
    for target, symbol in _TARGETS.items():
        jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(handlers, symbol)), platform="cpu")
    return handlers


@functools.cache
def available() -> bool:
    """Whether the oneDNN handlers are registered (building them on the first call); logs why not once."""
    try:
        load()
    except OnednnUnavailable as reason:
        _log.warning("conv1dx: oneDNN convolutions unavailable, using XLA's: %s", reason)
        return False
    return True


@functools.cache
def direct_available() -> bool:
    """Whether conv1dx's direct loops (`kernel_gradient_direct`, `correlate_direct`) can run here: the handlers
    are built and the CPU has AVX-512F."""
    return available() and bool(load().conv1dx_kernel_gradient_direct_supported())


@functools.cache
def version() -> str:
    """The version of the oneDNN the handlers are built against ("unavailable" when they are not)."""
    return library.onednn_version() if available() else "unavailable"


@functools.cache
def build_id() -> str:
    """oneDNN's version and the digest naming the built handlers, e.g. "3.2.0, handlers 177ca916103cb7df".

    The handlers' speed depends on their source as much as on oneDNN, so timings (conv_lowering's
    decisions) are kept per build: a changed handler is timed again.
    """
    if not available():
        return "unavailable"
    return f"{version()}, handlers {library.library_path().stem.rsplit('_', 1)[-1]}"


def _call(target: str, out_shape: tuple[int, ...], a: jax.Array, b: jax.Array, stride: int,
          pads: tuple[int, int], dilation: int, blocked: bool) -> jax.Array:
    if not available():
        raise OnednnUnavailable("oneDNN convolutions are unavailable (the log says why).")
    out = jax.ShapeDtypeStruct(out_shape, jnp.float32)
    return jax.ffi.ffi_call(target, out, vmap_method="sequential")(
        a, b, stride=np.int64(stride), pad_left=np.int64(pads[0]), pad_right=np.int64(pads[1]),
        dilation=np.int64(dilation), blocked=np.int64(blocked))


def forward(x_BxTxC: jax.Array, kernel_KxCxF: jax.Array, stride: int, pads: tuple[int, int], dilation: int,
            blocked: bool = False) -> jax.Array:
    """y_BxOxF[b, o, f] = sum_{k, c} x_pad[b, o * stride + k * dilation, c] * kernel[k, c, f] (float32)."""
    batch, length, _ = x_BxTxC.shape
    kernel_size, _, filters = kernel_KxCxF.shape
    out_len = (length + pads[0] + pads[1] - dilation * (kernel_size - 1) - 1) // stride + 1
    return _call("conv1dx_onednn_forward", (batch, out_len, filters), x_BxTxC, kernel_KxCxF, stride, pads,
                 dilation, blocked)


def input_gradient(dy_BxOxF: jax.Array, kernel_KxCxF: jax.Array, length: int, stride: int,
                   pads: tuple[int, int], dilation: int, blocked: bool = False) -> jax.Array:
    """dx_BxTxC: the gradient of `forward` with respect to x, given dy and the input length T."""
    return _call("conv1dx_onednn_input_gradient", (dy_BxOxF.shape[0], length, kernel_KxCxF.shape[1]),
                 dy_BxOxF, kernel_KxCxF, stride, pads, dilation, blocked)


def kernel_gradient(x_BxTxC: jax.Array, dy_BxOxF: jax.Array, kernel_size: int, stride: int,
                    pads: tuple[int, int], dilation: int, blocked: bool = False) -> jax.Array:
    """dkernel_KxCxF: the gradient of `forward` with respect to the kernel."""
    return _call("conv1dx_onednn_kernel_gradient", (kernel_size, x_BxTxC.shape[2], dy_BxOxF.shape[2]),
                 x_BxTxC, dy_BxOxF, stride, pads, dilation, blocked)


def kernel_gradient_direct(x_BxTxC: jax.Array, dy_BxOxF: jax.Array, kernel_size: int, stride: int,
                           pads: tuple[int, int], dilation: int) -> jax.Array:
    """dkernel_KxCxF, as `kernel_gradient`, from conv1dx's own loops over x and dy (`kernel_gradient.cc`).

    Each element is summed by one thread in a fixed order: the same bits on every call, whatever the
    size of XLA's thread pool."""
    if not direct_available():
        raise OnednnUnavailable("conv1dx's direct kernel gradient needs its C++ handlers and a CPU with AVX-512F.")
    out = jax.ShapeDtypeStruct((kernel_size, x_BxTxC.shape[2], dy_BxOxF.shape[2]), jnp.float32)
    return jax.ffi.ffi_call("conv1dx_kernel_gradient_direct", out, vmap_method="sequential")(
        x_BxTxC, dy_BxOxF, stride=np.int64(stride), pad_left=np.int64(pads[0]), pad_right=np.int64(pads[1]),
        dilation=np.int64(dilation))


def correlate_direct(src_BxSxI: jax.Array, weights_KxIxN: jax.Array, out_len: int, lead: int,
                     dilation: int) -> jax.Array:
    """out_BxTxN[b, t, n] = sum_{k, i} src[b, t - lead + k * dilation, i] * weights[k, i, n] for t < out_len,
    src rows outside [0, S) read as zeros (float32), from conv1dx's own loops (`correlate.cc`).

    Each element is summed by one thread in a fixed order: the same bits whatever the pool size."""
    if not direct_available():
        raise OnednnUnavailable("conv1dx's direct loops need their C++ handlers and a CPU with AVX-512F.")
    out = jax.ShapeDtypeStruct((src_BxSxI.shape[0], out_len, weights_KxIxN.shape[2]), jnp.float32)
    return jax.ffi.ffi_call("conv1dx_correlate_direct", out, vmap_method="sequential")(
        src_BxSxI, weights_KxIxN, lead=np.int64(lead), dilation=np.int64(dilation))


def forward_direct(x_BxTxC: jax.Array, kernel_KxCxF: jax.Array, pads: tuple[int, int], dilation: int) -> jax.Array:
    """y_BxOxF, as `forward` with stride 1, from `correlate_direct` (lead = pad_left)."""
    kernel_size = kernel_KxCxF.shape[0]
    out_len = x_BxTxC.shape[1] + pads[0] + pads[1] - dilation * (kernel_size - 1)
    if out_len < 0:
        raise ValueError(f"forward_direct: the kernel's span {dilation * (kernel_size - 1) + 1} is longer than the "
                         f"padded input ({x_BxTxC.shape[1]} + {pads[0]} + {pads[1]}).")
    return correlate_direct(x_BxTxC, kernel_KxCxF, out_len, pads[0], dilation)


def input_gradient_direct(dy_BxOxF: jax.Array, kernel_KxCxF: jax.Array, length: int, pads: tuple[int, int],
                          dilation: int) -> jax.Array:
    """dx_BxTxC, as `input_gradient` with stride 1: dx[b, t, c] = sum_{k, f} dy[b, t + pad_left - k * dilation, f]
    * kernel[k, c, f], i.e. `correlate_direct` of dy with the kernel's taps reversed and its channel axes
    swapped, lead = dilation * (K - 1) - pad_left."""
    kernel_size = kernel_KxCxF.shape[0]
    out_len = max(length + pads[0] + pads[1] - dilation * (kernel_size - 1), 0)
    if dy_BxOxF.shape[1] != out_len:
        raise ValueError(f"input_gradient_direct: dy has {dy_BxOxF.shape[1]} steps, but an input of {length} steps "
                         f"padded by {pads} with this kernel gives {out_len}.")
    flipped_KxFxC = jnp.flip(kernel_KxCxF, axis=0).transpose(0, 2, 1)
    return correlate_direct(dy_BxOxF, flipped_KxFxC, length, dilation * (kernel_size - 1) - pads[0], dilation)


def embedding_taps_sum(projected_KxRxF: jax.Array, rows_KxBxO: jax.Array) -> jax.Array:
    """y_BxOxF[b, o] = sum_k projected[k, rows[k, b, o]] (float32; int32 rows, each in [0, R))."""
    if not available():
        raise OnednnUnavailable("conv1dx's C++ handlers are unavailable (the log says why).")
    _, batch, out_len = rows_KxBxO.shape
    out = jax.ShapeDtypeStruct((batch, out_len, projected_KxRxF.shape[2]), jnp.float32)
    return jax.ffi.ffi_call("conv1dx_embedding_taps_sum", out, vmap_method="sequential")(
        projected_KxRxF, rows_KxBxO)


def embedding_taps_scatter(dy_BxOxF: jax.Array, rows_KxBxO: jax.Array, num_rows: int) -> jax.Array:
    """d_projected_KxRxF[k, r] = the sum of dy[b, o] over the (b, o) with rows[k, b, o] == r (R = num_rows)."""
    if not available():
        raise OnednnUnavailable("conv1dx's C++ handlers are unavailable (the log says why).")
    out = jax.ShapeDtypeStruct((rows_KxBxO.shape[0], num_rows, dy_BxOxF.shape[2]), jnp.float32)
    return jax.ffi.ffi_call("conv1dx_embedding_taps_scatter", out, vmap_method="sequential")(dy_BxOxF, rows_KxBxO)
