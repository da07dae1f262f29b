"""Does oneDNN's convolution keep its speed when JAX calls it from compiled code (`jax.ffi`)?

Loads the handler built by run_ffi.sh, registers it as an XLA FFI target, and times the forward
pass of the seed models' largest convolutions inside `jax.jit` and inside a 4-step `lax.scan` (as a
training epoch calls it) against conv1dx's XLA convolution, checking that both give the same
output. Median of 9 calls.

    bash experiments/conv_lowering/onednn_probe/run_ffi.sh
"""

from __future__ import annotations

import ctypes
import sys

import jax
import jax.numpy as jnp

from conv1dx.nn import conv_ops
from experiments.conv_lowering.ceiling import seconds

SHAPES = [(128, 500, 128, 32, 7), (400, 71, 100, 100, 10), (400, 20, 100, 160, 10)]  # B, T, C, F, K


def onednn_forward(x_BxTxC, kernel_KxCxF):
    """`y_BxOxF` from the FFI target: the valid, stride-1 convolution."""
    batch, length, _ = x_BxTxC.shape
    kernel_size, _, filters = kernel_KxCxF.shape
    out = jax.ShapeDtypeStruct((batch, length - kernel_size + 1, filters), jnp.float32)
    return jax.ffi.ffi_call("onednn_conv1d_forward", out)(x_BxTxC, kernel_KxCxF)


def xla_forward(x_BxTxC, kernel_KxCxF):
    return conv_ops._conv1d_xla(x_BxTxC, kernel_KxCxF, 1, (0, 0), 1, 1)


def in_scan(forward):
    """A jitted 4-step scan over stacked inputs, each step one forward convolution."""
    def run(xs, kernel):
        return jax.lax.scan(lambda total, x: (total + jnp.sum(forward(x, kernel)), None), 0.0, xs)[0]
    return jax.jit(run)


def main(library: str) -> None:
    handler = ctypes.cdll.LoadLibrary(library).OnednnConv1dForward
    jax.ffi.register_ffi_target("onednn_conv1d_forward", jax.ffi.pycapsule(handler), platform="cpu")
    print("| B, T, C, F, K | max abs difference | oneDNN ms | XLA ms | 4-step scan: oneDNN ms | XLA ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for batch, length, channels, filters, kernel_size in SHAPES:
        x = jax.random.normal(jax.random.key(0), (batch, length, channels))
        kernel = jax.random.normal(jax.random.key(1), (kernel_size, channels, filters)) * 0.1
        ours, theirs = jax.jit(onednn_forward), jax.jit(xla_forward)
        difference = float(jnp.max(jnp.abs(ours(x, kernel) - theirs(x, kernel))))
        xs = jnp.stack([x] * 4)
        print(f"| {batch}, {length}, {channels}, {filters}, {kernel_size} | {difference:.1e} "
              f"| {1e3 * seconds(ours, (x, kernel), 9):.2f} | {1e3 * seconds(theirs, (x, kernel), 9):.2f} "
              f"| {1e3 * seconds(in_scan(onednn_forward), (xs, kernel), 9):.2f} "
              f"| {1e3 * seconds(in_scan(xla_forward), (xs, kernel), 9):.2f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
