"""Parameter counting and Keras' model summary table."""

from __future__ import annotations

import math

import jax
from flax import nnx

from conv1dx.nn.layer import Layer, as_shape
from conv1dx.nn.sequential import snake_case


def _size(state) -> int:
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(state))


def count_params(module: nnx.Module, trainable: bool | None = None) -> int:
    """Number of weights: trainable (`nnx.Param`), non-trainable (`nnx.BatchStat`), or both (None)."""
    if trainable is None:
        return count_params(module, True) + count_params(module, False)
    kind = nnx.Param if trainable else nnx.BatchStat
    return _size(nnx.state(module, kind))


def _format_shape(shape) -> str:
    """`(None, 5, 3)` for one output shape (batch axis first), a list for several (a tuple output)."""
    if shape and all(isinstance(s, tuple) for s in shape):
        return "[" + ", ".join(_format_shape(s) for s in shape) + "]"
    return "(" + ", ".join("None" if d is None else str(d) for d in (None, *shape)) + ")"


def summary(model: Layer, input_shape=None, *, print_fn=print, line_length: int = 80) -> str:
    """Print and return Keras' summary table: Layer (type), Output Shape, Param #, then the totals.

    `input_shape` (no batch axis) defaults to the shape the model was built for. A `Sequential` lists its
    layers; any other layer is listed as one row.
    """
    if input_shape is None:
        if not model.built:
            raise ValueError("summary needs input_shape=... for a model that is not built yet.")
        input_shape = model.input_shape
    input_shape = as_shape(input_shape)
    if not model.built:
        raise ValueError(
            f"{type(model).__name__} is not built: build it (input_shape=..., rngs=...) before summary."
        )
    layers = list(getattr(model, "layers", [model]))
    shapes, shape = [], input_shape
    for layer in layers:
        shape = layer.compute_output_shape(shape)
        shapes.append(shape)

    cells = [[f"{layer.name or snake_case(type(layer).__name__)} ({type(layer).__name__})",
              _format_shape(shape), f"{count_params(layer):,}"]
             for layer, shape in zip(layers, shapes, strict=True)]
    header = ["Layer (type)", "Output Shape", "Param #"]
    widths = [max(len(row[i]) for row in [header, *cells]) + 3 for i in range(3)]
    widths[0] = max(widths[0], int(line_length * 0.40))
    widths[1] = max(widths[1], int(line_length * 0.30))
    widths[2] = max(widths[2], line_length - widths[0] - widths[1])
    total_width = sum(widths)
    rule, double = "_" * total_width, "=" * total_width

    def row(values):
        return "".join(value.ljust(width) for value, width in zip(values, widths, strict=True)).rstrip()

    lines = [f'Model: "{model.name or snake_case(type(model).__name__)}"', rule, row(header), double]
    for i, values in enumerate(cells):
        lines.append(row(values))
        lines.append(double if i == len(cells) - 1 else rule)
    trainable, frozen = count_params(model, True), count_params(model, False)
    lines += [f"Total params: {trainable + frozen:,}", f"Trainable params: {trainable:,}",
              f"Non-trainable params: {frozen:,}", rule]
    text = "\n".join(lines)
    if print_fn is not None:
        print_fn(text)
    return text

