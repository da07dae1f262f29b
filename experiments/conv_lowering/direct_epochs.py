"""What the direct kernel gradient (conv1dx's own AVX-512 loops, `onednn.kernel_gradient_direct`) gains
in conv1dx's compiled training epochs of the seed models, over `auto` choosing among XLA and oneDNN.

    python -m experiments.conv_lowering.direct_epochs --rounds 9
    python -m experiments.conv_lowering.direct_epochs --models wisdm --rounds 3 --steps 4

Per model: two prepared runs traced with `trainer.conv_lowering=auto`, each with a decisions file of
its own: "with" times every pass against an empty one; "without", where the direct candidate is
withheld (as on a CPU without AVX-512F), starts from "with"'s decisions for the forward and input
gradients and times only its kernel gradients, so the two programs differ only there. Then `--rounds`
interleaved blocks of 2 epochs of `--steps` batches each, alternating which goes first; median
examples/s of each. Prints a Markdown table, then every kernel-gradient pass the "with" run timed, with
each candidate's ms per call.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from experiments.conv_lowering import onednn_epochs

RUNS = ("without", "with")


def parse_args(argv=None) -> argparse.Namespace:
    return onednn_epochs.parse_args(argv, "python -m experiments.conv_lowering.direct_epochs",
                                    __doc__.split("\n\n")[0], rounds=9)


@contextlib.contextmanager
def direct_withheld(withheld: bool):
    """`onednn.direct_available` answers False inside (conv_ops then offers XLA and oneDNN only)."""
    from conv1dx.nn import onednn

    available = onednn.direct_available
    if withheld:
        onednn.direct_available = lambda: False
    try:
        yield
    finally:
        onednn.direct_available = available


def prepared_runner(experiment: str, steps: int, run: str, decisions: Path):
    """A conv1dx runner traced with `auto`, its decisions in `decisions`, the direct candidate withheld
    unless `run` is "with"."""
    from conv1dx.nn import conv_lowering
    from experiments.throughput.conv1dx_runner import Conv1dxRunner

    os.environ["CONV1DX_CONV_TUNING_FILE"] = str(decisions)
    with direct_withheld(run == "without"), conv_lowering.conv_lowering("auto"):
        runner = Conv1dxRunner({"experiment": experiment, "overrides": ["trainer.conv_lowering=auto"],
                                "steps": steps})
        runner.run(1)
    return runner


def measure(experiment: str, rounds: int, steps: int, folder: Path) -> dict:
    """examples/s per round of each run, and the "with" run's kernel-gradient decisions."""
    from experiments.throughput.conv1dx_runner import interleaved_rates

    files = {run: folder / f"{experiment}-{run}.json" for run in RUNS}
    runners = {"with": prepared_runner(experiment, steps, "with", files["with"])}
    # The run without the candidate starts from the other's decisions for every pass but the kernel
    # gradients, so the two programs differ only where the direct loops were offered.
    stored = json.loads(files["with"].read_text()) if files["with"].exists() else {}
    shared = {machine: {key: decision for key, decision in passes.items() if not key.startswith("kernel_gradient")}
              for machine, passes in stored.items()}
    files["without"].write_text(json.dumps(shared))
    runners["without"] = prepared_runner(experiment, steps, "without", files["without"])
    runners = {run: runners[run] for run in RUNS}
    rates = interleaved_rates(runners, rounds, 2, alternate=True)
    passes = {key: decision for machine in stored.values() for key, decision in machine.items()
              if key.startswith("kernel_gradient")}
    return {"examples_per_s": rates, "kernel_gradients": passes}


def main(argv=None) -> None:
    args = parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="conv1dx-direct-epochs-"))
    import jax

    from conv1dx.nn import onednn

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"commit {commit}; {os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}; jax {jax.__version__}; "
          f"oneDNN {onednn.version()}; direct available: {onednn.direct_available()}; {args.rounds} rounds of "
          f"2 epochs x {args.steps} batches\n")
    print("| model | without direct, examples/s | with direct, examples/s | with / without |")
    print("|---|---:|---:|---:|")
    passes = {}
    for experiment in [m.strip() for m in args.models.split(",") if m.strip()]:
        result = measure(experiment, args.rounds, args.steps, folder)
        medians = {run: statistics.median(v) for run, v in result["examples_per_s"].items()}
        print(f"| {experiment} | {medians['without']:,.0f} | {medians['with']:,.0f} "
              f"| {medians['with'] / medians['without']:.3f} |", flush=True)
        passes.update({f"{experiment}: {key}": decision for key, decision in result["kernel_gradients"].items()})
    print("\n| kernel gradient | choice | xla ms | onednn ms | onednn_blocked ms | direct ms | best other / direct |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for key, decision in passes.items():
        ms = decision["ms"]
        direct = ms.get("direct", float("nan"))
        others = min(ms[name] for name in ("xla", "onednn", "onednn_blocked"))
        print(f"| {key} | {decision['choice']} | {ms['xla']:.2f} | {ms['onednn']:.2f} | {ms['onednn_blocked']:.2f} "
              f"| {direct:.2f} | {others / direct:.2f} |")


if __name__ == "__main__":
    main()
