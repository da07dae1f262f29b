"""Which lowering of Conv1D trains fastest on this machine, for the convolutions of the seed models?

Times one training step (forward, input and kernel gradients, SGD update) of a single Conv1D + ReLU, run 8 times
inside a jitted `lax.scan` exactly as conv1dx's compiled epoch runs it, for:
  xla      - XLA's convolution, backward passes written as forward convolutions (conv_ops.conv1d)
  patches  - explicit patches times kernel matmul (conv_ops.conv1d_patches)
  autodiff - XLA's convolution with JAX's own transpose rules (the JAX #12868 trap inside scan)
Rounds are interleaved; the table gives the median milliseconds per step.

    python experiments/conv_lowering/bench.py [--rounds 5] [--skip-autodiff]
"""

import argparse
import json
import platform
import statistics
import subprocess
import time

import jax
import jax.numpy as jnp
from jax import lax

from conv1dx.nn import conv_lowering, conv_ops

# (model, layer, batch, steps, in channels, filters, kernel)
SHAPES = [
    ("imdb", "conv1d", 128, 500, 128, 32, 7),
    ("imdb", "conv1d_1", 128, 98, 32, 32, 7),
    ("har", "conv1d", 32, 128, 9, 64, 3),
    ("har", "conv1d_1", 32, 126, 64, 64, 3),
    ("wisdm", "conv1d", 400, 80, 3, 100, 10),
    ("wisdm", "conv1d_1", 400, 71, 100, 100, 10),
    ("wisdm", "conv1d_2", 400, 20, 100, 160, 10),
    ("wisdm", "conv1d_3", 400, 11, 160, 160, 10),  # output of 2 steps: the short-output input gradient
    ("jena", "conv1d", 128, 240, 14, 32, 5),
    ("jena", "conv1d_1", 128, 78, 32, 32, 5),
]


def _autodiff(x, kernel):
    return lax.conv_general_dilated(x, kernel, (1,), ((0, 0),), dimension_numbers=("NWC", "WIO", "NWC"))


def _xla(x, kernel):
    with conv_lowering.conv_lowering("xla"):  # this study compares XLA lowerings; oneDNN has its own
        return conv_ops.conv1d(x, kernel)


IMPLEMENTATIONS = {
    "xla": _xla,
    "patches": lambda x, kernel: conv_ops.conv1d_patches(x, kernel),
    "autodiff": _autodiff,
}


def make_epoch(conv, steps):
    def loss(kernel, x):
        return jnp.sum(jax.nn.relu(conv(x, kernel)) ** 2) * 1e-6

    def body(kernel, x):
        grad_kernel, grad_x = jax.grad(loss, argnums=(0, 1))(kernel, x)  # both, as inside a network
        return kernel - 1e-3 * grad_kernel, jnp.sum(grad_x)

    return jax.jit(lambda kernel, xs: lax.scan(body, kernel, xs)[0]), steps


def time_epoch(fn, kernel, xs) -> float:
    fn(kernel, xs).block_until_ready()
    began = time.perf_counter()
    fn(kernel, xs).block_until_ready()
    return (time.perf_counter() - began) / xs.shape[0] * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--skip-autodiff", action="store_true")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    names = [n for n in IMPLEMENTATIONS if not (args.skip_autodiff and n == "autodiff")]
    rows = []
    for model, layer, batch, length, channels, filters, k in SHAPES:
        key = jax.random.key(0)
        xs = jax.random.normal(key, (args.steps, batch, length, channels))
        kernel = jax.random.normal(key, (k, channels, filters)) * 0.1
        fns = {name: make_epoch(IMPLEMENTATIONS[name], args.steps)[0] for name in names}
        times = {name: [] for name in names}
        for _ in range(args.rounds):
            for name in names:
                times[name].append(time_epoch(fns[name], kernel, xs))
        medians = {name: statistics.median(v) for name, v in times.items()}
        rows.append({"model": model, "layer": layer, "shape": [batch, length, channels, filters, k],
                     **{f"{n}_ms": round(m, 3) for n, m in medians.items()},
                     "fastest": min(medians, key=medians.get)})
        print(json.dumps(rows[-1]), flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    header = "| model | layer | B, T, C, F, K | " + " | ".join(f"{n} ms/step" for n in names) + " | fastest |"
    lines = [header, "|" + "---|" * (len(names) + 4)]
    for row in rows:
        cells = " | ".join(f"{row[f'{n}_ms']:.2f}" for n in names)
        lines.append(f"| {row['model']} | {row['layer']} | {', '.join(map(str, row['shape']))} | {cells} | "
                     f"{row['fastest']} |")
    print("\n".join(lines))
    print(f"\nmachine: {platform.processor() or platform.machine()}, {jax.device_count()} device(s) "
          f"{jax.devices()[0].device_kind}; jax {jax.__version__}; commit {commit}; "
          f"rounds {args.rounds} x {args.steps} scanned steps")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
