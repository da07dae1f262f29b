"""The seeds study (experiments/seeds): the CLI's tiny run, checked against the run directories.

Times are not asserted (the machine is shared); what is checked is that the together run and the
separate runs report equal per-seed metrics, that the script's differences are the ones the
`report.json` files give, and that its time split adds up to the measured wall times.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments.seeds import runs
from experiments.seeds.bench import max_differences


def test_workload_names_become_overrides_or_clear_errors(tmp_path):
    assert runs.workload_overrides("default", None) == []
    assert runs.workload_overrides("sequence_classifier trainer.epochs=3", None) == [
        "+experiment=sequence_classifier", "trainer.epochs=3"]
    assert runs.workload_overrides("ucr_uea/BasicMotions", None) == ["dataset=ucr_uea",
                                                                     "dataset.name=BasicMotions"]
    (tmp_path / "GunPoint").mkdir()
    (tmp_path / "GunPoint" / "GunPoint_TRAIN.ts").write_text("")
    assert runs.workload_overrides("ucr_uea/GunPoint", tmp_path)[-1] == f"paths.archives={tmp_path}"
    with pytest.raises(ValueError, match="no OSULeaf_TRAIN.ts"):
        runs.workload_overrides("ucr_uea/OSULeaf", tmp_path)
    with pytest.raises(ValueError, match="unknown workload 'nope'"):
        runs.workload_overrides("nope", None)


def test_max_differences_takes_the_worst_seed():
    separate = {0: {"loss": 1.0, "acc": 0.5}, 1: {"loss": 2.0, "acc": 0.25}}
    together = {0: {"loss": 1.5, "acc": 0.5}, 1: {"loss": 1.75, "acc": 0.5}}
    gaps = max_differences(separate, together, lambda a, b: abs(a - b))
    assert gaps == {"acc": 0.25, "loss": 0.5}


@pytest.mark.slow
def test_tiny_study_runs_and_together_metrics_equal_separate_runs(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one CPU device, as users run
    done = subprocess.run(
        [sys.executable, "-m", "experiments.seeds.bench", "--tiny", "--out", str(tmp_path / "out"),
         "--runs-dir", str(tmp_path / "runs")],
        cwd=runs.REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    (w,) = results["workloads"]
    assert w["workload"] == "default" and w["seeds"] == [0, 1] and w["epochs"] == 2
    # The differences, recomputed here from the run directories' own report.json files.
    together = json.loads((tmp_path / "runs" / "default" / "together" / "report.json").read_text())
    assert [entry["seed"] for entry in together["per_seed"]] == [0, 1]
    for entry in together["per_seed"]:
        alone = json.loads((tmp_path / "runs" / "default" / "separate" / str(entry["seed"])
                            / "report.json").read_text())
        assert alone["seeds"] == [entry["seed"]]
        (single,) = alone["per_seed"]
        for key in ("test_loss", "test_accuracy", "final_train_loss"):
            gap = abs(single[key] - entry[key])
            assert gap <= 1e-5, (key, entry["seed"], single[key], entry[key])
            assert gap <= w["final_max_abs_diff"][key]
    # Different seeds really train differently (else equality above would prove nothing).
    losses = [entry["test_loss"] for entry in together["per_seed"]]
    assert losses[0] != losses[1]
    assert {"test_loss", "test_accuracy", "final_train_loss"} <= set(w["final_max_abs_diff"])
    assert {"train_loss", "train_accuracy"} <= set(w["curves_max_abs_diff"])
    assert w["agree"] is True
    # Timings: positive, and the split of each part adds up to its wall time.
    for part in (w["separate"], w["together"]):
        assert part["total_s"] > 0
        # file times have the kernel's coarse clock: a few ms either way
        assert all(value >= -0.02 for value in part["split_s"].values()), part["split_s"]
        np.testing.assert_allclose(sum(part["split_s"].values()), part["total_s"], rtol=0.05)
    assert w["ratio"] == pytest.approx(w["together"]["total_s"] / w["separate"]["total_s"])
    assert w["separate"]["total_s"] == pytest.approx(sum(w["separate"]["wall_s"]))
    table = (tmp_path / "out" / "results.md").read_text()
    assert "| default | ucr_uea/BasicMotions, 2 |" in table
    assert "trainer.seeds=2" in table
