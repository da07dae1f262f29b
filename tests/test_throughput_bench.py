"""The throughput study (experiments/throughput): FLOPs by hand, synthetic data, the CLI's tiny run.

The benchmark itself is not timed here; the tiny run only checks that the command works end to end
and writes positive numbers in the expected columns. Peers (Keras, PyTorch) join when importable.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from flax import nnx

from conv1dx import nn
from experiments.throughput import flops, peer_spec, report, synthetic
from experiments.throughput.workers import REPO_ROOT


def _model(layers, input_shape):
    return nn.Sequential(layers, input_shape=input_shape, rngs=nnx.Rngs(0))


def test_flops_conv_pool_gru_dense_by_hand():
    model = _model([nn.Conv1D(4, 3, activation="relu"), nn.MaxPooling1D(2), nn.GRU(3), nn.Dense(2)],
                   (10, 2))
    conv = 2 * 8 * 3 * 2 * 4  # 8 output steps (10 - 3 + 1), kernel 3, 2 in-channels, 4 filters
    # GRU(3) over 4 steps of 4 channels: per step 4 x 9 input and 3 x 9 recurrent multiply-adds
    gru = 4 * 2 * (4 * 9 + 3 * 9)
    dense = 2 * 3 * 2  # 3 inputs, 2 units
    assert flops.model_forward_flops(model, (10, 2)) == conv + gru + dense
    assert flops.training_flops_per_example(model, (10, 2)) == 3 * (conv + gru + dense)
    rows = flops.layer_table(model, (10, 2))
    assert [r["forward_flops"] for r in rows] == [conv, 0, gru, dense]


def test_flops_embedding_strided_conv_dense_on_steps_bidirectional_lstm_by_hand():
    model = _model([nn.Embedding(50, 4), nn.Conv1D(5, 2, strides=2, padding="same"), nn.Dense(7),
                    nn.Bidirectional(nn.LSTM(2))], (6,))
    conv = 2 * 3 * 2 * 4 * 5  # ceil(6 / 2) = 3 output steps, kernel 2, 4 channels, 5 filters
    dense = 2 * 3 * 5 * 7  # applied at each of 3 steps: 5 -> 7
    lstm = 3 * 2 * 4 * 2 * (7 + 2)  # 3 steps, 4 gates x 2 units, (7 inputs + 2 state)
    assert flops.model_forward_flops(model, (6,)) == conv + dense + 2 * lstm  # embedding lookup: 0


def test_flops_refuse_a_layer_without_a_rule():
    class Custom(nn.Layer):
        def build(self, input_shape, rngs):
            pass

        def forward(self, x, *, mask, training, rngs):
            return x

        def compute_output_shape(self, input_shape):
            return input_shape

    layer = Custom()
    with pytest.raises(ValueError, match="No FLOP rule for layer Custom"):
        flops.layer_forward_flops(layer, (4, 2), (4, 2))


def test_synthetic_jena_has_exactly_the_requested_windows():
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"_target_": "conv1dx.data.jena.load_jena", "lookback": 720, "step": 3,
                            "delay": 144, "target_col": 1})
    dataset = synthetic.seed_dataset(cfg, 256)
    assert dataset.window_shape == (240, 14)
    assert len(dataset.rows("train")) == 256


def test_peer_arrays_shapes_follow_the_workload():
    workload = {"steps": 3, "batch_size": 4, "input_shape": [7], "x_dtype": "int32",
                "vocab_size": 11, "task": "classification", "num_classes": 2, "num_examples": 99}
    x, y = synthetic.peer_arrays(workload)
    assert x.shape == (12, 7) and x.dtype == np.int32 and 0 <= x.min() and x.max() < 11
    assert y.shape == (12,) and set(np.unique(y)) <= {0, 1}


def test_peer_spec_maps_keras_rmsprop_and_rejects_what_peers_cannot_do():
    node = {"transform": {"_target_": "optax.rmsprop", "_partial_": True, "decay": 0.9, "eps": 1e-7,
                          "eps_in_sqrt": False},
            "learning_rate": 1e-4, "schedule": None, "clip_norm": None, "clip_value": None}
    assert peer_spec.optimizer_spec(node) == ("rmsprop", {"learning_rate": 1e-4, "rho": 0.9,
                                                          "epsilon": 1e-7})
    with pytest.raises(ValueError, match="clip_norm"):
        peer_spec.optimizer_spec({**node, "clip_norm": 1.0})
    with pytest.raises(ValueError, match="label_smoothing"):
        peer_spec.loss_kind({"_target_": "conv1dx.train.losses.SparseCategoricalCrossentropy",
                             "label_smoothing": 0.1})


def test_update_readme_replaces_only_the_results_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.START}\nold table\n{report.END}\noutro\n")
    report.update_readme(readme, "new table\n")
    assert readme.read_text() == f"intro\n{report.START}\nnew table\n{report.END}\noutro\n"


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="torch is not installed (pip install -e '.[bench]')")
def test_torch_reference_has_conv1dx_parameter_counts():
    from experiments.throughput import torch_models
    from experiments.throughput.workload import describe

    workload = describe("jena_conv_gru", steps=1)  # convolutions, pooling and the hand-written GRU
    model = torch_models.build_model(workload)
    assert sum(p.numel() for p in model.parameters()) == workload["params"] == 13_697


@pytest.mark.slow
def test_tiny_benchmark_runs_and_reports_positive_numbers(tmp_path):
    # PyTorch joins when installed (the [bench] extra); Keras is left to the full study (slow).
    frameworks = ["conv1dx"] + (["torch"] if importlib.util.find_spec("torch") is not None else [])
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one CPU device, as users run
    done = subprocess.run(
        [sys.executable, "-m", "experiments.throughput.bench", "--tiny", "--models", "har",
         "--frameworks", ",".join(frameworks), "--out", str(tmp_path)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["peak"]["best_gflops"] > 0
    assert results["context"]["git"]["commit"] and results["context"]["machine"]["cpu"]
    (model,) = results["models"]
    assert model["experiment"] == "har" and model["batch_size"] == 32
    assert model["flops_per_example"] > 0
    assert set(model["frameworks"]) == set(frameworks)
    for result in model["frameworks"].values():
        for key in ("median_examples_per_s", "gflops", "percent_of_peak", "peak_rss_mib",
                    "setup_s"):
            assert result[key] > 0, key
        assert result["compile_s"] >= 0
    assert model["frameworks"]["conv1dx"]["conv1dx_speedup"] == pytest.approx(1.0)
    table = (tmp_path / "results.md").read_text()
    assert "| model | batch | framework | examples/s (median) |" in table
    assert "| har | 32 | conv1dx |" in table
    assert Path(tmp_path / "logs" / "har-conv1dx.log").exists()


def test_the_benchmark_compiles_without_the_compilation_cache():
    """Compile times are measured: a warm persistent cache would turn them into cache loads."""
    from experiments.throughput import workload

    cfg = workload.compose("har", [], steps=2)
    assert cfg.paths.compilation_cache_dir is None
    assert cfg.trainer.steps_per_epoch == 2
