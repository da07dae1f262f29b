"""A training epoch's batches (`steps.training_batches`, `steps.own_last_step`, `steps.train_epoch`):
whole batches, then the last partial batch as a step of its own size (as Keras' fit does) or filled up."""

import functools

import jax
import numpy as np
import optax
import pytest
from flax import nnx

from conv1dx import nn
from conv1dx.train import replicas, steps
from conv1dx.train.config_check import ConfigError, check_config
from conv1dx.train.losses import MeanSquaredError
from conv1dx.train.metrics import RegressionMetrics
from conv1dx.train.parallel import DataParallel
from conv1dx.train.session import prepare
from conv1dx.train.state import init_state
from tests.train_helpers import tiny_config


@pytest.mark.parametrize(("num_examples", "batch_size", "tail_size"), [(10, 4, 2), (12, 4, None), (3, 8, 3)])
def test_every_example_once_in_whole_batches_then_the_rest(num_examples, batch_size, tail_size):
    (idx_SxB, valid_SxB), tail = steps.training_batches(jax.random.key(3), num_examples, batch_size)
    assert idx_SxB.shape == valid_SxB.shape == (num_examples // batch_size, batch_size)
    assert np.all(np.asarray(valid_SxB) == 1)
    seen = list(np.asarray(idx_SxB).ravel())
    if tail_size is None:
        assert tail is None
    else:
        idx_R, valid_R = map(np.asarray, tail)
        assert idx_R.shape == valid_R.shape == (tail_size,) and np.all(valid_R == 1)
        seen += list(idx_R)
    assert sorted(seen) == list(range(num_examples))
    # The same order as the permutation `batch_plan` draws (evaluation pads it instead).
    idx_plan, _ = steps.batch_plan(jax.random.key(3), num_examples, batch_size)
    np.testing.assert_array_equal(seen, np.asarray(idx_plan).ravel()[:num_examples])


@pytest.mark.parametrize(("num_examples", "batch_size", "last_batch", "steps_per_epoch", "own"), [
    (100, 32, "auto", None, True),  # ACSF1: 28 filler slots, 28% of the examples
    (20000, 128, "auto", None, False),  # IMDB's training split: 96 filler slots, 0.5%
    (20000, 128, "exact", None, True),
    (100, 32, "pad", None, False),
    (96, 32, "exact", None, False),  # nothing to fill
    (100, 32, "exact", 4, False),  # whole random batches
    (20, 21, "auto", None, True),  # one batch, all of it partial
])
def test_when_the_last_batch_gets_a_step_of_its_own(num_examples, batch_size, last_batch, steps_per_epoch, own):
    assert steps.own_last_step(num_examples, batch_size, last_batch, steps_per_epoch) is own


def test_a_bad_last_batch_mode_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"last_batch must be one of \('auto', 'exact', 'pad'\), got 'drop'"):
        steps.own_last_step(10, 4, "drop")
    cfg = tiny_config(tmp_path, "trainer.last_batch=drop")
    with pytest.raises(ConfigError, match=r"trainer.last_batch must be auto, exact, pad, got 'drop'"):
        check_config(cfg)
    cfg = tiny_config(tmp_path, "trainer.last_batch=exact", "trainer.steps_per_epoch=3")
    with pytest.raises(ConfigError, match=r"last_batch=exact has no effect with trainer.steps_per_epoch"):
        check_config(cfg)
    check_config(tiny_config(tmp_path, "trainer.last_batch=pad", "trainer.steps_per_epoch=3"))


@pytest.mark.parametrize("sharded", [False, True])
@pytest.mark.parametrize("last_batch", ["exact", "pad"])
def test_the_last_batch_is_computed_at_its_own_size(last_batch, sharded):
    """BatchNormalization's moving mean after one epoch of N = 11, B = 4 (momentum m = 0.5) is that of
    batches of 4, 4 and 3 examples, computed from the definition, moving = m moving + (1 - m) mean;
    padding the last batch to 4 (repeating examples) would give another value. The step sees a batch
    of 3 examples, and every example counts once in the epoch's sums. With last_batch="pad" the last
    batch is filled up to 4 by the first example of the permutation, and BatchNormalization sees it.
    Sharded: batches split over the test session's 2 CPU devices (data parallelism), 3 unevenly."""
    if sharded and len(jax.devices()) < 2:
        pytest.skip("needs 2 devices (tests/conftest.py asks XLA for 2 CPU devices)")
    num_examples, batch_size, momentum = 11, 4, 0.5
    x = np.random.default_rng(0).normal(size=(num_examples, 3, 2)).astype(np.float32)
    x += np.arange(num_examples, dtype=np.float32)[:, None, None]  # batch means differ
    y = np.zeros((num_examples, 1), np.float32)
    model = nn.Sequential([nn.BatchNormalization(momentum=momentum), nn.GlobalAveragePooling1D(),
                           nn.Dense(1)], input_shape=(3, 2), rngs=nnx.Rngs(0))
    tx = optax.sgd(0.0)
    graphdef, state = init_state(model, tx)
    fetched = []

    def fetch(data, idx_B):
        fetched.append(idx_B.shape)
        return steps.gather_examples(data, idx_B)

    parallel = DataParallel.create(sharded, batch_size)
    assert (parallel.batch_sharding is not None) == sharded
    config = steps.StepConfig(graphdef, tx, MeanSquaredError(), RegressionMetrics(), fetch=fetch,
                              batch_sharding=parallel.batch_sharding)
    epoch = jax.jit(functools.partial(steps.train_epoch, config, num_examples=num_examples,
                                      batch_size=batch_size, last_batch=last_batch))
    key = jax.random.key(7)
    new, sums = epoch(parallel.put(state), parallel.put({"x": x, "y": y}), key)
    # traced once for the scan's whole batches (and once for the rest)
    assert sorted(fetched) == ([(3,), (4,)] if last_batch == "exact" else [(4,)])
    assert float(sums["count"]) == num_examples

    (idx_SxB, _), (idx_R, _) = steps.training_batches(jax.random.split(key)[0], num_examples, batch_size)
    order = np.concatenate([np.asarray(idx_SxB).ravel(), np.asarray(idx_R)])

    def moving_mean(batches):
        moving = np.zeros(2)
        for idx in batches:
            moving = momentum * moving + (1 - momentum) * x[idx].mean(axis=(0, 1))
        return moving

    want = moving_mean([order[0:4], order[4:8], order[8:11]])
    padded = moving_mean([order[0:4], order[4:8], order[[8, 9, 10, 0]]])  # the last batch filled up
    assert np.abs(want - padded).min() > 0.1
    np.testing.assert_allclose(new.rest["layers"][0]["moving_mean"][...],
                               want if last_batch == "exact" else padded, rtol=1e-6)


@pytest.mark.parametrize(("last_batch", "sizes"), [("auto", [8, 32]), ("pad", [32])])
def test_the_trainer_passes_its_setting_to_the_epoch(tmp_path, monkeypatch, last_batch, sizes):
    """`trainer.last_batch` reaches the compiled epoch (BasicMotions: 40 examples in batches of 32)."""
    traced = set()
    train_step = steps.train_step

    def recording(config, state, batch, valid_B, key):
        traced.add(valid_B.shape[0])
        return train_step(config, state, batch, valid_B, key)

    monkeypatch.setattr(steps, "train_step", recording)
    session = prepare(tiny_config(tmp_path, f"trainer.last_batch={last_batch}", "trainer.seeds=2"))
    keys = replicas.stack([jax.random.key(seed) for seed in session.seeds])
    session.epoch_fn.lower(session.states, session.data.splits["train"].data, keys, np.ones(2, bool))
    assert sorted(traced) == sizes
