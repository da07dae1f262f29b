"""Metrics as sums accumulated on device and finalized on the host once per epoch.

`batch_sums(outputs, targets_B, weights_B)` returns a dict of arrays that add up across batches (and across
epochs' steps inside `lax.scan`); `finalize(sums)` turns the totals into the reported numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from conv1dx.train.losses import align, per_example_mean


def _squeeze_last(outputs: jax.Array) -> jax.Array:
    return outputs[..., 0] if outputs.ndim > 1 and outputs.shape[-1] == 1 else outputs


@dataclass(frozen=True)
class ClassificationMetrics:
    """Accuracy, confusion matrix and per-class precision / recall / F1 for `num_classes` classes.

    Outputs are logits `BxK` (K = num_classes), or `B`/`Bx1` logits of a binary problem (threshold 0).
    """

    num_classes: int
    class_names: tuple[str, ...] = ()

    def predictions(self, outputs: jax.Array) -> jax.Array:
        if outputs.ndim == 1 or outputs.shape[-1] == 1:
            return (_squeeze_last(outputs) > 0).astype(jnp.int32)
        return jnp.argmax(outputs, axis=-1).astype(jnp.int32)

    def batch_sums(self, outputs, targets_B, weights_B, *, confusion: bool = False) -> dict:
        predicted_B = self.predictions(outputs)
        targets_B = targets_B.astype(jnp.int32)
        sums = {"correct": jnp.sum(weights_B * (predicted_B == targets_B))}
        if confusion:
            onehot_true = jax.nn.one_hot(targets_B, self.num_classes) * weights_B[:, None]
            onehot_pred = jax.nn.one_hot(predicted_B, self.num_classes)
            sums["confusion"] = onehot_true.T @ onehot_pred  # rows: true class, columns: predicted
        return sums

    def finalize(self, sums: dict, count: float) -> dict:
        metrics = {"accuracy": float(sums["correct"]) / max(count, 1.0)}
        if "confusion" in sums:
            metrics.update(classification_report(np.asarray(sums["confusion"]), self.class_names))
        return metrics


def classification_report(confusion_KxK: np.ndarray, class_names=()) -> dict:
    """Per-class precision, recall, F1 and support from a confusion matrix (rows true, columns predicted)."""
    confusion_KxK = np.asarray(confusion_KxK, np.float64)
    true_positive = np.diag(confusion_KxK)
    predicted = confusion_KxK.sum(axis=0)
    support = confusion_KxK.sum(axis=1)
    precision = np.divide(true_positive, predicted, out=np.zeros_like(true_positive), where=predicted > 0)
    recall = np.divide(true_positive, support, out=np.zeros_like(true_positive), where=support > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(denominator),
                   where=denominator > 0)
    names = list(class_names) or [str(i) for i in range(len(support))]
    per_class = {
        name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
    }
    weights = support / max(support.sum(), 1.0)
    return {
        "macro_f1": float(f1.mean()),
        "weighted_f1": float((f1 * weights).sum()),
        "per_class": per_class,
        "confusion_matrix": confusion_KxK.astype(int).tolist(),
    }


@dataclass(frozen=True)
class RegressionMetrics:
    """MAE and MSE in normalized units and, with `target_scale` (the target's std), in physical units."""

    target_scale: float = 1.0
    unit: str = ""

    def batch_sums(self, outputs, targets, weights_B, *, confusion: bool = False) -> dict:
        predictions, targets = align(outputs, targets)
        error = predictions - targets
        return {"abs_error": jnp.sum(weights_B * per_example_mean(jnp.abs(error))),
                "sq_error": jnp.sum(weights_B * per_example_mean(jnp.square(error)))}

    def finalize(self, sums: dict, count: float) -> dict:
        mae = float(sums["abs_error"]) / max(count, 1.0)
        mse = float(sums["sq_error"]) / max(count, 1.0)
        metrics = {"mae": mae, "mse": mse}
        if self.target_scale != 1.0:
            metrics["mae_physical"] = mae * self.target_scale
            metrics["rmse_physical"] = float(np.sqrt(mse)) * self.target_scale
        return metrics
