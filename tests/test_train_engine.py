"""The training engine driven through `train(cfg)` with the real configs on tiny settings."""

import json

import jax
import numpy as np
import pytest
from flax import nnx

from conv1dx.train import NonFiniteLossError, train
from conv1dx.train.config_check import ConfigError
from tests.train_helpers import tiny_config


def test_short_run_writes_every_artifact(tmp_path):
    cfg = tiny_config(tmp_path, "trainer.epochs=3", "logger.tensorboard=true", "logger.plots=true")
    report = train(cfg)
    run = tmp_path / "run"
    for name in ("config.yaml", "run_info.json", "summary.txt", "metrics.jsonl", "metrics.csv",
                 "report.json", "curves.png"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert (run / "checkpoints" / "3").is_dir()
    info = json.loads((run / "run_info.json").read_text())
    assert info["seeds"] == [0] and info["versions"]["jax"] == jax.__version__
    assert info["device_kind"] and "git_revision" in info
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert {"train_loss", "train_accuracy", "lr", "seconds", "examples_per_second"} <= set(rows[0])
    saved = json.loads((run / "report.json").read_text())
    assert saved["test_accuracy"] == pytest.approx(report["test_accuracy"])
    assert len(saved["per_seed"][0]["test_confusion_matrix"]) == 4
    assert "Total params" in (run / "summary.txt").read_text()


@pytest.mark.slow
def test_overfit_run_halves_the_loss(tmp_path):
    cfg = tiny_config(tmp_path, "trainer.epochs=40", "model.dropout=0.0", "optimizer.learning_rate=3e-3",
                      "trainer.checkpoint.every=40")
    train(cfg)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train_loss"] <= 0.5 * rows[0]["train_loss"]


def test_one_step_changes_every_parameter():
    import optax

    from conv1dx import nn
    from conv1dx.train import steps
    from conv1dx.train.losses import SparseCategoricalCrossentropy
    from conv1dx.train.metrics import ClassificationMetrics
    from conv1dx.train.state import init_state

    model = nn.Sequential([nn.Conv1D(4, 3, activation="relu"), nn.BatchNormalization(),
                           nn.GlobalAveragePooling1D(), nn.Dense(3)], input_shape=(12, 2), rngs=nnx.Rngs(0))
    tx = optax.adam(1e-2)
    graphdef, state = init_state(model, tx)
    config = steps.StepConfig(graphdef, tx, SparseCategoricalCrossentropy(), ClassificationMetrics(3))
    rng = np.random.default_rng(0)
    batch = {"x": rng.normal(size=(8, 12, 2)).astype(np.float32), "y": rng.integers(0, 3, 8)}
    new, sums = jax.jit(lambda s, b: steps.train_step(config, s, b, np.ones(8, np.float32),
                                                      jax.random.key(0)))(state, batch)
    for before, after in zip(jax.tree.leaves(state.params), jax.tree.leaves(new.params), strict=True):
        assert np.all(np.asarray(before) != np.asarray(after))
    moving = [np.asarray(v) for v in jax.tree.leaves(new.rest)]
    assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(state.rest), moving, strict=True))
    assert int(new.step) == 1 and float(sums["count"]) == 8


@pytest.mark.parametrize("strategy", ["vmap", "map"])
@pytest.mark.slow
def test_seed_replicas_match_separate_runs(tmp_path, strategy):
    together = train(tiny_config(tmp_path / "together", "trainer.epochs=3", "trainer.seeds=2",
                                 "trainer.validation_split=0.25", f"trainer.replica_strategy={strategy}"))
    for i, seed in enumerate((0, 1)):
        alone = train(tiny_config(tmp_path / f"alone{seed}", "trainer.epochs=3", f"seed={seed}",
                                  "trainer.validation_split=0.25"))
        assert together["per_seed"][i]["seed"] == seed
        assert together["per_seed"][i]["test_loss"] == pytest.approx(alone["test_loss"], rel=2e-4)
        assert together["per_seed"][i]["test_accuracy"] == pytest.approx(alone["test_accuracy"])
    losses = [entry["test_loss"] for entry in together["per_seed"]]
    assert together["test_loss"] == pytest.approx(np.mean(losses))
    assert together["test_loss_std"] == pytest.approx(np.std(losses))


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_result(tmp_path):
    full = train(tiny_config(tmp_path / "full", "trainer.epochs=4"))
    train(tiny_config(tmp_path / "cut", "trainer.epochs=2"))  # the run "stopped" after epoch 2
    resumed = train(tiny_config(tmp_path / "cut", "trainer.epochs=4", "trainer.resume=true"))
    assert resumed["test_loss"] == pytest.approx(full["test_loss"], rel=1e-5)
    rows = [json.loads(line) for line in (tmp_path / "cut" / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3, 4]


def test_early_stopping_restores_best_weights(tmp_path):
    report = train(tiny_config(
        tmp_path, "trainer.epochs=30", "trainer.validation_split=0.25", "optimizer.learning_rate=3e-2",
        "+trainer.early_stopping._target_=conv1dx.train.callbacks.EarlyStopping",
        "+trainer.early_stopping.patience=2", "+trainer.early_stopping.monitor=val_loss"))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    best_epoch = report["per_seed"][0]["best_epoch"]
    assert rows[best_epoch - 1]["val_loss"] == min(row["val_loss"] for row in rows)
    assert report["epochs_run"] <= 30


def test_reduce_on_plateau_lowers_the_learning_rate(tmp_path):
    train(tiny_config(
        tmp_path, "trainer.epochs=8", "trainer.validation_split=0.25",
        "+trainer.reduce_lr_on_plateau._target_=conv1dx.train.callbacks.ReduceLROnPlateau",
        "+trainer.reduce_lr_on_plateau.patience=1", "+trainer.reduce_lr_on_plateau.factor=0.5",
        "+trainer.reduce_lr_on_plateau.min_delta=10.0"))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    rates = [row["lr"] for row in rows]
    assert rates[0] == pytest.approx(1e-3) and rates[-1] < rates[0]


def test_nan_loss_stops_with_a_clear_message_and_a_saved_state(tmp_path):
    with pytest.raises(NonFiniteLossError, match="Non-finite loss .* last finite weights are saved"):
        train(tiny_config(tmp_path, "trainer.epochs=3", "optimizer.learning_rate=1e30"))
    assert any((tmp_path / "run" / "checkpoints").iterdir())


@pytest.mark.parametrize("override,match", [
    ("optimizer.learning_rate=-0.001", "optimizer.learning_rate must be > 0"),
    ("trainer.epochs=0", "trainer.epochs must be a positive integer"),
    ("model.kernel_size=500", "kernel spans 500 steps .* only 100 steps"),
])
def test_bad_values_fail_fast(tmp_path, override, match):
    with pytest.raises((ConfigError, ValueError), match=match):
        train(tiny_config(tmp_path, override, "model.layers.0.padding=valid"))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_unknown_trainer_key_is_named_with_a_suggestion(tmp_path):
    cfg = tiny_config(tmp_path)
    from omegaconf import OmegaConf

    OmegaConf.set_struct(cfg, False)
    cfg.trainer.epoch = 3
    with pytest.raises(ConfigError, match="Unknown config key trainer.epoch. Did you mean trainer.epochs"):
        train(cfg)


@pytest.mark.slow
def test_load_model_returns_the_trained_weights(tmp_path):
    from conv1dx.data.ucr_uea import load_ucr_uea
    from conv1dx.train import load_model

    report = train(tiny_config(tmp_path, "trainer.epochs=2", "trainer.seeds=2"))
    model = load_model(tmp_path / "run", seed_index=1)
    test = load_ucr_uea("BasicMotions", data_dir=tmp_path / "data")["test"]
    predicted = np.asarray(model(test.x, training=False)).argmax(-1)
    assert np.mean(predicted == test.y) == pytest.approx(report["per_seed"][1]["test_accuracy"])


def test_the_epoch_compiles_once_per_run(tmp_path):
    """Nothing recompiles after the first epoch (jax.log_compiles names the compiled epoch)."""
    import logging

    messages = []

    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    handler = Collect()
    logger = logging.getLogger("jax")
    logger.addHandler(handler)
    try:
        with jax.log_compiles(True):
            train(tiny_config(tmp_path, "trainer.epochs=4", "trainer.validation_split=0.25"))
    finally:
        logger.removeHandler(handler)
    compiled = [m for m in messages if m.startswith("Compiling jit(conv1dx_")]
    assert sum("conv1dx_train_epoch" in m for m in compiled) == 1
    assert sum("conv1dx_evaluate" in m for m in compiled) == 2  # validation split, then test with confusion
