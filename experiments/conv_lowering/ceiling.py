"""How close to the matmul peak can a training step of the conv-heavy seed models get on this CPU?

A training step of IMDB's or WISDM's convnet is mostly its convolutions' passes: forward, input
gradient (not for a first layer fed by raw data) and kernel gradient, each run by XLA's CPU
convolution (Eigen) in the form conv1dx uses (`conv_ops`). This study times each pass on its own,
outside the training step, and reports:

* per pass: milliseconds, GFLOP/s and % of the float32 matmul peak measured in the same run, next to
  one XLA matmul of the same FLOPs (the patches-times-kernel GEMM, with its patch matrix built for
  free: the most a patches lowering could do through XLA);
* per model: the sum of its convolution passes, and the % of peak the whole training step would
  reach if everything else in it (embedding, pooling, activations, loss, optimizer) took no time,
  with the FLOP count of experiments/throughput (so comparable with that study's % of peak);
* with `--blocked`, forward and kernel gradient also as patches GEMMs built per block of a few
  examples inside a loop (a patch matrix small enough to stay in cache), fastest block size shown.

    python -m experiments.conv_lowering.ceiling --rounds 3 --blocked 2,4,8
    python -m experiments.conv_lowering.ceiling --models wisdm --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from conv1dx.nn import conv_ops
from experiments.conv_lowering.bench import SHAPES
from experiments.throughput import report
from experiments.throughput.peak import measure_peak

MODELS = ("imdb", "wisdm")
# The first convolution of each model whose input needs no gradient (WISDM's reads the raw signals;
# IMDB's reads the embedding, whose table is trained, so its input gradient is computed).
NO_INPUT_GRADIENT = {("wisdm", "conv1d")}


def operands(batch, length, channels, filters, kernel_size):
    """Random `x_BxTxC`, `kernel_KxCxF` and `dy_BxOxF` of a valid, stride-1 Conv1D."""
    keys = jax.random.split(jax.random.key(0), 3)
    out_len = length - kernel_size + 1
    return (jax.random.normal(keys[0], (batch, length, channels)),
            jax.random.normal(keys[1], (kernel_size, channels, filters)) * 0.1,
            jax.random.normal(keys[2], (batch, out_len, filters)))


def conv_passes(batch, length, channels, filters, kernel_size, input_gradient: bool):
    """{pass name: (jitted function, args, FLOPs, same-FLOP GEMM (m, k, n))} of a valid, stride-1
    Conv1D `x (B, T, C) -> y (B, O, F)` with a `(K, C, F)` kernel, as conv_ops computes them."""
    x, kernel, dy = operands(batch, length, channels, filters, kernel_size)
    out_len = length - kernel_size + 1
    flop = 2 * batch * out_len * channels * filters * kernel_size
    rows, taps = batch * out_len, kernel_size * channels
    passes = {"forward": (jax.jit(lambda x, w: conv_ops._conv1d_xla(x, w, 1, (0, 0), 1, 1)),
                          (x, kernel), flop, (rows, taps, filters))}
    if input_gradient:
        passes["input gradient"] = (
            jax.jit(lambda dy, w: conv_ops._input_gradient(dy, w, length, 1, (0, 0), 1, 1)),
            (dy, kernel), flop, (rows, filters, taps))
    passes["kernel gradient"] = (
        jax.jit(lambda dy, x: conv_ops._kernel_gradient(dy, x, kernel_size, 1, (0, 0), 1, 1)),
        (dy, x), flop, (taps, rows, filters))
    return passes


def _patches(x_BxTxC, kernel_size: int, out_len: int):
    """`(B * O, K * C)` patch matrix of a valid, stride-1 convolution."""
    batch, _, channels = x_BxTxC.shape
    taps = [x_BxTxC[:, k:k + out_len] for k in range(kernel_size)]
    return jnp.concatenate(taps, axis=2).reshape(batch * out_len, kernel_size * channels)


def blocked_passes(batch, length, channels, filters, kernel_size, block: int):
    """Forward and kernel gradient as patches-times-kernel GEMMs over blocks of `block` examples
    (a loop, so each block's patch matrix can stay in cache): {pass name: (jitted fn, args)}."""
    x, kernel, dy = operands(batch, length, channels, filters, kernel_size)
    out_len = length - kernel_size + 1
    blocks = batch // block

    def forward(x, kernel):
        def one(x_block):
            y = _patches(x_block, kernel_size, out_len) @ kernel.reshape(-1, filters)
            return y.reshape(block, out_len, filters)
        return jax.lax.map(one, x.reshape(blocks, block, length, channels)).reshape(
            batch, out_len, filters)

    def kernel_gradient(dy, x):
        def add(total, xd):
            x_block, dy_block = xd
            return total + _patches(x_block, kernel_size, out_len).T @ dy_block, None
        total, _ = jax.lax.scan(add, jnp.zeros((kernel_size * channels, filters)),
                                (x.reshape(blocks, block, length, channels),
                                 dy.reshape(blocks, block * out_len, filters)))
        return total.reshape(kernel_size, channels, filters)

    return {"forward": (jax.jit(forward), (x, kernel)),
            "kernel gradient": (jax.jit(kernel_gradient), (dy, x))}


def gemm(m: int, k: int, n: int):
    """A jitted `(m, k) @ (k, n)` float32 matmul and its operands."""
    a = jax.random.normal(jax.random.key(1), (m, k))
    b = jax.random.normal(jax.random.key(2), (k, n))
    return jax.jit(jnp.dot), (a, b)


def seconds(fn, args, repeats: int) -> float:
    """Median wall time of `repeats` calls (after two warm-up calls)."""
    for _ in range(2):
        jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def training_flops_per_step(model: str) -> tuple[float, int]:
    """(analytic training FLOPs of one batch, batch size), as experiments/throughput counts them."""
    from experiments.throughput.workload import describe

    workload = describe(model, steps=1)
    return float(workload["flops_per_example"] * workload["batch_size"]), workload["batch_size"]


def measure(models, rounds: int, repeats: int,
            blocks: tuple[int, ...] = ()) -> tuple[list[dict], float]:
    """Per-pass rows (median over rounds of the per-round medians) and the best peak GFLOP/s.

    With `blocks`, forward and kernel-gradient passes are also timed as blocked patches GEMMs
    (`blocked_passes`) for each block size that divides the batch: `blocked_ms` (the fastest size's
    median) and `blocked_block` (that size).
    """
    cases = []
    for model, layer, batch, length, channels, filters, kernel_size in SHAPES:
        if model not in models:
            continue
        grad_in = (model, layer) not in NO_INPUT_GRADIENT
        shape = (batch, length, channels, filters, kernel_size)
        blocked = {block: blocked_passes(*shape, block) for block in blocks if batch % block == 0}
        for name, (fn, args, flop, gemm_shape) in conv_passes(*shape, grad_in).items():
            timed = {"conv": (fn, args), "gemm": gemm(*gemm_shape)}
            timed |= {block: passes[name] for block, passes in blocked.items() if name in passes}
            cases.append({"model": model, "layer": layer, "pass": name, "flop": flop,
                          "shape": shape, "gemm_shape": gemm_shape, "timed": timed,
                          "ms": {label: [] for label in timed}})
    peaks = []
    for _ in range(rounds):
        peaks.append(measure_peak()["peak_gflops"])
        for case in cases:
            for label, (fn, args) in case["timed"].items():
                case["ms"][label].append(seconds(fn, args, repeats) * 1e3)
    rows = []
    for case in cases:
        ms = {label: statistics.median(values) for label, values in case["ms"].items()}
        row = {key: case[key] for key in ("model", "layer", "pass", "flop", "shape", "gemm_shape")}
        row |= {"ms": ms.pop("conv"), "gemm_ms": ms.pop("gemm")}
        if ms:
            row["blocked_block"] = min(ms, key=ms.get)
            row["blocked_ms"] = ms[row["blocked_block"]]
        rows.append(row)
    return rows, max(peaks)


def markdown(rows: list[dict], peak: float, models) -> str:
    pct = lambda flop, ms: 100 * flop / (ms * 1e-3) / 1e9 / peak  # noqa: E731
    blocked = any("blocked_ms" in row for row in rows)
    lines = [f"Matmul peak (best round, n = 2048): {peak:.1f} GFLOP/s", "",
             "| model | layer (B, T, C, F, K) | pass | ms | GFLOP/s | % of peak "
             "| same-FLOP XLA GEMM (m, k, n) | GEMM % of peak |"
             + (" blocked patches ms (examples per block) |" if blocked else ""),
             "|---|---|---|---:|---:|---:|---|---:|" + ("---:|" if blocked else "")]
    for row in rows:
        gflops = row["flop"] / (row["ms"] * 1e-3) / 1e9
        line = (f"| {row['model']} | {row['layer']} {row['shape']} | {row['pass']} "
                f"| {row['ms']:.2f} | {gflops:.0f} | {pct(row['flop'], row['ms']):.0f}% "
                f"| {row['gemm_shape']} | {pct(row['flop'], row['gemm_ms']):.0f}% |")
        if blocked:
            line += (f" {row['blocked_ms']:.2f} ({row['blocked_block']}) |" if "blocked_ms" in row
                     else " — |")
        lines.append(line)
    lines += ["", "If nothing but the convolution passes took time, the training step would reach "
              "(% of peak):", "",
              "| model | batch | training GFLOP per step | convolution passes, ms | with XLA's "
              "convolutions | with free-patch GEMMs | with the faster of the two per pass |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for model in models:
        flop, batch = training_flops_per_step(model)
        mine = [row for row in rows if row["model"] == model]
        conv_ms = sum(row["ms"] for row in mine)
        gemm_ms = sum(row["gemm_ms"] for row in mine)
        best_ms = sum(min(row["ms"], row["gemm_ms"]) for row in mine)
        lines.append(f"| {model} | {batch} | {flop / 1e9:.2f} | {conv_ms:.1f} "
                     f"| {pct(flop, conv_ms):.0f}% | {pct(flop, gemm_ms):.0f}% "
                     f"| {pct(flop, best_ms):.0f}% |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per pass and round")
    parser.add_argument("--blocked", default="", metavar="SIZES",
                        help="also time forward and kernel gradient as patches GEMMs over blocks "
                             "of these many examples, e.g. 1,2,4 (default: not timed)")
    args = parser.parse_args(argv)
    blocks = tuple(int(size) for size in args.blocked.split(",") if size)
    models = tuple(args.models.split(","))
    unknown = sorted(set(models) - {shape[0] for shape in SHAPES})
    if unknown:
        parser.error(f"no convolution shapes for {unknown}; experiments/conv_lowering/bench.py's "
                     "SHAPES lists the seed models'.")
    command = (f"python -m experiments.conv_lowering.ceiling --models {args.models} "
               f"--rounds {args.rounds} --repeats {args.repeats}"
               + (f" --blocked {args.blocked}" if blocks else ""))
    print(report.context_line(report.run_context(command, Path(__file__).resolve().parents[2])))
    rows, peak = measure(models, args.rounds, args.repeats, blocks)
    print(markdown(rows, peak, models))
    print(f"\nload average {report.load_average()} at end")


if __name__ == "__main__":
    main()
