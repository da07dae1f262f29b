"""Optimizers from config: an optax transformation, an optional schedule, clipping and a plateau scale.

    optimizer:
      _target_: conv1dx.train.optim.Optimizer
      transform: {_target_: optax.adam, _partial_: true, eps: 1.0e-7}
      learning_rate: 1.0e-3

The learning rate is injected as a hyperparameter and followed by `optax.scale(lr_scale)` whose factor
lives in the optimizer state, so reduce-on-plateau changes it between epochs without recompiling.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax.numpy as jnp
import optax


@dataclass(frozen=True)
class Optimizer:
    """Builds `optax.GradientTransformation`s: clip -> transform(learning_rate) -> plateau scale."""

    transform: Callable[..., optax.GradientTransformation]
    learning_rate: float = 1e-3
    schedule: Callable[..., optax.Schedule] | None = None
    clip_norm: float | None = None
    clip_value: float | None = None

    def __post_init__(self):
        if not self.learning_rate > 0:
            raise ValueError(
                f"optimizer.learning_rate must be > 0, got {self.learning_rate}; e.g. "
                "optimizer.learning_rate=1e-3."
            )
        for name in ("clip_norm", "clip_value"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"optimizer.{name} must be > 0 or null, got {value}.")

    def learning_rate_schedule(self) -> float | optax.Schedule:
        """The base learning rate, or the schedule started at it (`schedule(init_value=lr)`)."""
        return self.learning_rate if self.schedule is None else self.schedule(init_value=self.learning_rate)

    def build(self) -> optax.GradientTransformation:
        parts = []
        if self.clip_norm is not None:
            parts.append(optax.clip_by_global_norm(self.clip_norm))
        if self.clip_value is not None:
            parts.append(optax.clip(self.clip_value))
        parts.append(optax.inject_hyperparams(self.transform)(learning_rate=self.learning_rate_schedule()))
        parts.append(optax.inject_hyperparams(optax.scale)(step_size=1.0))
        return optax.chain(*parts)


def _plateau_state(opt_state):
    return opt_state[-1]


def lr_scale(opt_state) -> jnp.ndarray:
    """The reduce-on-plateau factor inside an optimizer state built by `Optimizer.build`."""
    return _plateau_state(opt_state).hyperparams["step_size"]


def with_lr_scale(opt_state, scale) -> tuple:
    """A copy of `opt_state` with the plateau factor set to `scale` (scalar or per-seed vector)."""
    plateau = _plateau_state(opt_state)
    hyperparams = dict(plateau.hyperparams)
    hyperparams["step_size"] = jnp.asarray(scale, jnp.float32).reshape(hyperparams["step_size"].shape)
    return (*opt_state[:-1], plateau._replace(hyperparams=hyperparams))


def current_learning_rate(opt_state) -> jnp.ndarray:
    """The learning rate the last step used, times the plateau factor."""
    inner = opt_state[-2]
    return inner.hyperparams["learning_rate"] * lr_scale(opt_state)
