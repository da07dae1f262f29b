"""What an epoch costs on small datasets: the last partial batch, and passes bound by memory.

    python -m experiments.small_data.bench --update-readme    # the study's table (about 5 minutes)
    python -m experiments.small_data.bench --tiny             # CI's smoke setting (seconds)

Per workload (names as in `experiments.seeds`: 'default', 'ucr_uea/<Name>', an experiment config)
and per variant, one process (`experiments.small_data.worker`) builds the run as `python -m
conv1dx.train` would and times the first epoch call (compiling included) and `--epochs` more epochs;
the variants' processes are interleaved over `--rounds` rounds, and the medians are reported:

* before: the last partial batch filled up with repeated examples of weight 0
  (`trainer.last_batch=pad`), and convolution passes of few FLOPs left to XLA however many bytes they
  move (`conv_lowering.MIN_TUNED_BYTES` = infinity): conv1dx at 8fd706c;
* memory-bound passes timed: `MIN_TUNED_BYTES` as shipped, last batch filled up;
* own last step: both as shipped (`trainer.last_batch=auto`).

Every variant reads the same convolution decisions file (`CONV1DX_CONV_TUNING_FILE`, else the user's);
a warm-up process per workload, untimed, makes its decisions before the timed rounds.
Writes `results.json` and `results.md` to `--out`; with `--update-readme` also this study's README.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from experiments.seeds import runs
from experiments.throughput import report

STUDY_DIR = Path(__file__).resolve().parent
WORKLOADS = ("default", "ucr_uea/ACSF1", "ucr_uea/GunPoint", "ucr_uea/OSULeaf")
VARIANTS = {  # name: (overrides, conv_lowering.MIN_TUNED_BYTES or None for the shipped value)
    "before": (["trainer.last_batch=pad"], float("inf")),
    "memory-bound passes timed": (["trainer.last_batch=pad"], None),
    "own last step": (["trainer.last_batch=auto"], None),
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m experiments.small_data.bench",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", nargs="+", default=None, metavar="NAME",
                        help="workloads (default: " + " ".join(WORKLOADS) + ")")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5; 1 with --tiny)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="timed epochs per process after the first (default 40; 2 with --tiny)")
    parser.add_argument("--archives", type=Path, default=runs.default_archives(),
                        help="folder of UCR/UEA .ts files (default: $CONV1DX_ARCHIVES, else "
                             "../shared/datasets/ucr_uea)")
    parser.add_argument("--tiny", action="store_true", help="CI smoke setting: default workload, 1 round, 2 epochs")
    parser.add_argument("--out", type=Path, default=STUDY_DIR / "results",
                        help="directory for results.json and results.md")
    parser.add_argument("--update-readme", action="store_true", help="write the tables into README.md")
    args = parser.parse_args(argv)
    args.experiment = args.experiment or (["default"] if args.tiny else list(WORKLOADS))
    args.rounds = args.rounds or (1 if args.tiny else 5)
    args.epochs = args.epochs or (2 if args.tiny else 40)
    return args


def run_worker(overrides: list[str], epochs: int, min_tuned_bytes: float | None) -> dict:
    spec = json.dumps({"overrides": overrides, "epochs": epochs,
                       "min_tuned_bytes": None if min_tuned_bytes is None else str(min_tuned_bytes)})
    done = subprocess.run([sys.executable, "-m", "experiments.small_data.worker", spec], cwd=runs.REPO_ROOT,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(runs.REPO_ROOT)})
    if done.returncode != 0:
        raise RuntimeError(f"worker failed ({shlex.join(overrides)}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_workload(name: str, args, data_dir: Path) -> dict:
    base = [*runs.workload_overrides(name, args.archives), f"paths.data_dir={data_dir}",
            f"paths.output_dir={data_dir / 'run'}"]  # the worker writes nothing there
    run_worker(base, 1, None)  # warm-up: prepares the dataset, makes the convolution decisions
    measured = {variant: [] for variant in VARIANTS}
    for _ in range(args.rounds):
        for variant, (overrides, min_bytes) in VARIANTS.items():
            measured[variant].append(run_worker([*base, *overrides], args.epochs, min_bytes))
    result = {"workload": name, "variants": {}}
    for variant, samples in measured.items():
        epoch_ms = [1e3 * statistics.median(s["epoch_s"]) for s in samples]
        compile_s = [s["first_s"] - statistics.median(s["epoch_s"]) for s in samples]
        result["variants"][variant] = {
            "epoch_ms": statistics.median(epoch_ms), "epoch_ms_rounds": epoch_ms,
            "compile_s": statistics.median(compile_s), "compile_s_rounds": compile_s,
            **{key: samples[0][key] for key in ("train_examples", "batch_size", "traced_batch_sizes",
                                                 "examples_computed", "own_last_step")}}
        print(name, variant, round(statistics.median(epoch_ms), 2), "ms/epoch", flush=True)
    return result


def markdown(results: dict) -> str:
    lines = [report.context_line(results["context"]),
             f"Settings: {results['rounds']} interleaved rounds, {results['epochs']} timed epochs per process "
             f"(the median epoch), then the median over rounds; the whole study took "
             f"{results['duration_s'] / 60:.1f} min; load average {results['load_average_end']} at the end",
             "",
             "| workload | train examples, batch | variant | examples computed per epoch | ms per epoch | "
             "before ÷ this | compile + first epoch − median epoch, s |",
             "|---|---|---|---:|---:|---:|---:|"]
    for workload in results["workloads"]:
        before = workload["variants"]["before"]["epoch_ms"]
        for variant, entry in workload["variants"].items():
            lines.append(
                f"| {workload['workload']} | {entry['train_examples']}, {entry['batch_size']} | {variant} | "
                f"{entry['examples_computed']} | {entry['epoch_ms']:.2f} | {before / entry['epoch_ms']:.2f} | "
                f"{entry['compile_s']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    args = parse_args(argv)
    began = time.perf_counter()
    command = runs.study_command("experiments.small_data.bench", argv, args.experiment, args.archives)
    results = {"context": report.run_context(command, runs.REPO_ROOT), "rounds": args.rounds,
               "epochs": args.epochs, "workloads": []}
    with tempfile.TemporaryDirectory(prefix="conv1dx-small-data-") as scratch:
        for name in args.experiment:
            results["workloads"].append(bench_workload(name, args, Path(scratch)))
    results["load_average_end"] = report.load_average()
    results["duration_s"] = time.perf_counter() - began
    report.publish(results, markdown(results), args.out, STUDY_DIR / "README.md" if args.update_readme else None)
    return results


if __name__ == "__main__":
    main()
