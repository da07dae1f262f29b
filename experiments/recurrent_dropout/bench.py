"""What does recurrent dropout cost the Jena conv-GRU's training speed?

Keras 3 gives each GRU gate its own recurrent dropout mask, so a GRU with `recurrent_dropout > 0`
does one recurrent matmul per gate and step instead of one for all gates. This study trains the
seed model's real compiled epoch (experiments/throughput's runner: the epoch `conv1dx.train.train`
runs, on random data of the seed shapes) with `recurrent_dropout` 0.5 (the seed config) and 0, for
`reset_after` False (the seed config) and True, all built in one process and timed in interleaved
rounds; it reports examples/second (best and median) and the cost of recurrent dropout.

    python -m experiments.recurrent_dropout.bench --rounds 9
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from experiments.throughput import report

GRU_LAYER = 3  # the GRU's index in conf/model/jena_conv_gru.yaml's layers
VARIANTS = {
    (reset_after, rate): [f"model.recurrent_dropout={rate}",
                          f"model.layers.{GRU_LAYER}.reset_after={str(reset_after).lower()}"]
    for reset_after in (False, True) for rate in (0.5, 0.0)
}


def measure(rounds: int, steps: int, epochs: int) -> dict[tuple[bool, float], list[float]]:
    """examples/s per (reset_after, recurrent_dropout) and round (rounds interleaved)."""
    from experiments.throughput.conv1dx_runner import Conv1dxRunner, interleaved_rates

    runners = {}
    for variant, overrides in VARIANTS.items():
        runners[variant] = Conv1dxRunner({"experiment": "jena_conv_gru", "overrides": overrides,
                                          "steps": steps})
        runners[variant].run(1)  # traces and compiles
    return interleaved_rates(runners, rounds, epochs)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20, help="batches per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per timed block")
    args = parser.parse_args(argv)
    command = (f"python -m experiments.recurrent_dropout.bench --rounds {args.rounds} "
               f"--steps {args.steps} --epochs {args.epochs}")
    print(report.context_line(report.run_context(command, Path(__file__).resolve().parents[2])))
    rates = measure(args.rounds, args.steps, args.epochs)
    print("\n| reset_after | recurrent_dropout | examples/s best | median | cost of recurrent dropout "
          "(medians) |\n|---|---:|---:|---:|---:|")
    for (reset_after, rate), values in rates.items():
        median = statistics.median(values)
        without = statistics.median(rates[(reset_after, 0.0)])
        cost = f"{100 * (1 - median / without):.0f}%" if rate > 0 else "—"
        print(f"| {reset_after} | {rate} | {max(values):,.0f} | {median:,.0f} | {cost} |")
    print(f"\nload average {report.load_average()} at end")


if __name__ == "__main__":
    main()
