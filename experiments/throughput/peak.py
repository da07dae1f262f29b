"""The machine's float32 matmul peak, measured: best of several square products in NumPy and in JAX.

`measure_peak(n, repeats)` times `a_NxN @ b_NxN` (2 n^3 FLOPs) with NumPy (its BLAS) and with a
jitted `jnp.dot` (XLA's CPU kernels) and returns the best GFLOP/s of each and their maximum, the
reference that achieved GFLOP/s are divided by. It runs in a benchmark worker once per round, so it
sees the same machine load as the training measurements of that round.
"""

from __future__ import annotations

import time

import numpy as np


def _best_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: first-touch of the output, thread pool start, compilation
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - began)
    return best


def measure_peak(n: int = 2048, repeats: int = 5) -> dict:
    """Best of `repeats` n x n float32 matmuls: {numpy_gflops, jax_gflops, peak_gflops, n}."""
    if n < 1 or repeats < 1:
        raise ValueError(f"measure_peak needs n >= 1 and repeats >= 1, got n={n}, "
                         f"repeats={repeats}.")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    flop = 2.0 * n ** 3
    numpy_gflops = flop / _best_seconds(lambda: a @ b, repeats) / 1e9

    import jax
    import jax.numpy as jnp

    a_dev, b_dev = jax.device_put(a), jax.device_put(b)
    dot = jax.jit(jnp.dot)
    jax_gflops = flop / _best_seconds(lambda: dot(a_dev, b_dev).block_until_ready(), repeats) / 1e9
    return {"numpy_gflops": numpy_gflops, "jax_gflops": jax_gflops,
            "peak_gflops": max(numpy_gflops, jax_gflops), "n": n}
