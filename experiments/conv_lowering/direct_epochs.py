"""What conv1dx's own AVX-512 loops ("direct": `onednn.kernel_gradient_direct`, and with stride 1
`onednn.forward_direct` and `onednn.input_gradient_direct`) gain in conv1dx's compiled training epochs of
the seed models, over `auto` choosing among XLA and oneDNN for the passes studied.

    python -m experiments.conv_lowering.direct_epochs --rounds 9
    python -m experiments.conv_lowering.direct_epochs --passes forward,input_gradient --rounds 9
    python -m experiments.conv_lowering.direct_epochs --models wisdm --rounds 3 --steps 4

Per model: two prepared runs traced with `trainer.conv_lowering=auto`, each with a decisions file of
its own. "with" times every pass, every candidate offered, against an empty file. "without" gets the same
decisions and timings, except that the `--passes` studied (default: all three) are decided again among
the other candidates (`conv_lowering.decide` on the same timings, as on a CPU without AVX-512F): the two
programs differ only in the studied passes for which "with" chose the direct loops. Then `--rounds`
interleaved blocks of 2 epochs of `--steps` batches each, alternating which goes first; median examples/s
of each. Prints a Markdown table, then every studied pass that had the direct loops among its timed
candidates, with each candidate's ms per call.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from experiments.conv_lowering import onednn_epochs

RUNS = ("without", "with")
PASSES = ("forward", "input_gradient", "kernel_gradient")


def parse_args(argv=None):
    def passes_argument(parser):
        parser.add_argument("--passes", default=",".join(PASSES),
                            help=f"comma-separated passes whose direct loops are studied, of {', '.join(PASSES)}")

    args = onednn_epochs.parse_args(argv, "python -m experiments.conv_lowering.direct_epochs",
                                    __doc__.split("\n\n")[0], rounds=9, more_arguments=passes_argument)
    args.passes = [name.strip() for name in args.passes.split(",") if name.strip()]
    if not args.passes or set(args.passes) - set(PASSES):
        raise SystemExit(f"direct_epochs: --passes must name some of {', '.join(PASSES)}, "
                         f"got {','.join(args.passes)!r}.")
    return args


def prepared_runner(experiment: str, steps: int, decisions: Path):
    """A conv1dx runner traced with `auto`, its decisions in `decisions`."""
    from conv1dx.nn import conv_lowering
    from experiments.throughput.conv1dx_runner import Conv1dxRunner

    os.environ["CONV1DX_CONV_TUNING_FILE"] = str(decisions)
    with conv_lowering.conv_lowering("auto"):
        runner = Conv1dxRunner({"experiment": experiment, "overrides": ["trainer.conv_lowering=auto"],
                                "steps": steps})
        runner.run(1)
    return runner


def studied(key: str, passes: list[str]) -> bool:
    """Whether the decision `key` ("<pass> B.. T.. ...") is for one of `passes`."""
    return key.split(" ", 1)[0] in passes


def withheld(decisions: dict, passes: list[str]) -> dict:
    """`decisions` (machine -> key -> {"choice", "ms"}) with the studied passes decided again, from the same
    timings, among the candidates other than "direct"."""
    from conv1dx.nn import conv_lowering

    def without_direct(key, decision):
        if not studied(key, passes) or "direct" not in decision["ms"]:
            return decision
        others = {name: ms for name, ms in decision["ms"].items() if name != "direct"}
        return {**decision, "choice": conv_lowering.decide(others)}

    return {machine: {key: without_direct(key, decision) for key, decision in keys.items()}
            for machine, keys in decisions.items()}


def measure(experiment: str, rounds: int, steps: int, folder: Path, passes: list[str]) -> dict:
    """examples/s per round of each run, and the "with" run's decisions for the studied passes."""
    from experiments.throughput.conv1dx_runner import interleaved_rates

    files = {run: folder / f"{experiment}-{run}.json" for run in RUNS}
    runners = {"with": prepared_runner(experiment, steps, files["with"])}
    stored = json.loads(files["with"].read_text()) if files["with"].exists() else {}
    files["without"].write_text(json.dumps(withheld(stored, passes)))
    runners["without"] = prepared_runner(experiment, steps, files["without"])
    rates = interleaved_rates({run: runners[run] for run in RUNS}, rounds, 2, alternate=True)
    timed = {key: decision for machine in stored.values() for key, decision in machine.items()
             if studied(key, passes) and "direct" in decision["ms"]}
    return {"examples_per_s": rates, "passes": timed}


def main(argv=None) -> None:
    args = parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="conv1dx-direct-epochs-"))
    import jax

    from conv1dx.nn import onednn

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"commit {commit}; {os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}; jax {jax.__version__}; "
          f"oneDNN {onednn.version()}; direct available: {onednn.direct_available()}; passes studied: "
          f"{', '.join(args.passes)}; {args.rounds} rounds of 2 epochs x {args.steps} batches\n")
    print("| model | without direct, examples/s | with direct, examples/s | with / without |")
    print("|---|---:|---:|---:|")
    passes = {}
    for experiment in [m.strip() for m in args.models.split(",") if m.strip()]:
        result = measure(experiment, args.rounds, args.steps, folder, args.passes)
        medians = {run: statistics.median(v) for run, v in result["examples_per_s"].items()}
        print(f"| {experiment} | {medians['without']:,.0f} | {medians['with']:,.0f} "
              f"| {medians['with'] / medians['without']:.3f} |", flush=True)
        passes.update({f"{experiment}: {key}": decision for key, decision in result["passes"].items()})
    print("\n| pass | choice | xla ms | onednn ms | onednn_blocked ms | direct ms | best other / direct |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for key, decision in passes.items():
        ms = decision["ms"]
        others = min(ms[name] for name in ("xla", "onednn", "onednn_blocked"))
        print(f"| {key} | {decision['choice']} | {ms['xla']:.2f} | {ms['onednn']:.2f} | {ms['onednn_blocked']:.2f} "
              f"| {ms['direct']:.2f} | {others / ms['direct']:.2f} |")


if __name__ == "__main__":
    main()
