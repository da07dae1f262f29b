"""Sweeps through the real CLI: a seed multirun, `python -m conv1dx.aggregate`, skipping completed
jobs on a re-run, resuming, an Optuna search and the parallel launcher (BasicMotions, 2 epochs)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from conv1dx.sweeps import finished_report, last_error, parse_overrides, seed_metrics
from conv1dx.train.completed import config_differences
from conv1dx.train.config import compose_config, config_dir

TINY = ["trainer.epochs=2", "logger.tensorboard=false", "logger.plots=false",
        "logger.progress=false"]


def _run(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "HYDRA_FULL_ERROR": "1"}
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (
        f"{module} {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def _train(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    flags = [arg for arg in args if arg.startswith("-")]  # Hydra flags first, later overrides win
    overrides = [arg for arg in args if not arg.startswith("-")]
    data_dir = f"paths.data_dir={tmp / 'data'}"
    return _run("conv1dx.train", *flags, *TINY, data_dir, *overrides, cwd=tmp)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sweeps")


@pytest.fixture(scope="module")
def seed_sweep(tmp) -> Path:
    """A finished 2-job multirun (seed=0,1) in tmp/seeds; prepares BasicMotions in tmp/data."""
    sweep_dir = tmp / "seeds"
    _train("-m", "seed=0,1", f"hydra.sweep.dir={sweep_dir}", tmp=tmp)
    return sweep_dir


def _sweep_again(seed_sweep: Path, tmp: Path, *extra: str) -> str:
    """Re-run the seed sweep into its own directory; checks no report was rewritten; the output."""
    reports = [seed_sweep / job / "report.json" for job in ("0", "1")]
    before = [path.stat().st_mtime_ns for path in reports]
    result = _train("-m", "seed=0,1", f"hydra.sweep.dir={seed_sweep}", *extra, tmp=tmp)
    assert [path.stat().st_mtime_ns for path in reports] == before
    return result.stdout + result.stderr


@pytest.mark.slow
def test_seed_sweep_aggregates_into_one_row(seed_sweep, tmp):
    reports = [json.loads((seed_sweep / job / "report.json").read_text()) for job in ("0", "1")]
    assert [r["seeds"] for r in reports] == [[0], [1]]
    out = _run("conv1dx.aggregate", str(seed_sweep), cwd=tmp).stdout
    assert out == (seed_sweep / "aggregate.md").read_text()
    with (seed_sweep / "aggregate.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and rows[0]["n"] == "2" and rows[0]["status"] == "ok"
    assert rows[0]["seeds"] == "0 1"
    for metric in ("test_accuracy", "test_loss", "test_macro_f1"):
        values = np.array([r[metric] for r in reports])
        assert float(rows[0][f"{metric}_mean"]) == pytest.approx(np.mean(values), rel=1e-12)
        assert float(rows[0][f"{metric}_std"]) == pytest.approx(np.std(values), rel=1e-12,
                                                                abs=1e-15)
    assert np.std([r["test_loss"] for r in reports]) > 0  # the two seeds really differ
    assert "trainer.epochs=2" in out and "| seeds | n | test_loss |" in out and "±" in out


def test_aggregate_lists_unfinished_jobs_and_picks_metrics(seed_sweep, tmp):
    sweep = tmp / "partial"
    shutil.copytree(seed_sweep, sweep, ignore=shutil.ignore_patterns("aggregate.*"))
    (sweep / "1" / "report.json").unlink()
    (sweep / "1" / "__main__.log").write_text(
        "[2026-01-01 00:00:00,000][conv1dx.train][ERROR] - run failed; ...\n"
        'Traceback (most recent call last):\n  File "x.py", line 1, in <module>\n    boom()\n'
        "ValueError: boom happened\n")
    out = _run("conv1dx.aggregate", str(sweep), "--metrics", "test_accuracy,final_train_loss",
               "--out", str(tmp / "partial_out"), cwd=tmp).stdout
    report = json.loads((sweep / "0" / "report.json").read_text())
    assert f"| 0 | 1 | {report['test_accuracy']:.4f} | {report['final_train_loss']:.4f} |" in out
    assert "- `1` (failed)" in out and "ValueError: boom happened" in out
    assert not (sweep / "aggregate.md").exists() and (tmp / "partial_out" / "aggregate.md").exists()


@pytest.mark.slow
def test_rerun_skips_completed_jobs(seed_sweep, tmp):
    out = _sweep_again(seed_sweep, tmp)
    for job in ("0", "1"):
        assert f"skipping completed job {seed_sweep / job}" in out


@pytest.mark.slow
def test_parallel_launcher_composes_and_runs_jobs(seed_sweep, tmp):
    cfg = compose_config(["hydra/launcher=parallel"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith("JoblibLauncher") and cfg.hydra.launcher.n_jobs == 2
    assert cfg.hydra.job.env_set.XLA_PYTHON_CLIENT_PREALLOCATE == "false"
    # The joblib workers are fresh processes; the jobs are done, so they only check and skip.
    logs = [seed_sweep / job / "__main__.log" for job in ("0", "1")]
    before = [log.read_text() for log in logs]
    _sweep_again(seed_sweep, tmp, "hydra/launcher=parallel")
    for job, log, old in zip(("0", "1"), logs, before, strict=True):
        assert log.read_text()[len(old):].count(f"skipping completed job {seed_sweep / job}") == 1


@pytest.mark.slow
def test_changed_config_trains_and_resume_continues(seed_sweep, tmp):
    run_dir = tmp / "resumed"
    shutil.copytree(seed_sweep / "0", run_dir)
    out = _train(f"hydra.run.dir={run_dir}", "trainer.resume=true", "trainer.epochs=3", tmp=tmp)
    log = out.stdout + out.stderr
    assert "differs in trainer.epochs" in log and f"resuming {run_dir} from epoch 2" in log
    report = json.loads((run_dir / "report.json").read_text())
    assert report["epochs_run"] == 3
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3]


def test_config_differences_ignore_volatile_keys_and_dataset_facts(seed_sweep, tmp):
    recorded = OmegaConf.load(seed_sweep / "0" / "config.yaml")
    base = [*TINY, f"paths.data_dir={tmp / 'data'}", "seed=0"]
    assert config_differences(compose_config(base), recorded) == []
    moved = compose_config([*base, "paths.data_dir=/elsewhere", "trainer.resume=true",
                            "logger.plots=true"])
    assert config_differences(moved, recorded) == []
    longer = compose_config([*base, "trainer.epochs=3"])
    assert config_differences(longer, recorded) == ["trainer.epochs"]
    changed = config_differences(compose_config([*base, "model.filters=8"]), recorded)
    assert changed == ["model.filters", "model.layers.0.filters", "model.layers.2.filters"]


def test_report_older_than_config_is_not_finished(seed_sweep, tmp):
    run_dir = tmp / "stale"
    shutil.copytree(seed_sweep / "0", run_dir)
    assert finished_report(run_dir) is not None
    report_time = (run_dir / "report.json").stat().st_mtime_ns
    os.utime(run_dir / "config.yaml", ns=(report_time + 10**9, report_time + 10**9))
    assert finished_report(run_dir) is None


def test_seed_metrics_of_a_multi_seed_report():
    report = {"seeds": [3, 4], "epochs_run": 2, "evaluated_split": "test", "test_accuracy": 0.5,
              "test_accuracy_std": 0.1, "final_val_loss": 1.5, "test_baseline_accuracy": 0.25,
              "per_seed": [{"seed": 3, "test_accuracy": 0.4}, {"seed": 4, "test_accuracy": 0.6}]}
    last_row = {"epoch": 2, "val_loss": 1.5, "seed3/val_loss": 1.0, "seed4/val_loss": 2.0}
    per_seed = dict(seed_metrics(report, last_row))
    assert per_seed[3] == {"epochs_run": 2.0, "test_accuracy": 0.4, "final_val_loss": 1.0,
                           "test_baseline_accuracy": 0.25}
    assert per_seed[4]["test_accuracy"] == 0.6 and per_seed[4]["final_val_loss"] == 2.0
    assert "final_val_loss" not in dict(seed_metrics(report, None))[3]


def test_overrides_and_log_errors_parse():
    parsed = parse_overrides(["+experiment=har", "logger.plots=false", "x='a=b'", "~trainer.x"])
    assert parsed == (("experiment", "har"), ("logger.plots", "false"), ("x", "'a=b'"),
                      ("trainer.x", "(deleted)"))
    assert last_error("[t][conv1dx.train][ERROR] - run failed\n") == "run failed"
    assert last_error("[t][conv1dx.train][INFO] - epoch 1\n") is None


@pytest.mark.parametrize("name, overrides", [("optuna", []), ("har_optuna", ["+experiment=har"])])
def test_hparams_search_params_name_config_keys(name, overrides):
    cfg = compose_config([*overrides, f"hparams_search={name}"], return_hydra_config=True)
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper")
    for key in cfg.hydra.sweeper.params:
        assert OmegaConf.select(cfg, key, default=None) is not None, f"{name}: no key {key}"
    assert (config_dir() / "hparams_search" / f"{name}.yaml").exists()


@pytest.mark.slow
def test_optuna_sweep_optimizes_the_reported_metric(seed_sweep, tmp):
    sweep_dir = tmp / "optuna"
    _train("-m", "hparams_search=optuna", "hydra.sweeper.n_trials=2",
           "trainer.validation_split=0.25", f"hydra.sweep.dir={sweep_dir}", tmp=tmp)
    values = [json.loads((sweep_dir / job / "report.json").read_text())["final_val_accuracy"]
              for job in ("0", "1")]
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["best_value"] == max(values)
    rates = [dict(parse_overrides(OmegaConf.load(sweep_dir / job / ".hydra" / "overrides.yaml")))
             ["optimizer.learning_rate"] for job in ("0", "1")]
    assert rates[0] != rates[1] and all(1e-4 <= float(rate) <= 1e-2 for rate in rates)
