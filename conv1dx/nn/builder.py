"""Build a `Sequential` model from a list of layer specs, as a Hydra config gives them.

A spec is a mapping with a `_target_` naming the layer class and its keyword arguments, e.g.

    - _target_: conv1dx.nn.Conv1D
      filters: 64
      kernel_size: 3
      activation: relu

Nested specs (`Bidirectional`'s `layer`) are instantiated recursively. Dataset facts such as the input
shape come in as arguments, never typed into the layer specs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import hydra.utils
from flax import nnx
from omegaconf import DictConfig, ListConfig, OmegaConf

from conv1dx.nn.layer import Layer
from conv1dx.nn.sequential import Sequential


def _plain(spec):
    if isinstance(spec, (DictConfig, ListConfig)):
        return OmegaConf.to_container(spec, resolve=True)
    return spec


def build_layer(spec: Mapping | Layer) -> Layer:
    """Instantiate one layer spec (a `_target_` mapping); an already-built Layer passes through."""
    if isinstance(spec, Layer):
        return spec
    spec = _plain(spec)
    if not isinstance(spec, Mapping) or "_target_" not in spec:
        raise ValueError(
            f"A layer spec must be a mapping with a '_target_' (e.g. conv1dx.nn.Conv1D), got {spec!r}."
        )
    try:
        layer = hydra.utils.instantiate(spec, _convert_="all")
    except Exception as error:  # Hydra wraps the layer's own ValueError; keep its message first.
        cause = error.__cause__ or error
        raise ValueError(f"Could not build layer {spec.get('_target_')}: {cause}") from error
    if not isinstance(layer, Layer):
        raise TypeError(f"{spec['_target_']} did not produce a conv1dx.nn layer (got {type(layer)}).")
    return layer


def build_model(layers: Sequence[Mapping | Layer], input_shape: Sequence[int | None], *,
                seed: int = 0, rngs: nnx.Rngs | None = None, name: str | None = None) -> Sequential:
    """Instantiate `layers` and build them as a `Sequential` for `input_shape` (no batch axis)."""
    layers = _plain(layers)
    if not layers:
        raise ValueError("build_model needs at least one layer spec.")
    built = [build_layer(spec) for spec in layers]
    return Sequential(built, input_shape=tuple(_plain(input_shape)), name=name,
                      rngs=rngs if rngs is not None else nnx.Rngs(seed))
