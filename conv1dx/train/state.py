"""The training state: a pytree of arrays the compiled epoch carries, donates and checkpoints."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx


class TrainState(NamedTuple):
    """params: trainable weights; rest: other model state (BatchNorm statistics, ...);
    opt_state: optax state; step: optimizer steps taken; nonfinite: steps skipped for a NaN/Inf loss."""

    params: Any
    rest: Any
    opt_state: Any
    step: jax.Array
    nonfinite: jax.Array


def split_model(model: nnx.Module):
    """(graphdef, params, rest): the static structure, the trainable weights and everything else."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    return graphdef, params, rest


def init_state(model: nnx.Module, tx: optax.GradientTransformation) -> tuple[Any, TrainState]:
    """The graphdef and a fresh TrainState for `model` and optimizer `tx`."""
    graphdef, params, rest = split_model(model)
    state = TrainState(params=params, rest=rest, opt_state=tx.init(params),
                       step=jnp.zeros((), jnp.int32), nonfinite=jnp.zeros((), jnp.int32))
    return graphdef, state


def merge_model(graphdef, state: TrainState) -> nnx.Module:
    """A live model from a graphdef and a TrainState (for evaluation, export or notebooks)."""
    return nnx.merge(graphdef, state.params, state.rest)
