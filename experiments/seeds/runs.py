"""One `python -m conv1dx.train` run as a user starts it: command, wall time, time split, results.

`workload_overrides(name, archives)` turns a workload name into Hydra overrides (`study_command`
checks a study's names before it runs anything and gives its command line); `timed_run` starts
the CLI in a fresh process, times it and reads back what the run directory holds: `report.json`
(per-seed final metrics), `metrics.jsonl` (per-epoch rows with each epoch's `seconds`) and the
modification times of `run_info.json` (written once everything is loaded and built, just before the
first epoch) and `metrics.jsonl` (last written after the last epoch). No timing field is added to
the library for this.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from conv1dx.train.config import config_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_UCR_UEA = REPO_ROOT.parent / "shared" / "datasets" / "ucr_uea"
SHIPPED_UCR_UEA = ("BasicMotions",)  # inside the conv1dx package: no archives folder needed


def default_archives() -> Path | None:
    """$CONV1DX_ARCHIVES, else the shared datasets folder beside the repository when present."""
    if os.environ.get("CONV1DX_ARCHIVES"):
        return Path(os.environ["CONV1DX_ARCHIVES"])
    return SHARED_UCR_UEA if SHARED_UCR_UEA.is_dir() else None


def workload_overrides(workload: str, archives: Path | None) -> list[str]:
    """Overrides for a workload: a name, optionally followed by overrides for it alone
    ("ucr_uea/ACSF1 trainer.epochs=120"). Names: "default" (the main config), an experiment
    config name (`+experiment=<name>`) or "ucr_uea/<Name>" (the main config's model on that
    archive set)."""
    if not workload.split():
        raise ValueError("empty workload: give a name such as 'default'.")
    name, *extra = workload.split()
    return [*_name_overrides(name, archives), *extra]


def study_command(module: str, argv: list[str] | None, workloads: list[str], archives: Path | None) -> str:
    """`python -m <module> <arguments>` as the study was started, once every workload name has been
    checked (`workload_overrides` raises on a bad one before anything runs)."""
    for name in workloads:
        workload_overrides(name, archives)
    given = argv if argv is not None else sys.argv[1:]
    return f"python -m {module} {shlex.join(given)}".strip()


def _name_overrides(name: str, archives: Path | None) -> list[str]:
    if name == "default":
        return []
    if name.startswith("ucr_uea/"):
        dataset = name.split("/", 1)[1]
        if dataset in SHIPPED_UCR_UEA:
            return ["dataset=ucr_uea", f"dataset.name={dataset}"]
        found = archives is not None and any(
            (folder / f"{dataset}_TRAIN.ts").is_file() for folder in (archives, archives / dataset))
        if not found:
            raise ValueError(f"workload {name!r}: no {dataset}_TRAIN.ts in the archives folder "
                             f"{archives} (set --archives or $CONV1DX_ARCHIVES to a folder holding "
                             f"{dataset}/{dataset}_TRAIN.ts and _TEST.ts).")
        return ["dataset=ucr_uea", f"dataset.name={dataset}", f"paths.archives={archives}"]
    if not (config_dir() / "experiment" / f"{name}.yaml").is_file():
        known = sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml"))
        raise ValueError(f"unknown workload {name!r}: use 'default', 'ucr_uea/<Name>' or an "
                         f"experiment config name, one of {known}.")
    return [f"+experiment={name}"]


def train_command(overrides: list[str]) -> list[str]:
    return [sys.executable, "-m", "conv1dx.train", *overrides]


def _mtime(path: Path) -> float:
    return path.stat().st_mtime_ns / 1e9


def _read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def timed_run(overrides: list[str], run_dir: Path, *, env: dict | None = None,
              timeout: float = 1800) -> dict:
    """Run the CLI with `overrides` into `run_dir`; returns its command, wall seconds, time split,
    report and epoch rows. The run's output goes to `<run_dir>.log`; a failed run raises with its
    tail."""
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    command = train_command([*overrides, f"hydra.run.dir={run_dir}"])
    log_path = run_dir.with_name(run_dir.name + ".log")
    with log_path.open("w") as log:
        launched = time.time()
        began = time.perf_counter()
        done = subprocess.run(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                              timeout=timeout)
        wall = time.perf_counter() - began
        exited = time.time()
    if done.returncode != 0:
        tail = log_path.read_text()[-3000:]
        raise RuntimeError(f"{' '.join(command)} failed (exit {done.returncode}):\n{tail}")
    rows = _read_rows(run_dir / "metrics.jsonl")
    first_epoch_at = _mtime(run_dir / "run_info.json")
    last_epoch_at = _mtime(run_dir / "metrics.jsonl")
    epochs = sum(row["seconds"] for row in rows)
    split = {
        "startup_s": first_epoch_at - launched,  # interpreter, imports, Hydra, data, model init
        "first_epoch_s": rows[0]["seconds"],  # includes compiling the epoch (and validation)
        "other_epochs_s": epochs - rows[0]["seconds"],
        "between_epochs_s": (last_epoch_at - first_epoch_at) - epochs,  # logs, TensorBoard setup
        "finish_s": exited - last_epoch_at,  # last checkpoint, test evaluation, report, plot, exit
    }
    return {"command": command, "wall_s": wall, "split": split,
            "report": json.loads((run_dir / "report.json").read_text()), "rows": rows}


def _final_scalars(entry: dict) -> dict:
    return {k: float(v) for k, v in entry.items() if k != "seed" and isinstance(v, (int, float))
            and not isinstance(v, bool)}


def final_metrics(report: dict) -> dict[int, dict]:
    """{seed: {metric: value}} of a report's per-seed final scalars (test_*, final_train_*, ...)."""
    return {int(entry["seed"]): _final_scalars(entry) for entry in report["per_seed"]}


def seed_curves(rows: list[dict], seed: int, together: bool) -> dict[str, list[float]]:
    """{metric: per-epoch values} of one seed's logged train_/val_ metrics; a run of several seeds
    logs them as `seed<s>/<metric>`."""
    prefix = f"seed{seed}/" if together else ""
    curves: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            name = key[len(prefix):] if key.startswith(prefix) else None
            if name and "/" not in name and name.startswith(("train_", "val_")):
                curves.setdefault(name, []).append(float(value))
    return curves
