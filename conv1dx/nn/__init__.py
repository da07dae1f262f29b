"""conv1dx.nn: Flax NNX layers for 1D convnets with Keras' argument names, defaults and semantics.

    from flax import nnx
    from conv1dx import nn

    model = nn.Sequential([
        nn.Conv1D(64, 3, activation="relu"),
        nn.GlobalMaxPooling1D(),
        nn.Dense(6),
    ], input_shape=(128, 9), rngs=nnx.Rngs(0))
    nn.summary(model)
"""

from conv1dx.nn import activations, constraints, initializers, regularizers
from conv1dx.nn.builder import build_layer, build_model
from conv1dx.nn.conv import Conv1D, Conv1DTranspose, DepthwiseConv1D, SeparableConv1D
from conv1dx.nn.dense import Dense
from conv1dx.nn.layer import (
    Layer,
    apply_constraints,
    has_constraints,
    iter_layers,
    regularization_loss,
)
from conv1dx.nn.sequential import Sequential
from conv1dx.nn.summary import count_params, summary

__all__ = [
    "Conv1D",
    "Conv1DTranspose",
    "Dense",
    "DepthwiseConv1D",
    "Layer",
    "SeparableConv1D",
    "Sequential",
    "activations",
    "apply_constraints",
    "build_layer",
    "build_model",
    "constraints",
    "count_params",
    "has_constraints",
    "initializers",
    "iter_layers",
    "regularization_loss",
    "regularizers",
    "summary",
]
