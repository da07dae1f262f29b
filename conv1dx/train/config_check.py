"""Fail fast on bad configuration, before any data is loaded or anything compiles.

Hydra already rejects unknown keys given on the command line (configs are in struct mode); this checks
the values, and the keys of configs built in code, with messages that name the key and the fix.
"""

from __future__ import annotations

import difflib

from omegaconf import DictConfig, OmegaConf

from conv1dx.nn.conv_lowering import MODES as CONV_LOWERINGS
from conv1dx.nn.embedding_conv import MODES as EMBEDDING_CONV_FUSIONS
from conv1dx.train.precision import COMPUTE_DTYPES
from conv1dx.train.steps import LAST_BATCH

TRAINER_KEYS = {
    "epochs", "batch_size", "eval_batch_size", "seeds", "validation_split", "steps_per_epoch",
    "early_stopping", "reduce_lr_on_plateau", "class_weight", "resume", "checkpoint", "data_parallel",
    "replica_strategy", "compute_dtype", "conv_lowering", "embedding_conv_fusion", "last_batch",
}
REQUIRED = ("seed", "dataset", "model", "optimizer", "trainer", "logger", "paths")


class ConfigError(ValueError):
    """A configuration value or key is wrong; the message says which and how to fix it."""


def _unknown(section: str, keys, known) -> None:
    for key in keys:
        if key not in known:
            hint = difflib.get_close_matches(key, sorted(known), n=1)
            suggestion = f" Did you mean {section}.{hint[0]}?" if hint else ""
            raise ConfigError(f"Unknown config key {section}.{key}.{suggestion} Known keys: "
                              f"{', '.join(sorted(known))}.")


def _positive_int(name: str, value, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}.")


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError for a missing section, an unknown trainer key or an invalid value."""
    for key in REQUIRED:
        if key not in cfg:
            raise ConfigError(f"The config has no '{key}' section; compose it from conv1dx's conf/ "
                              "(e.g. conv1dx.train.compose_config([...])).")
    trainer = cfg.trainer
    _unknown("trainer", trainer.keys(), TRAINER_KEYS)
    _positive_int("trainer.epochs", trainer.epochs)
    _positive_int("trainer.batch_size", trainer.batch_size)
    _positive_int("trainer.eval_batch_size", trainer.eval_batch_size)
    _positive_int("trainer.seeds", trainer.seeds)
    _positive_int("trainer.steps_per_epoch", trainer.steps_per_epoch, allow_none=True)
    if trainer.replica_strategy not in ("auto", "vmap", "map"):
        raise ConfigError(f"trainer.replica_strategy must be auto, vmap or map, got {trainer.replica_strategy!r}.")
    if trainer.compute_dtype not in COMPUTE_DTYPES:
        raise ConfigError(f"trainer.compute_dtype must be {' or '.join(COMPUTE_DTYPES)}, got "
                          f"{trainer.compute_dtype!r}; e.g. trainer.compute_dtype=bfloat16.")
    if trainer.conv_lowering not in CONV_LOWERINGS:
        raise ConfigError(f"trainer.conv_lowering must be {', '.join(CONV_LOWERINGS)}, got "
                          f"{trainer.conv_lowering!r}; e.g. trainer.conv_lowering=xla.")
    fusion = trainer.get("embedding_conv_fusion", "auto")
    if fusion not in EMBEDDING_CONV_FUSIONS:
        raise ConfigError(f"trainer.embedding_conv_fusion must be {', '.join(EMBEDDING_CONV_FUSIONS)}, got "
                          f"{fusion!r}; e.g. trainer.embedding_conv_fusion=off.")
    last_batch = trainer.get("last_batch", "auto")
    if last_batch not in LAST_BATCH:
        raise ConfigError(f"trainer.last_batch must be {', '.join(LAST_BATCH)}, got {last_batch!r}; e.g. "
                          "trainer.last_batch=exact.")
    if last_batch == "exact" and trainer.steps_per_epoch is not None:
        raise ConfigError("trainer.last_batch=exact has no effect with trainer.steps_per_epoch (every epoch is "
                          "that many whole batches drawn at random); drop one of the two.")
    checkpoint = trainer.checkpoint
    _unknown("trainer.checkpoint", checkpoint.keys(), {"every", "every_seconds", "max_to_keep"})
    _positive_int("trainer.checkpoint.every", checkpoint.every, allow_none=True)
    _positive_int("trainer.checkpoint.max_to_keep", checkpoint.max_to_keep)
    if not 0.0 <= float(trainer.validation_split) < 1.0:
        raise ConfigError(f"trainer.validation_split must be in [0, 1), got {trainer.validation_split}.")
    if not isinstance(cfg.seed, int) or cfg.seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {cfg.seed!r}.")
    learning_rate = OmegaConf.select(cfg, "optimizer.learning_rate")
    if learning_rate is not None and not float(learning_rate) > 0:
        raise ConfigError(f"optimizer.learning_rate must be > 0, got {learning_rate}; e.g. "
                          "optimizer.learning_rate=1e-3.")
    layers = OmegaConf.select(cfg, "model.layers")
    if not layers:
        raise ConfigError("model.layers must be a non-empty list of layer specs with _target_.")
    if OmegaConf.select(cfg, "model.loss") is None:
        raise ConfigError("model.loss is missing; e.g. {_target_: conv1dx.train.losses."
                          "SparseCategoricalCrossentropy}.")
