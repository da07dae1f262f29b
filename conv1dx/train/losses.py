"""Per-example losses, computed from the model's raw outputs (logits for classification).

Each loss maps `outputs` and integer or float `targets_B` to `loss_B`; the training step weights and
averages them. Using logits (no softmax/sigmoid in the model's last layer) keeps the log-probabilities
numerically stable; the metrics take the argmax, which is the same either way.
"""

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax


def _squeeze_last(outputs_Bx1: jax.Array) -> jax.Array:
    return outputs_Bx1[..., 0] if outputs_Bx1.ndim > 1 and outputs_Bx1.shape[-1] == 1 else outputs_Bx1


def align(predictions: jax.Array, targets: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Predictions shaped like the targets: a trailing unit axis (`Bx1` for `B` targets) is dropped."""
    if predictions.ndim == targets.ndim + 1 and predictions.shape[-1] == 1:
        predictions = predictions[..., 0]
    if predictions.shape != targets.shape:
        raise ValueError(f"Model outputs {predictions.shape} do not match targets {targets.shape}.")
    return predictions, targets.astype(predictions.dtype)


def per_example_mean(values: jax.Array) -> jax.Array:
    """Mean over every axis but the batch axis: `B...` -> `B`."""
    return values.reshape(values.shape[0], -1).mean(axis=1)


@dataclass(frozen=True)
class SparseCategoricalCrossentropy:
    """-log softmax(logits_BxK)[y] for integer class ids `targets_B`; optional label smoothing."""

    label_smoothing: float = 0.0

    def __call__(self, logits_BxK: jax.Array, targets_B: jax.Array) -> jax.Array:
        if self.label_smoothing:
            k = logits_BxK.shape[-1]
            onehot = jax.nn.one_hot(targets_B, k)
            soft = onehot * (1 - self.label_smoothing) + self.label_smoothing / k
            return optax.softmax_cross_entropy(logits_BxK, soft)
        return optax.softmax_cross_entropy_with_integer_labels(logits_BxK, targets_B.astype(jnp.int32))


@dataclass(frozen=True)
class CategoricalCrossentropy:
    """Cross-entropy against one-hot (or soft) `targets_BxK`; integer `targets_B` are one-hot encoded."""

    label_smoothing: float = 0.0

    def __call__(self, logits_BxK: jax.Array, targets: jax.Array) -> jax.Array:
        k = logits_BxK.shape[-1]
        probs = jax.nn.one_hot(targets, k) if targets.ndim == 1 else targets
        if self.label_smoothing:
            probs = probs * (1 - self.label_smoothing) + self.label_smoothing / k
        return optax.softmax_cross_entropy(logits_BxK, probs)


@dataclass(frozen=True)
class BinaryCrossentropy:
    """Sigmoid cross-entropy of `logits_B` or `logits_Bx1` against 0/1 `targets_B`."""

    def __call__(self, logits: jax.Array, targets_B: jax.Array) -> jax.Array:
        return optax.sigmoid_binary_cross_entropy(_squeeze_last(logits), targets_B.astype(logits.dtype))


@dataclass(frozen=True)
class MeanSquaredError:
    """Mean of (prediction - target)^2 per example; targets `B` (with `Bx1` outputs) or any `B...`."""

    def __call__(self, predictions: jax.Array, targets: jax.Array) -> jax.Array:
        predictions, targets = align(predictions, targets)
        return per_example_mean(jnp.square(predictions - targets))


@dataclass(frozen=True)
class MeanAbsoluteError:
    """Mean of |prediction - target| per example; targets `B` (with `Bx1` outputs) or any `B...`."""

    def __call__(self, predictions: jax.Array, targets: jax.Array) -> jax.Array:
        predictions, targets = align(predictions, targets)
        return per_example_mean(jnp.abs(predictions - targets))
