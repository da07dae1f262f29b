"""The compiled core: a pure train step, a whole epoch as one `lax.scan`, and evaluation.

Data stays on the device. A training epoch draws a permutation and scans the train step over its
batches. The last partial batch is either filled up with repeated examples of weight 0 (one step shape,
one compilation; every example still counts once in the loss and metrics) or taken as one more step at
its own size, as Keras does (BatchNormalization then sees the real examples only, and no work is spent
on filler; the step is compiled twice): `LAST_BATCH`, `own_last_step`. Evaluation always fills up.
Metrics are sums carried through the scan and returned once per epoch.

Shapes: N examples, S steps per epoch, B batch size, R examples in the last partial batch.
`fetch(data, idx_B)` returns the batch dict {"x": ..., "y": y_B, optional "mask": mask_BxT} for example
indices `idx_B`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from conv1dx import nn
from conv1dx.train import precision
from conv1dx.train.state import TrainState

Fetch = Callable[[dict, jax.Array], dict]


def gather_examples(data: dict, idx_B: jax.Array) -> dict:
    """The default fetch: rows `idx_B` of every array of a split."""
    return {name: array[idx_B] for name, array in data.items()}


def batch_plan(key: jax.Array | None, num_examples: int, batch_size: int,
               steps_per_epoch: int | None = None):
    """Example indices `idx_SxB` and weights `valid_SxB` for one epoch.

    By default every example is seen once: a permutation (natural order when `key` is None, for
    evaluation) with the last batch filled up by repeated indices of weight 0. With `steps_per_epoch`
    an epoch is that many full batches drawn at random (without replacement while the epoch fits in the
    split, with replacement beyond it, like the Keras generators of the Jena example).
    """
    if steps_per_epoch is not None:
        total = steps_per_epoch * batch_size
        if total <= num_examples:
            idx = jax.random.permutation(key, num_examples)[:total]
        else:
            idx = jax.random.randint(key, (total,), 0, num_examples)
        return idx.reshape(steps_per_epoch, batch_size), jnp.ones((steps_per_epoch, batch_size))
    steps = -(-num_examples // batch_size)
    order = jnp.arange(num_examples) if key is None else jax.random.permutation(key, num_examples)
    slots = jnp.arange(steps * batch_size)
    idx = order[slots % num_examples]
    valid = (slots < num_examples).astype(jnp.float32)
    return idx.reshape(steps, batch_size), valid.reshape(steps, batch_size)


LAST_BATCH = ("auto", "exact", "pad")
# "auto" takes the last partial batch at its own size when filling it up would add at least this share
# to the examples an epoch computes: ACSF1's 100 examples in batches of 32 would compute 128 (+28%; the
# own step's gain and its extra compilation are measured in experiments/small_data/README.md); IMDB's
# 20,000 in batches of 128 compute 20,096 (+0.5%), where a second step shape could save at most 0.5% of
# an epoch and would still add a compilation.
MIN_FILLER_SHARE = 0.05


def own_last_step(num_examples: int, batch_size: int, last_batch: str = "auto",
                  steps_per_epoch: int | None = None) -> bool:
    """Whether an epoch takes its last partial batch as a step of its own size (see `LAST_BATCH`)."""
    if last_batch not in LAST_BATCH:
        raise ValueError(f"last_batch must be one of {LAST_BATCH}, got {last_batch!r}.")
    filler = -num_examples % batch_size
    if steps_per_epoch is not None or filler == 0 or last_batch == "pad":
        return False
    return last_batch == "exact" or filler >= MIN_FILLER_SHARE * num_examples


def training_batches(key: jax.Array, num_examples: int, batch_size: int):
    """One training epoch's batches: (idx_SxB, valid_SxB) whole batches, then the last partial batch
    (idx_R, valid_R) of R = N mod B examples, or None when N is a multiple of B.

    The examples come in the order `batch_plan` draws for `key`; every weight is 1. Under data
    parallelism R need not divide among the devices: XLA splits the batch unevenly, so no example is
    repeated (BatchNormalization's statistics stay those of the real examples).
    """
    order = jax.random.permutation(key, num_examples)
    whole, rest = divmod(num_examples, batch_size)
    idx_SxB = order[:whole * batch_size].reshape(whole, batch_size)
    full = (idx_SxB, jnp.ones((whole, batch_size), jnp.float32))
    if rest == 0:
        return full, None
    return full, (order[whole * batch_size:], jnp.ones((rest,), jnp.float32))


@dataclass(frozen=True)
class StepConfig:
    """What the compiled functions close over: all static, none derived from traced values.

    `compute_dtype`: the dtype the model's forward pass runs in (`precision`); weights, optimizer
    state, loss and metrics stay float32.
    """

    graphdef: object
    tx: optax.GradientTransformation
    loss: Callable
    metrics: object
    fetch: Fetch = gather_examples
    class_weights: tuple[float, ...] | None = None
    constrained: bool = False
    batch_sharding: object = None
    compute_dtype: np.dtype = np.dtype(np.float32)


def _weights(config: StepConfig, batch: dict, valid_B: jax.Array) -> jax.Array:
    if config.class_weights is None:
        return valid_B
    table = jnp.asarray(config.class_weights, jnp.float32)
    return valid_B * table[batch["y"].astype(jnp.int32)]


def _constrain(config: StepConfig, batch: dict) -> dict:
    if config.batch_sharding is None:
        return batch
    return jax.lax.with_sharding_constraint(batch, config.batch_sharding)


def train_step(config: StepConfig, state: TrainState, batch: dict, valid_B: jax.Array,
               key: jax.Array) -> tuple[TrainState, dict]:
    """One optimizer step on `batch`; a non-finite loss or gradient leaves the state unchanged."""
    batch = _constrain(config, batch)
    weights_B = _weights(config, batch, valid_B)

    def objective(params, rest):
        outputs, model = precision.apply_model(config.graphdef, params, rest, batch,
                                               config.compute_dtype, training=True, rngs=key)
        # Keras: sum of weighted losses over the number of (real) examples in the batch.
        data_loss = jnp.sum(config.loss(outputs, batch["y"]) * weights_B) / jnp.maximum(
            jnp.sum(valid_B), 1.0)
        total = data_loss + precision.regularization_loss(config.graphdef, params, model)
        rest = nnx.state(model, nnx.Not(nnx.Param))
        return total, (outputs, rest)

    # `rest` goes in as an argument so BatchNorm's statistics are updated inside this trace.
    (loss, (outputs, rest)), grads = jax.value_and_grad(objective, has_aux=True)(state.params,
                                                                                  state.rest)
    updates, opt_state = config.tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    if config.constrained:
        model = nnx.merge(config.graphdef, params, rest, copy=True)
        nn.apply_constraints(model)
        params = nnx.state(model, nnx.Param)
    finite = jnp.isfinite(loss) & jnp.all(jnp.asarray(
        [jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
    candidate = TrainState(params, rest, opt_state, state.step + 1, state.nonfinite)
    skipped = state._replace(nonfinite=state.nonfinite + 1)
    new_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old), candidate, skipped)
    count = jnp.sum(valid_B)
    sums = {"loss": jnp.where(finite, loss, 0.0) * count, "count": count,
            **config.metrics.batch_sums(outputs, batch["y"], valid_B)}
    return new_state, sums


def train_epoch(config: StepConfig, state: TrainState, data: dict, key: jax.Array, *,
                num_examples: int, batch_size: int, steps_per_epoch: int | None = None,
                last_batch: str = "auto") -> tuple[TrainState, dict]:
    """One epoch over the training split: a `lax.scan` over the batches, and the last partial batch as a
    step of its own where `own_last_step` says so; returns the state and metric sums."""
    order_key, dropout_key = jax.random.split(key)
    if own_last_step(num_examples, batch_size, last_batch, steps_per_epoch):
        (idx_SxB, valid_SxB), tail = training_batches(order_key, num_examples, batch_size)
    else:
        (idx_SxB, valid_SxB), tail = batch_plan(order_key, num_examples, batch_size, steps_per_epoch), None

    def step(state, idx_B, valid_B, step_index):
        batch = config.fetch(data, idx_B)
        return train_step(config, state, batch, valid_B, jax.random.fold_in(dropout_key, step_index))

    whole = idx_SxB.shape[0]
    sums = []
    if whole:
        state, sums_S = jax.lax.scan(lambda state, inputs: step(state, *inputs), state,
                                     (idx_SxB, valid_SxB, jnp.arange(whole)))
        sums.append(jax.tree.map(lambda s: jnp.sum(s, axis=0), sums_S))
    if tail is not None:
        state, tail_sums = step(state, *tail, whole)
        sums.append(tail_sums)
    return state, jax.tree.map(lambda *parts: sum(parts), *sums)


def evaluate(config: StepConfig, state: TrainState, data: dict, *, num_examples: int,
             batch_size: int, confusion: bool = False) -> dict:
    """Metric sums over a split (natural order, no dropout), as one `lax.scan`."""
    idx_SxB, valid_SxB = batch_plan(None, num_examples, batch_size)
    compute_params = precision.cast_floating(state.params, config.compute_dtype)  # once per split

    def body(carry, inputs):
        idx_B, valid_B = inputs
        batch = _constrain(config, config.fetch(data, idx_B))
        outputs, model = precision.apply_model(config.graphdef, compute_params, state.rest, batch,
                                               config.compute_dtype, training=False)
        # Class weights shape training only (as in Keras' fit); evaluation losses are plain means.
        penalty = precision.regularization_loss(config.graphdef, state.params, model)
        loss = jnp.sum(config.loss(outputs, batch["y"]) * valid_B) / jnp.maximum(
            jnp.sum(valid_B), 1.0) + penalty
        count = jnp.sum(valid_B)
        sums = {"loss": loss * count, "count": count,
                **config.metrics.batch_sums(outputs, batch["y"], valid_B, confusion=confusion)}
        return carry, sums

    _, sums_S = jax.lax.scan(body, None, (idx_SxB, valid_SxB))
    return jax.tree.map(lambda s: jnp.sum(s, axis=0), sums_S)
