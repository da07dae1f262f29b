"""What `trainer.conv_lowering=auto` (oneDNN or XLA per pass, chosen by timing) gains over XLA alone, in
conv1dx's compiled training epochs of the seed models.

    python -m experiments.conv_lowering.onednn_epochs --rounds 7
    python -m experiments.conv_lowering.onednn_epochs --models wisdm --rounds 3 --steps 4

Per model: one prepared run traced with `conv_lowering` "xla" and one with "auto", the latter timing
every large enough convolution pass against a decisions file that starts empty (the one-time cost a
new machine pays: "tuning s"); then `--rounds` interleaved blocks of 2 epochs of `--steps` batches
each, alternating which mode goes first; median examples/s per mode. Prints a Markdown table, then
every pass's decision with its timed candidates (ms per call; "direct" is conv1dx's own loops, see
direct_epochs.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

SEED_MODELS = ("imdb", "har", "wisdm", "jena_convnet", "jena_conv_gru")
MODES = ("xla", "auto")


def parse_args(argv=None, prog: str = "python -m experiments.conv_lowering.onednn_epochs",
               description: str = __doc__.split("\n\n")[0], rounds: int = 7,
               more_arguments=None) -> argparse.Namespace:
    """--models, --rounds and --steps of an epochs study (also direct_epochs', which adds its own through
    `more_arguments(parser)`)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    if more_arguments is not None:
        more_arguments(parser)
    parser.add_argument("--models", default=",".join(SEED_MODELS), help="comma-separated experiment names")
    parser.add_argument("--rounds", type=int, default=rounds, help="interleaved blocks per run")
    parser.add_argument("--steps", type=int, default=10, help="batches per epoch")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.steps < 1:
        parser.error("--rounds and --steps must be >= 1.")
    return args


def prepared_runner(experiment: str, steps: int, mode: str):
    """A conv1dx runner whose epoch is traced (and compiled) with convolution lowering `mode`."""
    from conv1dx.nn import conv_lowering
    from experiments.throughput.conv1dx_runner import Conv1dxRunner

    with conv_lowering.conv_lowering(mode):
        runner = Conv1dxRunner({"experiment": experiment, "overrides": [f"trainer.conv_lowering={mode}"],
                                "steps": steps})
        runner.run(1)
    return runner


def measure(experiment: str, rounds: int, steps: int) -> dict:
    """Tuning seconds, and examples/s per round of each mode."""
    start = time.perf_counter()
    runners = {"auto": prepared_runner(experiment, steps, "auto")}
    tuning_s = time.perf_counter() - start
    runners["xla"] = prepared_runner(experiment, steps, "xla")
    start = time.perf_counter()
    prepared_runner(experiment, steps, "auto")  # the same with the decisions on file: setup and compile only
    tuning_s -= time.perf_counter() - start
    from experiments.throughput.conv1dx_runner import interleaved_rates

    rates = interleaved_rates({mode: runners[mode] for mode in MODES}, rounds, 2, alternate=True)
    return {"tuning_s": tuning_s, "examples_per_s": rates}


def main(argv=None) -> None:
    args = parse_args(argv)
    decisions_file = Path(tempfile.mkdtemp(prefix="conv1dx-onednn-epochs-"), "conv_lowering.json")
    os.environ["CONV1DX_CONV_TUNING_FILE"] = str(decisions_file)
    import jax

    from conv1dx.nn import onednn

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"commit {commit}; {os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}; jax {jax.__version__}; "
          f"oneDNN {onednn.version()}; {args.rounds} rounds of 2 epochs x {args.steps} batches\n")
    print("| model | tuning s (once) | xla examples/s | auto examples/s | auto / xla |")
    print("|---|---:|---:|---:|---:|")
    for experiment in [m.strip() for m in args.models.split(",") if m.strip()]:
        result = measure(experiment, args.rounds, args.steps)
        medians = {mode: statistics.median(v) for mode, v in result["examples_per_s"].items()}
        print(f"| {experiment} | {result['tuning_s']:.1f} | {medians['xla']:,.0f} | {medians['auto']:,.0f} "
              f"| {medians['auto'] / medians['xla']:.3f} |", flush=True)
    stored = json.loads(decisions_file.read_text()) if decisions_file.exists() else {}
    print("\n| pass | choice | xla ms | onednn ms | onednn_blocked ms | direct ms |")
    print("|---|---|---:|---:|---:|---:|")
    for passes in stored.values():
        for key, decision in sorted(passes.items(), key=lambda item: item[0].split(" ", 1)[::-1]):
            ms = decision["ms"]
            direct = f"{ms['direct']:.2f}" if "direct" in ms else "-"  # on AVX-512F; stride 1 but for kernel gradients
            print(f"| {key} | {decision['choice']} | {ms['xla']:.2f} | {ms['onednn']:.2f} "
                  f"| {ms['onednn_blocked']:.2f} | {direct} |")


if __name__ == "__main__":
    main()
