"""Does computing IMDB's first convolution from the embedding table pay, and up to which vocabulary?

    python -m experiments.embedding_conv.bench
    python -m experiments.embedding_conv.bench --vocabularies 1000,10000 --rounds 2 --steps 2   # quick

Two measurements, printed as Markdown tables:

1. The Embedding + Conv1D pair alone at IMDB's shapes (batch 128, 500 steps, 128 dimensions,
   32 filters, kernel 7) for each vocabulary size: one forward and backward pass (the table's and the
   kernel's gradients for a random output gradient), unfused (the layers as written: lookup, then the
   convolution as `trainer.conv_lowering=auto` lowers it) and fused (`conv1dx.nn.embedding_conv`),
   timed by the same function that makes the library's decision (`conv_lowering.time_candidates`:
   best of 5 compiled loops of 4 calls, the two interleaved). The FLOP share is fused / unfused
   multiply-adds (V / (B x O)); `trainer.embedding_conv_fusion=auto` times only pairs where it is at
   most `embedding_conv.MAX_FLOP_SHARE`.
2. The whole IMDB training epoch (`conv1dx.train`'s compiled epoch on random data of IMDB's shape,
   through experiments/throughput's runner) with `trainer.embedding_conv_fusion=off` and `on`:
   `--rounds` interleaved blocks of 2 epochs of `--steps` batches, alternating which goes first;
   median examples/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time

IMDB = dict(batch=128, length=500, dim=128, filters=32, kernel_size=7)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m experiments.embedding_conv.bench",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocabularies", default="1000,10000,20000,32000,64000,128000",
                        help="comma-separated vocabulary sizes for the layer pair")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved epoch blocks per setting")
    parser.add_argument("--steps", type=int, default=10, help="batches per epoch")
    args = parser.parse_args(argv)
    args.vocabularies = [int(v) for v in args.vocabularies.split(",")]
    if args.rounds < 1 or args.steps < 1 or min(args.vocabularies) < 1:
        parser.error("--rounds, --steps and every vocabulary must be >= 1.")
    return args


def pair_timings(vocabulary: int) -> dict:
    """ms per forward+backward of the pair, unfused and fused, at IMDB's shapes with `vocabulary` words."""
    import jax
    import jax.numpy as jnp

    from conv1dx.nn import conv_lowering, embedding_conv

    b, t, d, f, k = (IMDB[name] for name in ("batch", "length", "dim", "filters", "kernel_size"))
    out_len = t - k + 1

    def trained(function):
        def run(table, kernel, noise, dy):
            ids = (jnp.abs(noise) * 7919).astype(jnp.int32) % vocabulary
            y, backward = jax.vjp(lambda tb, kn: function(tb, ids, kn), table, kernel)
            d_table, d_kernel = backward(dy)
            return jnp.sum(y) + jnp.sum(d_table) + jnp.sum(d_kernel)
        return run

    operands = [jax.ShapeDtypeStruct((vocabulary, d), jnp.float32), jax.ShapeDtypeStruct((k, d, f), jnp.float32),
                jax.ShapeDtypeStruct((b, t), jnp.float32), jax.ShapeDtypeStruct((b, out_len, f), jnp.float32)]
    seconds = conv_lowering.time_candidates(
        {"unfused": trained(embedding_conv.unfused_embedding_conv1d),
         "fused": trained(embedding_conv.embedding_conv1d)}, operands)
    return {"vocabulary": vocabulary, "flop_share": vocabulary / (b * out_len),
            "unfused_ms": 1e3 * seconds["unfused"], "fused_ms": 1e3 * seconds["fused"]}


def epoch_rates(rounds: int, steps: int) -> dict[str, list[float]]:
    """examples/s per round of IMDB's training epoch with the fusion off and on."""
    from conv1dx.nn import embedding_conv
    from experiments.throughput.conv1dx_runner import Conv1dxRunner, interleaved_rates

    runners = {}
    for mode in ("off", "on"):
        with embedding_conv.embedding_conv_fusion(mode):
            runners[mode] = Conv1dxRunner({"experiment": "imdb", "steps": steps,
                                           "overrides": [f"trainer.embedding_conv_fusion={mode}"]})
            runners[mode].run(1)  # compile
    return interleaved_rates(runners, rounds, epochs=2, alternate=True)


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None) -> None:
    args = parse_args(argv)
    import jax

    from conv1dx.nn import conv_lowering, onednn

    began = time.perf_counter()
    machine = conv_lowering.machine_fingerprint(onednn.build_id())
    print(f"Commit {_commit()}; {machine}; backend {jax.default_backend()}; load average at start "
          f"{os.getloadavg()[0]:.2f}\n")
    print(f"The pair at IMDB's shapes ({', '.join(f'{k} {v}' for k, v in IMDB.items())}), one forward and "
          "backward pass:\n")
    print("| vocabulary | fused ÷ unfused FLOPs | unfused ms | fused ms | unfused ÷ fused |")
    print("|---:|---:|---:|---:|---:|")
    for vocabulary in args.vocabularies:
        row = pair_timings(vocabulary)
        print(f"| {vocabulary:,} | {row['flop_share']:.2f} | {row['unfused_ms']:.2f} | {row['fused_ms']:.2f} | "
              f"{row['unfused_ms'] / row['fused_ms']:.2f} |", flush=True)
    rates = epoch_rates(args.rounds, args.steps)
    off, on = statistics.median(rates["off"]), statistics.median(rates["on"])
    print(f"\nIMDB training epoch ({args.steps} batches of 128), median of {args.rounds} interleaved rounds:\n")
    print("| embedding_conv_fusion | examples/s (median) | min – max | ÷ off |")
    print("|---|---:|---:|---:|")
    for mode, median in (("off", off), ("on", on)):
        print(f"| {mode} | {median:,.0f} | {min(rates[mode]):,.0f} – {max(rates[mode]):,.0f} | {median / off:.2f} |")
    print(f"\nLoad average at end {os.getloadavg()[0]:.2f}; {time.perf_counter() - began:.0f} s in all.")


if __name__ == "__main__":
    main()
