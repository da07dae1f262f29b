"""Tests of the registry and of ``python -m conv1dx.data`` driven as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conv1dx.data import registry
from conv1dx.data.__main__ import parse_options

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _cli(*args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONV1DX_")}
    return subprocess.run(
        [sys.executable, "-m", "conv1dx.data", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def test_registry_names_and_shorthand(tmp_path):
    assert {"ucr_uea", "imdb", "toy", "synthetic", "uci_har", "wisdm", "jena"} <= set(
        registry.names()
    )
    toy = registry.load("toy/channels")
    assert toy.name == "toy/channels"
    basic = registry.load("ucr_uea/BasicMotions", data_dir=tmp_path, download=False)
    same = registry.load("ucr_uea", name="BasicMotions", data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(basic["train"].x, same["train"].x)
    with pytest.raises(ValueError, match="unknown dataset"):
        registry.load("mnist")
    with pytest.raises(ValueError, match="given both"):
        registry.load("toy/single", example="filters")
    with pytest.raises(ValueError, match="only"):
        registry.load("imdb/x")


def test_registry_missing_module_is_reported_lazily(monkeypatch):
    monkeypatch.setattr(
        registry, "LOADERS", {**registry.LOADERS, "ghost": "conv1dx.data.ghost:load"}
    )
    with pytest.raises(ValueError, match="conv1dx.data.ghost is not installed"):
        registry.get_loader("ghost")
    assert registry.get_loader("synthetic").__name__ == "load_synthetic"


def test_parse_options():
    assert parse_options(["a=3", "b=0.5", "c=true", "d=None", "e=post", "f=[1, 2]"]) == {
        "a": 3,
        "b": 0.5,
        "c": True,
        "d": None,
        "e": "post",
        "f": [1, 2],
    }
    with pytest.raises(ValueError, match="key=value"):
        parse_options(["oops"])


def test_cli_prepare_synthetic(tmp_path):
    result = _cli(
        "prepare",
        "synthetic",
        "num_train=50",
        "num_test=20",
        "--data-dir",
        str(tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "train: 50 examples, x (50, 100, 1) float32" in result.stdout
    assert "test: 20 examples" in result.stdout and "nothing to cache" in result.stdout


def test_cli_list(tmp_path):
    result = _cli("list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("ucr_uea", "imdb", "synthetic", "toy"):
        assert name in result.stdout


@pytest.mark.real_data
def test_cli_prepare_shared_ucr_twice_reuses_cache(tmp_path):
    folder = SHARED / "ucr_uea"
    if not folder.is_dir():
        pytest.skip(f"shared datasets folder {folder} is absent")
    args = (
        "prepare",
        "ucr_uea/GunPoint",
        "--data-dir",
        str(tmp_path / "d"),
        "--archives",
        str(folder),
        "--no-download",
    )
    first = _cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "prepared dataset at" in first.stdout and "reusing" not in first.stdout
    assert "train: 50 examples, x (50, 150, 1) float32" in first.stdout
    assert "classes: 1=" in first.stdout
    second = _cli(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert f"reusing prepared dataset at {tmp_path / 'd'}" in second.stdout


def test_cli_errors_are_one_line(tmp_path):
    result = _cli(
        "prepare",
        "ucr_uea/NoSuchSet",
        "--data-dir",
        str(tmp_path),
        "--archives",
        str(tmp_path),
        "--no-download",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: NoSuchSet_TRAIN.ts")
    bad = _cli("prepare", "mnist", cwd=tmp_path)
    assert bad.returncode == 1 and "unknown dataset 'mnist'" in bad.stderr
