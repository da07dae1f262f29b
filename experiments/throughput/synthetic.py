"""Random data of the seed datasets' shapes: a dataset for conv1dx's engine, arrays for the peers.

`seed_dataset(dataset_cfg, num_examples)` returns what the configured loader would return, filled
with random values of the real shapes and dtypes, so the engine's own `TrainingData.from_dataset`
puts it on the device exactly as in training. `as_dataset_node(dataset_cfg, num_examples, seed)` is
the config node that makes `conv1dx.train.session.prepare` load it instead of the real data:

  * IMDB:   ArrayDataset, token ids `x (N, maxlen)` int32 in [0, num_words), `y (N,)` in {0, 1};
  * UCI HAR: ArrayDataset, `x (N, 128, 9)` float32, `y (N,)` in 0..5;
  * WISDM:  ArrayDataset, `x (N, window, 3)` float32, `y (N,)` in 0..5;
  * Jena:   WindowedSeries over a `(N + lookback + delay + 1, 14)` series with exactly N training
            windows `(ceil(lookback / step), 14)`, gathered on the device per batch as in training.

Any other loader (BasicMotions, toy, synthetic: all offline) is instantiated as configured.
`peer_arrays(workload)` gives the Keras and PyTorch references arrays of the same per-example
shapes: `x (N, *input_shape)` and `y (N,)`, or `y (N, 1)` for regression, with N = steps *
batch_size so that an epoch is exactly `steps` full batches in every framework.
"""

from __future__ import annotations

from collections.abc import Mapping

import hydra.utils
import numpy as np
from omegaconf import OmegaConf

from conv1dx.data.dataset import ArrayDataset, Split
from conv1dx.data.windows import WindowedSeries, WindowSpec

HAR_SHAPE, HAR_CLASSES = (128, 9), 6
WISDM_CHANNELS, WISDM_CLASSES = 3, 6
JENA_FEATURES = 14


def _classification(name: str, x: np.ndarray, num_classes: int, rng, metadata=None) -> ArrayDataset:
    y = rng.integers(0, num_classes, len(x)).astype(np.int32)
    return ArrayDataset(name=f"synthetic_{name}", splits={"train": Split(x, y)},
                        num_classes=num_classes,
                        class_names=tuple(str(k) for k in range(num_classes)),
                        metadata=metadata or {})


def as_dataset_node(dataset_cfg: Mapping, num_examples: int, seed: int = 0) -> dict:
    """A `dataset:` config node whose `_target_` is `seed_dataset` for `dataset_cfg`'s loader."""
    like = OmegaConf.to_container(dataset_cfg, resolve=True) if OmegaConf.is_config(dataset_cfg) \
        else dict(dataset_cfg)
    like["loader"] = like.pop("_target_")  # not a `_target_`, so Hydra does not instantiate it
    return {"_target_": f"{__name__}.seed_dataset", "dataset_cfg": like,
            "num_examples": int(num_examples), "seed": int(seed)}


def seed_dataset(dataset_cfg: Mapping, num_examples: int, seed: int = 0):
    """A random dataset shaped like `dataset_cfg`'s loader output, `num_examples` training examples.

    `dataset_cfg` is a dataset config node; its loader is its `_target_` (or `loader`, see
    `as_dataset_node`).
    """
    if OmegaConf.is_config(dataset_cfg):
        dataset_cfg = OmegaConf.to_container(dataset_cfg, resolve=True)
    dataset_cfg = dict(dataset_cfg)
    target = dataset_cfg.pop("_target_", None) or dataset_cfg.pop("loader")
    rng = np.random.default_rng(seed)
    n = int(num_examples)
    if target.endswith("imdb.load_imdb"):
        words, maxlen = int(dataset_cfg["num_words"]), int(dataset_cfg["maxlen"])
        x = rng.integers(0, words, (n, maxlen)).astype(np.int32)
        return _classification("imdb", x, 2, rng, {"vocab_size": words})
    if target.endswith("uci_har.load_uci_har"):
        x = rng.standard_normal((n, *HAR_SHAPE), dtype=np.float32)
        return _classification("uci_har", x, HAR_CLASSES, rng)
    if target.endswith("wisdm.load_wisdm"):
        x = rng.standard_normal((n, int(dataset_cfg["window"]), WISDM_CHANNELS), dtype=np.float32)
        return _classification("wisdm", x, WISDM_CLASSES, rng)
    if target.endswith("jena.load_jena"):
        spec = WindowSpec(*(int(dataset_cfg[key]) for key in ("lookback", "step", "delay",
                                                               "target_col")))
        rows = n + spec.lookback + spec.delay + 1
        series = rng.standard_normal((rows, JENA_FEATURES), dtype=np.float32)
        return WindowedSeries("synthetic_jena", series, {"train": (0, None)}, spec,
                              mean=np.zeros(JENA_FEATURES, np.float32),
                              std=np.ones(JENA_FEATURES, np.float32))
    return hydra.utils.instantiate({"_target_": target, **dataset_cfg}, _convert_="all")


def peer_arrays(workload: dict, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random `(x, y)` for the reference frameworks, shaped as the workload describes."""
    rng = np.random.default_rng(seed)
    n = int(workload["steps"]) * int(workload["batch_size"])
    shape = tuple(workload["input_shape"])
    if workload["x_dtype"].startswith("int"):
        x = rng.integers(0, int(workload["vocab_size"]), (n, *shape)).astype(np.int32)
    else:
        x = rng.standard_normal((n, *shape), dtype=np.float32)
    if workload["task"] == "classification":
        y = rng.integers(0, int(workload["num_classes"]), n).astype(np.int32)
    else:
        y = rng.standard_normal((n, 1), dtype=np.float32)
    return x, y
