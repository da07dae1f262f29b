"""Seed replicas: R independently initialized models trained together in one compiled program.

Every TrainState here carries a leading replica axis R (R = 1 for a single seed). Replica i uses seed
`seed + i` for its initialization, shuffling and dropout, so replica i of a vmapped run follows the same
computation as a separate run with that seed. Replicas run under `vmap` or `lax.map`
(`resolve_strategy`); with R = 1 the functions run on the single replica directly.
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


STRATEGIES = ("auto", "vmap", "map")


def resolve_strategy(strategy: str) -> str:
    """"auto" picks `lax.map` on CPU and `vmap` on accelerators.

    On a 2-core CPU, XLA runs the batched matmuls and grouped convolutions that `vmap` produces without
    its intra-op threading: 10 vmapped HAR replicas took 2.55x the time of 10 single-replica epochs,
    while `lax.map` (replicas one after another inside the same compiled program) took 0.99x
    (measured with experiments/replicas/bench.py). On GPUs and TPUs `vmap` fills the device.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"trainer.replica_strategy must be one of {STRATEGIES}, got {strategy!r}.")
    if strategy == "auto":
        return "map" if jax.default_backend() == "cpu" else "vmap"
    return strategy


def _over_replicas(fn, replicas: int, in_axes, name: str, strategy: str = "auto"):
    """`fn` applied to every replica: arguments with in_axes 0 carry a leading replica axis."""
    strategy = resolve_strategy(strategy)
    if replicas > 1 and strategy == "vmap":
        batched = jax.vmap(fn, in_axes=in_axes)
    elif replicas > 1:
        def batched(*args):
            def one(per_replica):
                values = iter(per_replica)
                return fn(*[next(values) if axis == 0 else a for a, axis in zip(args, in_axes, strict=True)])

            return jax.lax.map(one, [a for a, axis in zip(args, in_axes, strict=True) if axis == 0])
    else:
        def batched(*args):
            squeezed = [unstack(a, 0) if axis == 0 else a for a, axis in zip(args, in_axes, strict=True)]
            return jax.tree.map(lambda leaf: leaf[None], fn(*squeezed))
    batched.__name__ = batched.__qualname__ = name  # what jax.log_compiles and profiles show
    return batched


def compile_epoch(config: steps.StepConfig, replicas: int, *, num_examples: int, batch_size: int,
                  steps_per_epoch: int | None = None, strategy: str = "auto", last_batch: str = "auto"):
    """jit((states, data, keys_R, active_R) -> (states, sums)) over all replicas; states are donated.

    A replica whose `active` flag is False (stopped early) keeps its state unchanged.
    """
    epoch = functools.partial(steps.train_epoch, config, num_examples=num_examples,
                              batch_size=batch_size, steps_per_epoch=steps_per_epoch, last_batch=last_batch)

    def epoch_if_active(state, data, key, active):
        new_state, sums = epoch(state, data, key)
        return jax.tree.map(lambda new, old: jnp.where(active, new, old), new_state, state), sums

    return jax.jit(_over_replicas(epoch_if_active, replicas, (0, None, 0, 0), "conv1dx_train_epoch",
                                  strategy), donate_argnums=0)


def compile_evaluate(config: steps.StepConfig, replicas: int, *, num_examples: int, batch_size: int,
                     confusion: bool = False, strategy: str = "auto"):
    """jit((states, data) -> sums) over all replicas."""
    evaluate = functools.partial(steps.evaluate, config, num_examples=num_examples,
                                 batch_size=batch_size, confusion=confusion)
    return jax.jit(_over_replicas(evaluate, replicas, (0, None), "conv1dx_evaluate", strategy))


def select(mask_R, new: TrainState, old: TrainState) -> TrainState:
    """Per replica, `new` where mask_R is True, else `old` (freezes stopped replicas)."""
    mask_R = jnp.asarray(mask_R)
    return jax.tree.map(
        lambda a, b: jnp.where(mask_R.reshape((-1,) + (1,) * (a.ndim - 1)), a, b), new, old)
