"""Which operand should the convolution kernel gradient transpose: x or dy?

`conv_ops._kernel_gradient` computes dkernel as one forward convolution that contracts over batch
and time, which needs the batch innermost in one operand: either x is transposed to (C, T, B)
(`_kernel_gradient_transposing_x`) or dy is, with the batch folded into time
(`_kernel_gradient_transposing_dy`). The library transposes the smaller one (dy when F < C).

This study trains each seed model's real compiled epoch (experiments/throughput's runner: the
epoch `conv1dx.train.train` runs, on random data of the seed shapes) three times in one process,
with the kernel gradient forced to each form and with the library's rule, and reports
examples/second per form, best and median of interleaved rounds:

    python -m experiments.conv_lowering.kernel_gradient --rounds 5
    python -m experiments.conv_lowering.kernel_gradient --models imdb,wisdm --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from conv1dx.nn import conv_ops
from experiments.throughput import report


def _forced(ungrouped):
    """A `_kernel_gradient` that always uses `ungrouped` (grouped convolutions keep theirs)."""
    def kernel_gradient(dy, x, kernel_size, stride, pads, dilation, groups):
        if groups != 1:
            return conv_ops._kernel_gradient_grouped(dy, x, kernel_size, stride, pads, dilation,
                                                     groups)
        return ungrouped(dy, x, kernel_size, stride, pads, dilation)
    return kernel_gradient


FORMS = {
    "transposing_x": _forced(conv_ops._kernel_gradient_transposing_x),
    "transposing_dy": _forced(conv_ops._kernel_gradient_transposing_dy),
    "library rule": conv_ops._kernel_gradient,
}
SEED_MODELS = ("imdb", "har", "wisdm", "jena_convnet", "jena_conv_gru")


def _runner_with(form: str, model: str, steps: int):
    """A prepared and compiled epoch whose kernel gradients use `form` (traced while patched)."""
    from experiments.throughput.conv1dx_runner import Conv1dxRunner

    library = conv_ops._kernel_gradient
    conv_ops._kernel_gradient = FORMS[form]
    try:
        runner = Conv1dxRunner({"experiment": model, "overrides": ["trainer.conv_lowering=xla"], "steps": steps})
        runner.run(2)  # traces and compiles with the patched function
    finally:
        conv_ops._kernel_gradient = library
    return runner


def measure(model: str, rounds: int, steps: int, epochs: int) -> dict[str, list[float]]:
    """examples/s per form and round (rounds interleaved over the forms)."""
    from experiments.throughput.conv1dx_runner import interleaved_rates

    runners = {form: _runner_with(form, model, steps) for form in FORMS}
    return interleaved_rates(runners, rounds, epochs)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(SEED_MODELS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="batches per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per timed block")
    args = parser.parse_args(argv)
    command = (f"python -m experiments.conv_lowering.kernel_gradient --models {args.models} "
               f"--rounds {args.rounds} --steps {args.steps} --epochs {args.epochs}")
    print(report.context_line(report.run_context(command, Path(__file__).resolve().parents[2])))
    print("\n| model | form | examples/s best | median |\n|---|---|---:|---:|")
    for model in args.models.split(","):
        for form, values in measure(model, args.rounds, args.steps, args.epochs).items():
            print(f"| {model} | {form} | {max(values):,.0f} | {statistics.median(values):,.0f} |",
                  flush=True)
    print(f"\nload average {report.load_average()} at end")


if __name__ == "__main__":
    main()
