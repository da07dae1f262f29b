"""The base class of every conv1dx layer: Keras-style building from the input shape.

Shapes in this package exclude the batch axis unless they are an array's `.shape`: a layer is built for
`input_shape = (steps, features)` (channels-last) and maps a batch `x_BxTxC` to its output. A layer is built

* at construction, when `input_shape=` is given together with `rngs=`;
* by a container (`Sequential`), which propagates shapes with `compute_output_shape`;
* or on its first eager call, from the shape of that input.

Weights are `nnx.Param` (trainable) or `nnx.BatchStat` (non-trainable) variables created by `add_weight`
(or `add_configured_weight`, which reads the layer's stored Keras options for the weight), which also
records each weight's regularizer and constraint. `regularization_loss(model)` and
`apply_constraints(model)` are the one mechanism through which a trainer uses them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from conv1dx.nn import constraints as constraints_lib
from conv1dx.nn import initializers as initializers_lib
from conv1dx.nn import regularizers as regularizers_lib

Shape = tuple[int | None, ...]


class ActivityLoss(nnx.Variable):
    """Penalty of a layer's activity regularizer on its most recent output (the whole batch, as Keras 3)."""


def as_shape(shape: int | Sequence[int | None]) -> Shape:
    """Normalize an `input_shape` argument to a tuple."""
    if isinstance(shape, int):
        return (shape,)
    return tuple(None if d is None else int(d) for d in shape)


def is_traced(x) -> bool:
    """True inside jit/grad/vmap tracing, where new weights must not be created."""
    return isinstance(x, jax.core.Tracer)


def rng_key(rngs, stream: str = "dropout") -> jax.Array:
    """A fresh PRNG key from `rngs`: an `nnx.Rngs` (stream `stream`), an `RngStream`, or a raw key."""
    if isinstance(rngs, nnx.Rngs):
        return getattr(rngs, stream)() if stream in rngs else rngs.default()
    if isinstance(rngs, nnx.RngStream):
        return rngs()
    return rngs


def add_bias(y: jax.Array, bias: jax.Array) -> jax.Array:
    """`y + bias` with `bias` broadcast over y's leading axes (e.g. `y_BxTxF + bias_F`).

    The same values, but the bias is broadcast in (at least) float32 and only then cast to the
    sum's dtype, so its gradient, a sum over every broadcast position, accumulates in float32 when
    y and bias are bfloat16 (XLA's CPU reduction of a bfloat16 array accumulates in bfloat16: the
    gradient of a bfloat16 bias broadcast over 4,000 positions came out as 2,048).
    """
    dtype = jnp.result_type(y, bias)
    broadcast = jnp.broadcast_to(bias.astype(jnp.promote_types(dtype, jnp.float32)), y.shape)
    return y.astype(dtype) + broadcast.astype(dtype)


class Layer(nnx.Module):
    """Base class: subclasses set their configuration, then call `self._init_build(input_shape, rngs)`.

    Subclasses implement `forward(x, *, mask, training, rngs)` and, if they have weights, `build`; if they
    change the shape, `compute_output_shape`; and set `expected_rank` (with the batch axis) and
    `supports_masking` (the input mask is valid for the output) as class attributes.
    """

    expected_rank: int | None = 3
    supports_masking: bool = False

    def __init__(self, *, activity_regularizer=None, name: str | None = None):
        self.name = name
        self.built = False
        self.input_shape: Shape | None = None
        self.activity_regularizer = regularizers_lib.get(activity_regularizer)
        self._weight_regularizers: tuple[tuple[str, Callable], ...] = ()
        self._weight_constraints: tuple[tuple[str, Callable], ...] = ()
        self._pending_rngs = nnx.data(None)

    # -- building ------------------------------------------------------------------------------------
    def _init_build(self, input_shape, rngs) -> None:
        """Build now when the input shape is known; otherwise keep `rngs` for the first call."""
        if input_shape is not None:
            self.build_for(as_shape(input_shape), rngs)
        else:
            self._pending_rngs = nnx.data(rngs)

    def build_for(self, input_shape: Shape, rngs=None) -> Shape:
        """Build for `input_shape` (no batch axis) and return the output shape."""
        input_shape = as_shape(input_shape)
        self.check_input_shape(input_shape)
        if not self.built:
            rngs = rngs if rngs is not None else self._pending_rngs
            self.build(input_shape, rngs)
            if self.activity_regularizer is not None:
                self.activity_loss = ActivityLoss(jnp.zeros((), jnp.float32))
            self.input_shape = input_shape
            self.built = True
            self._pending_rngs = nnx.data(None)
        return self.compute_output_shape(input_shape)

    def build(self, input_shape: Shape, rngs) -> None:
        """Create the weights for `input_shape`; parameter-free layers keep this default."""

    def check_input_shape(self, input_shape: Shape) -> None:
        """Validate an input shape (no batch axis); the default checks the rank."""
        if self.expected_rank is not None and len(input_shape) + 1 != self.expected_rank:
            raise ValueError(
                f"{type(self).__name__} expects inputs of rank {self.expected_rank} "
                f"(batch, {'steps, features' if self.expected_rank == 3 else '...'}), got an input "
                f"of rank {len(input_shape) + 1} with shape (batch, {', '.join(map(str, input_shape))})."
            )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """Output shape (no batch axis) for `input_shape`; the default keeps the shape."""
        return as_shape(input_shape)

    def compute_mask(self, x: jax.Array, mask: jax.Array | None) -> jax.Array | None:
        """The padding mask `mask_BxT` valid for this layer's output, given its input and input mask."""
        return mask if self.supports_masking else None

    def add_weight(
        self,
        name: str,
        shape: Sequence[int],
        initializer,
        rngs,
        *,
        regularizer=None,
        constraint=None,
        trainable: bool = True,
        dtype=jnp.float32,
    ) -> nnx.Variable:
        """Create weight `self.<name>` with Keras semantics; returns the variable."""
        if rngs is None:
            raise ValueError(
                f"{type(self).__name__} has weights to initialize: pass rngs=nnx.Rngs(seed) to the layer "
                "or to the model that builds it."
            )
        key = rng_key(rngs, "params")
        value = initializers_lib.get(initializer)(key, tuple(shape), dtype)
        variable = nnx.Param(value) if trainable else nnx.BatchStat(value)
        setattr(self, name, variable)
        regularizer = regularizers_lib.get(regularizer)
        constraint = constraints_lib.get(constraint)
        if regularizer is not None:
            self._weight_regularizers = (*self._weight_regularizers, (name, regularizer))
        if constraint is not None:
            self._weight_constraints = (*self._weight_constraints, (name, constraint))
        return variable

    def add_configured_weight(
        self, name: str, shape: Sequence[int], rngs, *, prefix: str | None = None, initializer=None
    ) -> nnx.Variable:
        """`add_weight` with the Keras options this layer stores for the weight.

        Reads `self.<prefix>_initializer`, `self.<prefix>_regularizer` and `self.<prefix>_constraint`;
        `prefix` defaults to `name`, following Keras' argument names ("kernel" -> `kernel_initializer`,
        "depthwise_kernel" -> prefix "depthwise"). `initializer` replaces the stored initializer.
        """
        prefix = name if prefix is None else prefix
        return self.add_weight(
            name,
            shape,
            getattr(self, f"{prefix}_initializer") if initializer is None else initializer,
            rngs,
            regularizer=getattr(self, f"{prefix}_regularizer"),
            constraint=getattr(self, f"{prefix}_constraint"),
        )

    # -- calling -------------------------------------------------------------------------------------
    def __call__(self, x, *, mask=None, training: bool = False, rngs=None):
        """Apply the layer to a batch; `mask_BxT` marks valid steps, `rngs` feeds dropout when training."""
        x = self.ensure_built(x)
        return self.record_activity(self.forward(x, mask=mask, training=training, rngs=rngs))

    def record_activity(self, y: jax.Array) -> jax.Array:
        """Keep the activity regularizer's penalty of the output `y` (the whole batch, as Keras 3); returns y."""
        if self.activity_regularizer is not None:
            self.activity_loss[...] = self.activity_regularizer(y)
        return y

    def ensure_built(self, x) -> jax.Array:
        """Build from `x`'s shape on the first eager call, else validate it; returns `x` as an array."""
        x = jnp.asarray(x)
        if not self.built:
            if is_traced(x):
                raise RuntimeError(
                    f"{type(self).__name__} is not built and is being traced: build it before jit by "
                    "passing input_shape=..., by calling it once eagerly, or through "
                    "Sequential(input_shape=...)."
                )
            self.build_for(x.shape[1:])
        else:
            self.check_input_shape(x.shape[1:])
        return x

    def forward(self, x: jax.Array, *, mask, training: bool, rngs) -> jax.Array:
        raise NotImplementedError

    # -- regularization and constraints -------------------------------------------------------------
    def weight_penalty(self) -> jax.Array:
        """Sum of this layer's weight-regularizer penalties at the current weights."""
        total = jnp.zeros((), jnp.float32)
        for name, regularizer in self._weight_regularizers:
            total += regularizer(getattr(self, name)[...])
        return total

    def project_weights(self) -> None:
        """Apply this layer's weight constraints in place."""
        for name, constraint in self._weight_constraints:
            variable = getattr(self, name)
            variable[...] = constraint(variable[...])


def iter_layers(model: nnx.Module):
    """Every conv1dx `Layer` inside `model` (itself included), each once."""
    for _, node in nnx.iter_graph(model):
        if isinstance(node, Layer):
            yield node


def regularization_loss(model: nnx.Module) -> jax.Array:
    """Total regularization penalty of a model: weight penalties plus the last activity penalties.

    Call it after the forward pass whose activity penalties should count; pure, so it traces under jit.
    """
    total = jnp.zeros((), jnp.float32)
    for layer in iter_layers(model):
        total += layer.weight_penalty()
        if layer.activity_regularizer is not None and layer.built:
            total += layer.activity_loss[...]
    return total


def apply_constraints(model: nnx.Module) -> None:
    """Project every constrained weight of `model` in place (call after each optimizer update)."""
    for layer in iter_layers(model):
        layer.project_weights()


def has_constraints(model: nnx.Module) -> bool:
    """Whether any layer of `model` has a weight constraint (lets a trainer skip the projection)."""
    return any(layer._weight_constraints for layer in iter_layers(model))
