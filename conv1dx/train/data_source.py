"""Datasets on the device, in the form the compiled epoch consumes.

`TrainingData.from_dataset` takes what a `conv1dx.data` loader returns (an `ArrayDataset`, or a
`WindowedSeries` whose windows are gathered on the device from one resident series) and gives each split
as a dict of device arrays plus the `fetch(data, idx_B) -> batch` function that turns example indices into
a batch. No split is ever expanded into all its windows on the host.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from conv1dx.data.dataset import ArrayDataset, Split
from conv1dx.data.windows import WindowedSeries, gather_windows
from conv1dx.train.metrics import ClassificationMetrics, RegressionMetrics
from conv1dx.train.steps import gather_examples

VALIDATION_NAMES = ("validation", "val", "valid")


@dataclass(frozen=True)
class DeviceSplit:
    data: dict
    num_examples: int


@dataclass(frozen=True)
class WindowFetch:
    """Fetch for a windowed series: rows -> (x_BxLxC, y_B) gathered on the device."""

    lookback: int
    step: int
    delay: int
    target_col: int

    def __call__(self, data: dict, idx_B: jax.Array) -> dict:
        x, y = gather_windows(data["series"], data["rows"][idx_B], self.lookback, self.step, self.delay,
                              self.target_col)
        return {"x": x, "y": y}


@dataclass
class TrainingData:
    """Device-resident splits ("train", optional "val", optional "test") plus the dataset's facts."""

    name: str
    splits: dict[str, DeviceSplit]
    fetch: Callable
    input_shape: tuple
    metrics: object
    facts: dict = field(default_factory=dict)
    baseline: dict = field(default_factory=dict)
    source: object = None

    @classmethod
    def from_dataset(cls, dataset, *, validation_split: float = 0.0, put=jax.device_put) -> TrainingData:
        if isinstance(dataset, WindowedSeries):
            return _from_windowed(dataset, validation_split, put)
        if isinstance(dataset, ArrayDataset):
            return _from_arrays(dataset, validation_split, put)
        raise TypeError(
            f"The dataset loader returned a {type(dataset).__name__}; expected a conv1dx.data "
            "ArrayDataset or WindowedSeries."
        )


def _split_arrays(split: Split, put) -> DeviceSplit:
    data = {"x": put(np.asarray(split.x)), "y": put(np.asarray(split.y))}
    if split.lengths is not None:
        data["mask"] = put(split.mask)
    return DeviceSplit(data, len(split))


def _hold_out(split: Split, fraction: float, stratify: bool) -> tuple[Split, Split]:
    """Hold out `fraction` of the training examples for validation, the same for every seed.

    Classification: a stratified random subset (fixed seed 0), so every class is represented even when
    the file is sorted by class (Keras' `validation_split` takes the file's tail and can hold out a whole
    class). Regression: the chronological tail, as Keras does.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"trainer.validation_split must be in (0, 1), got {fraction}.")
    n = len(split)
    if stratify:
        rng = np.random.default_rng(0)
        held = []
        for label in np.unique(split.y):
            members = np.flatnonzero(split.y == label)
            held.append(rng.permutation(members)[:int(round(len(members) * fraction))])
        val_idx = np.sort(np.concatenate(held))
    else:
        val_idx = np.arange(n - int(n * fraction), n)
    if len(val_idx) == 0 or len(val_idx) == n:
        raise ValueError(
            f"trainer.validation_split={fraction} leaves an empty split of {n} training examples."
        )
    train_idx = np.setdiff1d(np.arange(n), val_idx)
    return split.subset(train_idx), split.subset(val_idx)


def _from_arrays(dataset: ArrayDataset, validation_split: float, put) -> TrainingData:
    splits = dict(dataset.splits)
    if "train" not in splits:
        raise ValueError(f"Dataset {dataset.name!r} has no 'train' split (it has {sorted(splits)}).")
    val_name = next((name for name in VALIDATION_NAMES if name in splits), None)
    if validation_split:
        splits["train"], splits["val"] = _hold_out(splits["train"], validation_split,
                                                   stratify=dataset.task == "classification")
    elif val_name is not None:
        splits["val"] = splits.pop(val_name)
    device = {name: _split_arrays(split, put) for name, split in splits.items()
              if name in ("train", "val", "test")}
    if dataset.task == "classification":
        metrics = ClassificationMetrics(int(dataset.num_classes), tuple(dataset.class_names))
    else:
        metrics = RegressionMetrics()
    facts = {"num_classes": dataset.num_classes, "input_shape": tuple(dataset.input_shape),
             "num_channels": dataset.input_shape[-1] if len(dataset.input_shape) > 1 else None,
             "seq_len": dataset.input_shape[0],
             "vocab_size": dataset.metadata.get("vocab_size")}
    return TrainingData(dataset.name, device, gather_examples, tuple(dataset.input_shape), metrics,
                        facts, source=dataset)


def _from_windowed(dataset: WindowedSeries, validation_split: float, put) -> TrainingData:
    if validation_split:
        raise ValueError("trainer.validation_split does not apply to a windowed series: its "
                         "chronological train/val/test ranges are set in the dataset config.")
    series = put(dataset.series)
    splits = {}
    for name in dataset.ranges:
        key = "val" if name in VALIDATION_NAMES else name
        rows = dataset.rows(name)
        splits[key] = DeviceSplit({"series": series, "rows": put(jnp.asarray(rows))}, len(rows))
    spec = dataset.spec
    fetch = WindowFetch(spec.lookback, spec.step, spec.delay, spec.target_col)
    scale = float(dataset.std[spec.target_col])
    unit = dataset.feature_names[spec.target_col] if dataset.feature_names else ""
    baseline = {}  # the common-sense forecast's MAE per evaluated split, e.g. "val_baseline_mae"
    for name in dataset.ranges:
        key = "val" if name in VALIDATION_NAMES else name
        if key != "train":
            scores = dataset.common_sense_mae(name)
            baseline[f"{key}_baseline_mae"] = scores["mae"]
            baseline[f"{key}_baseline_mae_physical"] = scores["mae_physical"]
    facts = {"num_classes": None, "input_shape": tuple(dataset.window_shape),
             "num_channels": dataset.num_features, "seq_len": dataset.window_shape[0],
             "vocab_size": None}
    return TrainingData(dataset.name, splits, fetch, tuple(dataset.window_shape),
                        RegressionMetrics(target_scale=scale, unit=unit), facts, baseline, dataset)
