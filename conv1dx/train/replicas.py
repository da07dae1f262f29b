"""Seed replicas: R independently initialized models trained together in one program with `vmap`.

Every TrainState here carries a leading replica axis R (R = 1 for a single seed). Replica i uses seed
`seed + i` for its initialization, shuffling and dropout, so replica i of a vmapped run follows the same
computation as a separate run with that seed. With R = 1 the functions run without `vmap`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from conv1dx.train import steps
from conv1dx.train.state import TrainState, init_state


def stack(trees: list):
    """Stack pytrees of the same structure along a new leading axis."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def unstack(tree, index: int):
    """Replica `index` of a stacked pytree."""
    return jax.tree.map(lambda leaf: leaf[index], tree)


def init_replicas(make_model, seeds: list[int], tx):
    """(graphdef, stacked TrainState) for models `make_model(seed)` of every seed."""
    states, graphdef = [], None
    for seed in seeds:
        graphdef, state = init_state(make_model(seed), tx)
        states.append(state)
    return graphdef, stack(states)


def _over_replicas(fn, replicas: int, in_axes, name: str):
    if replicas > 1:
        batched = jax.vmap(fn, in_axes=in_axes)
    else:
        def batched(*args):
            squeezed = [unstack(a, 0) if axis == 0 else a for a, axis in zip(args, in_axes, strict=True)]
            return jax.tree.map(lambda leaf: leaf[None], fn(*squeezed))
    batched.__name__ = batched.__qualname__ = name  # what jax.log_compiles and profiles show
    return batched


def compile_epoch(config: steps.StepConfig, replicas: int, *, num_examples: int, batch_size: int,
                  steps_per_epoch: int | None = None):
    """jit((states, data, keys_R, active_R) -> (states, sums)) over all replicas; states are donated.

    A replica whose `active` flag is False (stopped early) keeps its state unchanged.
    """
    epoch = functools.partial(steps.train_epoch, config, num_examples=num_examples,
                              batch_size=batch_size, steps_per_epoch=steps_per_epoch)

    def epoch_if_active(state, data, key, active):
        new_state, sums = epoch(state, data, key)
        return jax.tree.map(lambda new, old: jnp.where(active, new, old), new_state, state), sums

    return jax.jit(_over_replicas(epoch_if_active, replicas, (0, None, 0, 0), "conv1dx_train_epoch"),
                   donate_argnums=0)


def compile_evaluate(config: steps.StepConfig, replicas: int, *, num_examples: int, batch_size: int,
                     confusion: bool = False):
    """jit((states, data) -> sums) over all replicas."""
    evaluate = functools.partial(steps.evaluate, config, num_examples=num_examples,
                                 batch_size=batch_size, confusion=confusion)
    return jax.jit(_over_replicas(evaluate, replicas, (0, None), "conv1dx_evaluate"))


def select(mask_R, new: TrainState, old: TrainState) -> TrainState:
    """Per replica, `new` where mask_R is True, else `old` (freezes stopped replicas)."""
    mask_R = jnp.asarray(mask_R)
    return jax.tree.map(
        lambda a, b: jnp.where(mask_R.reshape((-1,) + (1,) * (a.ndim - 1)), a, b), new, old)
