"""`Sequential`: a stack of layers applied in order, built by propagating shapes like Keras.

`Sequential([...], input_shape=(T, C), rngs=nnx.Rngs(0))` builds every layer at construction; without
`input_shape` it builds on the first eager call. Padding masks flow from layer to layer (e.g. from
`Embedding(mask_zero=True)` to a `GRU` or a masked global pooling).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import jax
from flax import nnx

from conv1dx.nn.conv import Conv1D
from conv1dx.nn.embedding import Embedding
from conv1dx.nn.layer import Layer, Shape, as_shape


def snake_case(name: str) -> str:
    """Keras-style default layer name: `GlobalMaxPooling1D` -> `global_max_pooling1d`."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _assign_names(layers: list[Layer]) -> None:
    taken = {layer.name for layer in layers if layer.name is not None}
    if len(taken) != sum(layer.name is not None for layer in layers):
        raise ValueError("Sequential: layer names must be unique.")
    counts: dict[str, int] = {}
    for layer in layers:
        if layer.name is not None:
            continue
        base = snake_case(type(layer).__name__)
        while True:
            n = counts.get(base, 0)
            counts[base] = n + 1
            candidate = base if n == 0 else f"{base}_{n}"
            if candidate not in taken:
                break
        layer.name = candidate
        taken.add(candidate)


class Sequential(Layer):
    """Layers applied in order: `y = layers[-1](...layers[0](x))`, shapes from each layer's rules."""

    expected_rank = None

    def __init__(self, layers: Iterable[Layer], *, input_shape=None, name: str | None = None, rngs=None):
        super().__init__(name=name)
        layers = list(layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(
                    f"Sequential: item {i} is a {type(layer).__name__}, not a conv1dx.nn layer."
                )
        if not layers:
            raise ValueError("Sequential needs at least one layer.")
        _assign_names(layers)
        self.layers = nnx.List(layers)
        self._init_build(input_shape, rngs)

    def check_input_shape(self, input_shape: Shape) -> None:
        self.layers[0].check_input_shape(as_shape(input_shape))

    def build(self, input_shape: Shape, rngs) -> None:
        shape = input_shape
        for layer in self.layers:
            shape = layer.build_for(shape, rngs)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        shape = as_shape(input_shape)
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
        return shape

    def layer_output_shapes(self, input_shape: Shape) -> list[Shape]:
        """The output shape (no batch axis) of every layer for `input_shape`."""
        shapes, shape = [], as_shape(input_shape)
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
            shapes.append(shape)
        return shapes

    def compute_mask(self, x, mask):
        for layer in self.layers:
            mask = layer.compute_mask(x, mask)
            x = None  # only the first layer sees the raw input (e.g. Embedding's token ids)
        return mask

    def __call__(self, x, *, mask=None, training: bool = False, rngs=None,
                 return_intermediates: bool = False):
        """Apply all layers to `x`; with `return_intermediates` also return {layer name: output}.

        `rngs` (an `nnx.Rngs` or a PRNG key) feeds dropout when `training`; a key is folded with each
        layer's index so layers draw independent masks.
        """
        x = self.ensure_built(x)
        intermediates = {}
        layers, i = list(self.layers), 0
        while i < len(layers):
            layer = layers[i]
            following = layers[i + 1] if i + 1 < len(layers) else None
            if not return_intermediates and _embedding_then_conv(layer, following, x):
                # The convolution of the embedded ids, computed from the table (embedding_conv.py)
                mask = following.compute_mask(None, layer.compute_mask(x, mask))
                x = following.call_on_embedding(layer, x)
                i += 2
                continue
            layer_rngs = jax.random.fold_in(rngs, i) if isinstance(rngs, jax.Array) else rngs
            next_mask = layer.compute_mask(x, mask)
            x = layer(x, mask=mask, training=training, rngs=layer_rngs)
            mask = next_mask
            if return_intermediates:
                intermediates[layer.name] = x
            i += 1
        return (x, intermediates) if return_intermediates else x


def _embedding_then_conv(layer: Layer, following: Layer | None, ids) -> bool:
    """Exactly these two classes: a subclass may compute something else in its `forward`."""
    return type(layer) is Embedding and type(following) is Conv1D and following.takes_embedding(layer, ids)
