"""The compute-dtype policy of training: float32 weights, the forward pass in `compute_dtype`.

Keras' `mixed_bfloat16` semantics. Parameters, BatchNorm statistics and optimizer state stay float32
in the TrainState. Inside the differentiated objective the parameters and the floating-point inputs
are cast to the compute dtype and the model runs in it; the gradients come back through the casts
as float32. The model's outputs are cast to float32 before the loss and the metrics, and the weight
penalties are computed from the float32 parameters. With `float32` every cast is the identity.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from conv1dx import nn

COMPUTE_DTYPES = ("float32", "bfloat16")


def compute_dtype(name: str) -> np.dtype:
    """The dtype named by `trainer.compute_dtype` ("float32" or "bfloat16")."""
    if name not in COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype must be one of {', '.join(COMPUTE_DTYPES)}, got {name!r}.")
    return jnp.dtype(name)


def cast_floating(tree, dtype):
    """`tree` with every floating-point array leaf cast to `dtype`; integer, bool and PRNG-key
    leaves (token ids, masks, labels) and non-array leaves are returned unchanged."""

    def cast(leaf):
        if isinstance(leaf, jax.Array | np.ndarray) and jnp.issubdtype(leaf.dtype, jnp.floating):
            return leaf.astype(dtype)
        return leaf

    return jax.tree.map(cast, tree)


def apply_model(graphdef, params, rest, batch: dict, dtype, *, training: bool, rngs=None):
    """Run the model of `(graphdef, params, rest)` on `batch` in `dtype`: `(outputs, model)`.

    `params` (float32) and the floating-point `batch["x"]` are cast to `dtype`; `rest` (BatchNorm
    statistics, ...) is not, so its updates stay float32. The outputs (e.g. `logits_BxK`) come back
    as float32; `model` is the live model after the call (its non-Param state holds the updates).
    """
    model = nnx.merge(graphdef, cast_floating(params, dtype), rest, copy=True)
    outputs = model(cast_floating(batch["x"], dtype), mask=batch.get("mask"), training=training,
                    rngs=rngs)
    return cast_floating(outputs, jnp.float32), model


def regularization_loss(graphdef, params, model) -> jax.Array:
    """The model's regularization penalty: weight penalties of the float32 `params`, plus the
    activity penalties that `model`'s last call recorded (float32 scalar)."""
    return nn.regularization_loss(nnx.merge(graphdef, params, nnx.state(model, nnx.Not(nnx.Param))))
