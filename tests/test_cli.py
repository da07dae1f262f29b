"""The real command line, from a directory outside the checkout, as a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(args, cwd, timeout=240):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": ""}
    env.pop("XLA_FLAGS", None)
    return subprocess.run([sys.executable, "-m", "conv1dx.train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_default_run_from_any_directory_prints_test_accuracy(tmp_path):
    result = _run(["trainer.epochs=3", f"paths.data_dir={tmp_path / 'data'}", "logger.tensorboard=false"],
                  cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ucr_uea/BasicMotions" in result.stdout and "test_accuracy = " in result.stdout
    runs = list((tmp_path / "outputs" / "train" / "runs").iterdir())
    assert len(runs) == 1
    report = json.loads((runs[0] / "report.json").read_text())
    assert 0.0 <= report["test_accuracy"] <= 1.0
    assert (runs[0] / ".hydra" / "config.yaml").is_file()


def test_configs_ship_with_the_imported_package(tmp_path):
    code = "from conv1dx.train import config_dir; print(config_dir())"
    env = {**os.environ, "PYTHONPATH": ""}
    found = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                           text=True, check=True).stdout.strip()
    assert (Path(found) / "config.yaml").is_file()
    assert (Path(found) / "experiment" / "imdb.yaml").is_file()


def test_unknown_key_fails_fast_with_hydra_message(tmp_path):
    result = _run(["trainer.epoch=3"], cwd=tmp_path, timeout=60)
    assert result.returncode != 0
    assert "trainer.epoch" in result.stderr and "not in struct" in result.stderr
    assert not (tmp_path / "outputs").exists() or not list((tmp_path / "outputs").rglob("report.json"))


def test_negative_learning_rate_fails_before_training(tmp_path):
    result = _run(["optimizer.learning_rate=-1", f"paths.data_dir={tmp_path / 'data'}"], cwd=tmp_path,
                  timeout=120)
    assert result.returncode != 0
    assert "optimizer.learning_rate must be > 0" in result.stderr
    assert not list(tmp_path.rglob("checkpoints"))
