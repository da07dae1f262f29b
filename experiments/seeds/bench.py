"""Do N seeds trained together (`trainer.seeds=N`) cost less than N separate runs, equal results?

    python -m experiments.seeds.bench --update-readme     # the study's table (about 6 minutes)
    python -m experiments.seeds.bench --experiment default ucr_uea/GunPoint --seeds 5
    python -m experiments.seeds.bench --tiny              # CI's smoke setting (2 seeds, 2 epochs)

Per workload, end to end as a user runs it: one untimed warm-up run (1 epoch; prepares the dataset
in the study's own data dir; no compilation cache), then `python -m conv1dx.train <overrides>
seed=<s>` for s = seed .. seed+N-1, one after another, each wall-timed, then one `... seed=<seed>
trainer.seeds=N` run. The separate runs share one compilation cache that starts empty (the first run
compiles, the others load its programs, as for a user repeating a run); the together run gets its
own empty one. Prints and records the total times, the ratio together / separate, where the time
went (`runs.timed_run`) and the largest absolute difference, over seeds, between each per-seed final
metric of the together run and of the separate run of that seed (and over all epochs of the logged
train_/val_ curves).
Writes `results.json` and `results.md` to `--out`; with `--update-readme` also the results block of
this study's README.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from experiments.seeds import runs, table
from experiments.throughput import report

STUDY_DIR = Path(__file__).resolve().parent
# Per-seed training compute from about 0.2 s (default) to about 4 s (ACSF1, 120 epochs) on this CPU.
WORKLOADS = ("default", "sequence_classifier", "ucr_uea/ACSF1 trainer.epochs=120")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m experiments.seeds.bench",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", nargs="+", default=None, metavar="NAME",
                        help="workloads: 'default', an experiment config name or "
                             "'ucr_uea/<Name>', each optionally followed by overrides for it alone "
                             "in the same quoted argument (default: "
                             + " ".join(repr(w) for w in WORKLOADS) + ")")
    parser.add_argument("--seeds", type=int, default=None, help="N (default 10; 2 with --tiny)")
    parser.add_argument("--seed", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--overrides", nargs="+", default=[], metavar="KEY=VALUE",
                        help="Hydra overrides added to every run, e.g. trainer.epochs=20")
    parser.add_argument("--archives", type=Path, default=runs.default_archives(),
                        help="folder of UCR/UEA .ts files (default: $CONV1DX_ARCHIVES, else "
                             "../shared/datasets/ucr_uea)")
    parser.add_argument("--atol", type=float, default=1e-4,
                        help="largest difference at which metrics count as equal (default 1e-4)")
    parser.add_argument("--tiny", action="store_true",
                        help="CI smoke setting: default workload, 2 seeds, 2 epochs, no warm-up")
    parser.add_argument("--out", type=Path, default=STUDY_DIR / "results",
                        help="directory for results.json and results.md")
    parser.add_argument("--runs-dir", type=Path, default=None,
                        help="keep the run directories here (default: a temporary directory)")
    parser.add_argument("--update-readme", action="store_true",
                        help="write the Markdown tables into this study's README.md")
    args = parser.parse_args(argv)
    if args.tiny and args.update_readme:
        parser.error("--tiny numbers do not belong in the README; drop --update-readme.")
    if args.experiment is None:
        args.experiment = ["default"] if args.tiny else list(WORKLOADS)
    if args.seeds is None:
        args.seeds = 2 if args.tiny else 10
    if args.seeds < 2 or args.seed < 0:
        parser.error("--seeds must be >= 2 and --seed >= 0.")
    if args.tiny:
        args.overrides = ["trainer.epochs=2", *args.overrides]
    return args


def max_differences(separate: dict[int, dict], together: dict[int, dict], measure) -> dict:
    """{metric: largest |together - separate| over seeds} for the metrics both runs have;
    `measure(a, b)` gives the difference of one seed's values."""
    found: dict[str, float] = {}
    for seed, values in separate.items():
        theirs = together[seed]
        for key in values.keys() & theirs.keys():
            found[key] = max(found.get(key, 0.0), measure(values[key], theirs[key]))
    return dict(sorted(found.items()))


def _scalar_gap(a: float, b: float) -> float:
    return abs(a - b)


def _curve_gap(a: list[float], b: list[float]) -> float:
    if len(a) != len(b):
        return float("inf")  # different numbers of epochs (early stopping disagreed)
    return max((abs(x - y) for x, y in zip(a, b, strict=True)), default=0.0)


def bench_workload(name: str, args, runs_dir: Path) -> dict:
    """Warm-up, N separate runs, one together run of workload `name`; timings and differences."""
    base = [*runs.workload_overrides(name, args.archives), f"paths.data_dir={runs_dir / 'data'}",
            *args.overrides]
    where = runs_dir / "_".join(name.replace("/", "_").replace("=", "-").split())
    shutil.rmtree(where / "cache", ignore_errors=True)  # both caches start empty, also in a reused --runs-dir
    if not args.tiny:
        print(f"[{name}] warm-up run (1 epoch, untimed)", file=sys.stderr, flush=True)
        runs.timed_run([*base, "trainer.epochs=1", "paths.compilation_cache_dir=null"],
                       where / "warmup")
    seeds = list(range(args.seed, args.seed + args.seeds))
    separate = {}
    for seed in seeds:
        separate[seed] = runs.timed_run(
            [*base, f"seed={seed}", f"paths.compilation_cache_dir={where / 'cache' / 'separate'}"],
            where / "separate" / str(seed))
        print(f"[{name}] seed {seed} alone: {separate[seed]['wall_s']:.1f} s", file=sys.stderr,
              flush=True)
    together = runs.timed_run([*base, f"seed={args.seed}", f"trainer.seeds={args.seeds}",
                               f"paths.compilation_cache_dir={where / 'cache' / 'together'}"],
                              where / "together")
    print(f"[{name}] {args.seeds} seeds together: {together['wall_s']:.1f} s", file=sys.stderr,
          flush=True)
    together_final = runs.final_metrics(together["report"])
    if sorted(together_final) != seeds:
        raise RuntimeError(f"the together run reported seeds {sorted(together_final)}, "
                           f"expected {seeds}")
    final = max_differences({s: runs.final_metrics(r["report"])[s] for s, r in separate.items()},
                            together_final, _scalar_gap)
    curves = max_differences(
        {s: runs.seed_curves(r["rows"], s, together=False) for s, r in separate.items()},
        {s: runs.seed_curves(together["rows"], s, together=True) for s in seeds}, _curve_gap)
    separate_s = sum(r["wall_s"] for r in separate.values())
    split_s = {k: sum(r["split"][k] for r in separate.values()) for k in together["split"]}
    return {
        "workload": name, "overrides": base, "seeds": seeds,
        "epochs": together["report"]["epochs_run"], "dataset": together["report"]["dataset"],
        "separate": {"wall_s": [separate[s]["wall_s"] for s in seeds], "total_s": separate_s,
                     "split_s": split_s,
                     "command": ["seed=<s>" if word == f"seed={seeds[0]}" else word
                                 for word in separate[seeds[0]]["command"]]},
        "together": {"total_s": together["wall_s"], "split_s": together["split"],
                     "command": together["command"]},
        "ratio": together["wall_s"] / separate_s,
        "final_max_abs_diff": final, "curves_max_abs_diff": curves,
        "agree": max([*final.values(), *curves.values()], default=float("inf")) <= args.atol,
        "test_metrics": {key: [together_final[s][key] for s in seeds]
                         for key in together_final[seeds[0]] if key.startswith("test_")},
    }


def main(argv=None) -> dict:
    args = parse_args(argv)
    began = time.perf_counter()
    command = runs.study_command("experiments.seeds.bench", argv, args.experiment, args.archives)
    results = {"context": report.run_context(command, runs.REPO_ROOT),
               "settings": {"seeds": args.seeds, "first_seed": args.seed, "atol": args.atol,
                            "overrides": args.overrides, "warmup": not args.tiny}, "workloads": []}
    with tempfile.TemporaryDirectory(prefix="conv1dx-seeds-") as scratch:
        runs_dir = (args.runs_dir or Path(scratch)).absolute()
        for name in args.experiment:
            results["workloads"].append(bench_workload(name, args, runs_dir))
    results["load_average_end"] = report.load_average()
    results["duration_s"] = time.perf_counter() - began
    report.publish(results, table.markdown(results), args.out, STUDY_DIR / "README.md" if args.update_readme else None)
    return results


if __name__ == "__main__":
    main()
