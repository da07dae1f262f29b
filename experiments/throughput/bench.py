"""Training throughput of conv1dx against Keras 3 (JAX, TensorFlow) and PyTorch, interleaved.

    python -m experiments.throughput.bench                       # the five seed models, all peers
    python -m experiments.throughput.bench --models har --frameworks conv1dx,torch --rounds 3
    python -m experiments.throughput.bench --tiny --frameworks conv1dx    # CI's smoke setting

Per model (an experiment config name): one warm worker process per framework is started and set up
in turn (so compile times are measured without competition), then for each round every framework
trains one timed block while the others wait, in an order rotated each round; the float32 matmul
peak is measured once per round beside them. Results: examples/s per round and their median, compile
time, achieved GFLOP/s from the analytic FLOP count (`flops.py`), % of the best peak measured in the
same run, and each worker's peak resident memory. Writes `results.json` and `results.md` to `--out`;
with `--update-readme` also the results block of this study's README.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from pathlib import Path

from experiments.throughput import report
from experiments.throughput.workers import REPO_ROOT, Worker, missing_packages

SEED_MODELS = ("imdb", "har", "wisdm", "jena_convnet", "jena_conv_gru")
DEFAULT_FRAMEWORKS = ("conv1dx", "keras_jax", "keras_tf", "torch")
STUDY_DIR = Path(__file__).resolve().parent
# (rounds, steps, block_seconds, peak_n): the full study and the CI smoke setting.
FULL, TINY = (5, 20, 3.0, 2048), (1, 2, 0.0, 256)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m experiments.throughput.bench",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(SEED_MODELS),
                        help="comma-separated experiment config names (default: the seed models)")
    parser.add_argument("--frameworks", default=",".join(DEFAULT_FRAMEWORKS),
                        help="comma-separated: conv1dx, keras_jax, keras_tf, torch, torch_compile")
    parser.add_argument("--rounds", type=int, help=f"interleaved rounds (default {FULL[0]})")
    parser.add_argument("--steps", type=int, help=f"batches per epoch (default {FULL[1]})")
    parser.add_argument("--block-seconds", type=float,
                        help=f"least duration of one timed block (default {FULL[2]})")
    parser.add_argument("--peak-n", type=int, help=f"matmul size for the peak (default {FULL[3]})")
    parser.add_argument("--override", action="append", default=[],
                        help="a Hydra override applied to every model, e.g. trainer.batch_size=64")
    parser.add_argument("--tiny", action="store_true",
                        help=f"CI smoke setting: rounds, steps, block seconds, peak n = {TINY}")
    parser.add_argument("--out", type=Path, default=STUDY_DIR / "results",
                        help="directory for results.json, results.md and worker logs")
    parser.add_argument("--update-readme", action="store_true",
                        help="write the Markdown table into this study's README.md")
    args = parser.parse_args(argv)
    defaults = TINY if args.tiny else FULL
    for name, default in zip(("rounds", "steps", "block_seconds", "peak_n"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.rounds < 1 or args.steps < 1 or args.block_seconds < 0 or args.peak_n < 1:
        parser.error("--rounds, --steps and --peak-n must be >= 1 and --block-seconds >= 0.")
    return args


def available_frameworks(names: list[str]) -> tuple[list[str], dict]:
    """The frameworks this Python can run, and {framework: reason} for the others (printed)."""
    runnable, skipped = [], {}
    for name in names:
        missing = missing_packages(name)
        if missing:
            skipped[name] = (f"{', '.join(missing)} not importable; install the peers with "
                             "pip install -e '.[bench]'")
            print(f"skipping {name}: {skipped[name]}", file=sys.stderr)
        else:
            runnable.append(name)
    return runnable, skipped


def bench_model(experiment: str, frameworks: list[str], args, peak_worker: Worker,
                peaks: list) -> dict:
    """All rounds of one model; returns its raw results (summarized later)."""
    from experiments.throughput.workload import describe

    workload = describe(experiment, args.override, args.steps)
    model = {key: workload[key] for key in ("experiment", "batch_size", "input_shape", "params",
                                            "flops_per_example", "forward_flops_per_example")}
    model["frameworks"] = {}
    workers = {}
    try:
        for name in frameworks:
            workers[name] = Worker(name, args.out / "logs" / f"{experiment}-{name}.log", name)
            setup = workers[name].request({"cmd": "setup", "framework": name, "workload": workload,
                                           "block_seconds": args.block_seconds})
            model["frameworks"][name] = {**setup, "examples_per_s": []}
            print(f"{experiment} {name}: compile {setup['compile_s']:.1f} s, "
                  f"{setup['repeats']} epoch(s) per block", file=sys.stderr)
        for round_index in range(args.rounds):
            peaks.append(peak_worker.request({"cmd": "peak", "n": args.peak_n, "repeats": 3}))
            shift = round_index % len(frameworks)
            for name in frameworks[shift:] + frameworks[:shift]:
                block = workers[name].request({"cmd": "measure"})
                rate = block["examples"] / block["seconds"]
                model["frameworks"][name]["examples_per_s"].append(rate)
                print(f"{experiment} round {round_index + 1} {name}: {rate:,.0f} examples/s",
                      file=sys.stderr)
        for name, worker in workers.items():
            model["frameworks"][name].update(worker.request({"cmd": "finish"}))
    finally:
        for worker in workers.values():
            worker.close()
    return model


def main(argv=None) -> dict:
    args = parse_args(argv)
    command = "python -m experiments.throughput.bench " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    frameworks, skipped = available_frameworks(
        [f.strip() for f in args.frameworks.split(",") if f.strip()])
    if not models or not frameworks:
        raise SystemExit("Nothing to measure: give --models and at least one runnable framework.")
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"context": report.run_context(command, REPO_ROOT),
               "settings": {"rounds": args.rounds, "steps": args.steps,
                            "block_seconds": args.block_seconds, "peak_n": args.peak_n,
                            "overrides": args.override, "frameworks": frameworks},
               "skipped": skipped, "models": []}
    peaks: list[dict] = []
    peak_worker = Worker("peak", args.out / "logs" / "peak.log")
    try:
        for experiment in models:
            results["models"].append(bench_model(experiment, frameworks, args, peak_worker, peaks))
            text = write_outputs(results, peaks, args)  # after every model: a crash keeps the rest
    finally:
        peak_worker.close()
    if args.update_readme:
        report.update_readme(STUDY_DIR / "README.md", text)
    print(text)
    return results


def write_outputs(results: dict, peaks: list[dict], args) -> str:
    """Summarize against the best peak so far, write results.json and results.md, return Markdown.

    The peak is the best round's (what the hardware can do); the median round shows how much the
    machine's load took from it during the run.
    """
    peak = max(p["peak_gflops"] for p in peaks)
    results["peak"] = {"best_gflops": peak, "n": args.peak_n, "rounds": peaks,
                       "median_gflops": statistics.median(p["peak_gflops"] for p in peaks)}
    results["load_average_end"] = report.load_average()
    for model in results["models"]:
        report.summarize(model, peak)
    text = report.markdown(results)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "results.md").write_text(text)
    return text


if __name__ == "__main__":
    main()
