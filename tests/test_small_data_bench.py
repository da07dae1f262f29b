"""The small-data study (experiments/small_data): its CI smoke run. Times are not asserted (the machine
is shared); what is checked is what each variant computed, from the batch sizes its epoch was traced
with: the examples per epoch and whether the last partial batch got a step of its own (BasicMotions:
40 examples in batches of 32)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from experiments.seeds import runs


@pytest.mark.slow
def test_the_tiny_study_runs_every_variant(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(runs.REPO_ROOT)}
    done = subprocess.run([sys.executable, "-m", "experiments.small_data.bench", "--tiny", "--out", str(tmp_path)],
                          cwd=runs.REPO_ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    (workload,) = results["workloads"]
    variants = workload["variants"]
    assert list(variants) == ["before", "memory-bound passes timed", "own last step"]
    assert [(v["traced_batch_sizes"], v["examples_computed"], v["own_last_step"]) for v in variants.values()] == [
        ([32], 64, False), ([32], 64, False), ([8, 32], 40, True)]
    for entry in variants.values():
        assert entry["train_examples"] == 40 and entry["batch_size"] == 32
        assert entry["epoch_ms"] > 0 and len(entry["epoch_ms_rounds"]) == 1
    assert "| default | 40, 32 | own last step | 40 |" in (tmp_path / "results.md").read_text()
