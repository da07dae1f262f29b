"""Losses and metrics against NumPy formulas."""

import jax.numpy as jnp
import numpy as np
import pytest

from conv1dx.train import losses
from conv1dx.train.metrics import ClassificationMetrics, RegressionMetrics, classification_report

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(6, 4)).astype(np.float32)
LABELS = np.array([0, 3, 1, 1, 2, 0])


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_cross_entropies():
    want = -_log_softmax(LOGITS.astype(np.float64))[np.arange(6), LABELS]
    got = losses.SparseCategoricalCrossentropy()(jnp.asarray(LOGITS), jnp.asarray(LABELS))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)
    got = losses.CategoricalCrossentropy()(jnp.asarray(LOGITS), jnp.asarray(np.eye(4)[LABELS]))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)
    smooth = 0.1
    soft = np.eye(4)[LABELS] * (1 - smooth) + smooth / 4
    want_smooth = -(soft * _log_softmax(LOGITS.astype(np.float64))).sum(-1)
    got = losses.SparseCategoricalCrossentropy(label_smoothing=smooth)(jnp.asarray(LOGITS), jnp.asarray(LABELS))
    np.testing.assert_allclose(np.asarray(got), want_smooth, rtol=1e-5)


def test_binary_cross_entropy_and_regression_losses():
    z = RNG.normal(size=(5, 1)).astype(np.float32)
    t = np.array([0, 1, 1, 0, 1], np.float32)
    p = 1 / (1 + np.exp(-z[:, 0].astype(np.float64)))
    want = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    np.testing.assert_allclose(np.asarray(losses.BinaryCrossentropy()(jnp.asarray(z), jnp.asarray(t))), want,
                               rtol=1e-5)
    pred = RNG.normal(size=(5, 3, 2)).astype(np.float32)
    target = RNG.normal(size=(5, 3, 2)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(losses.MeanAbsoluteError()(pred, target)),
                               np.abs(pred - target).mean(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(losses.MeanSquaredError()(pred[..., :1], target[..., 0])),
                               ((pred[..., 0] - target[..., 0]) ** 2).mean(axis=1), rtol=1e-6)
    with pytest.raises(ValueError, match="do not match targets"):
        losses.MeanAbsoluteError()(jnp.ones((5, 2)), jnp.ones((5, 3)))


def test_classification_report_from_a_hand_made_confusion_matrix():
    confusion = np.array([[5, 1, 0], [2, 3, 1], [0, 0, 4]])  # rows true, columns predicted
    report = classification_report(confusion, ("a", "b", "c"))
    assert report["per_class"]["a"]["precision"] == pytest.approx(5 / 7)
    assert report["per_class"]["b"]["recall"] == pytest.approx(3 / 6)
    f1_c = 2 * (4 / 5) * 1.0 / (4 / 5 + 1.0)
    assert report["per_class"]["c"]["f1"] == pytest.approx(f1_c)
    assert report["per_class"]["b"]["support"] == 6


def test_metric_sums_match_numpy():
    metrics = ClassificationMetrics(4)
    weights = np.array([1, 1, 1, 1, 0, 1], np.float32)  # one padded slot
    sums = metrics.batch_sums(jnp.asarray(LOGITS), jnp.asarray(LABELS), jnp.asarray(weights), confusion=True)
    predicted = LOGITS.argmax(-1)
    assert float(sums["correct"]) == float(((predicted == LABELS) * weights).sum())
    want = np.zeros((4, 4))
    for t, p, w in zip(LABELS, predicted, weights, strict=True):
        want[t, p] += w
    np.testing.assert_array_equal(np.asarray(sums["confusion"]), want)
    regression = RegressionMetrics(target_scale=8.0)
    out = np.array([[1.0], [2.0], [4.0]], np.float32)
    target = np.array([1.5, 2.0, 3.0], np.float32)
    sums = regression.batch_sums(jnp.asarray(out), jnp.asarray(target), jnp.ones(3))
    final = regression.finalize(sums, 3.0)
    assert final["mae"] == pytest.approx(0.5) and final["mae_physical"] == pytest.approx(4.0)
    assert final["mse"] == pytest.approx((0.25 + 1.0) / 3)


@pytest.mark.slow
def test_class_weights_weight_each_example_by_its_class():
    """Keras' weighting: sum of class-weighted losses over the batch size (here 6 examples)."""
    import jax
    import optax
    from flax import nnx

    from conv1dx import nn
    from conv1dx.train import steps
    from conv1dx.train.state import init_state

    model = nn.Sequential([nn.Flatten(), nn.Dense(4)], input_shape=(3, 2), rngs=nnx.Rngs(0))
    tx = optax.sgd(0.1)
    graphdef, state = init_state(model, tx)
    x = RNG.normal(size=(6, 3, 2)).astype(np.float32)
    weights = np.array([0.5, 0.0, 0.0, 2.0])
    config = steps.StepConfig(graphdef, tx, losses.SparseCategoricalCrossentropy(), ClassificationMetrics(4),
                              class_weights=tuple(weights))
    _, sums = steps.train_step(config, state, {"x": x, "y": LABELS}, jnp.ones(6), jax.random.key(0))
    kernel = np.asarray(model.layers[1].kernel[...], np.float64)
    bias = np.asarray(model.layers[1].bias[...], np.float64)
    per_example = -_log_softmax(x.reshape(6, 6) @ kernel + bias)[np.arange(6), LABELS]
    want = np.sum(weights[LABELS] * per_example) / 6
    assert float(sums["loss"]) / float(sums["count"]) == pytest.approx(want, rel=1e-5)
