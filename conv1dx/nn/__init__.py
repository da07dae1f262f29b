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
from conv1dx.nn.bidirectional import Bidirectional
from conv1dx.nn.builder import build_layer, build_model
from conv1dx.nn.conv import Conv1D, Conv1DTranspose
from conv1dx.nn.dense import Dense
from conv1dx.nn.depthwise_conv import DepthwiseConv1D, SeparableConv1D
from conv1dx.nn.dropout import Dropout, SpatialDropout1D
from conv1dx.nn.embedding import Embedding
from conv1dx.nn.gru import GRU
from conv1dx.nn.layer import (
    Layer,
    apply_constraints,
    has_constraints,
    iter_layers,
    regularization_loss,
)
from conv1dx.nn.lstm import LSTM
from conv1dx.nn.normalization import BatchNormalization, LayerNormalization
from conv1dx.nn.pooling import (
    AveragePooling1D,
    AvgPool1D,
    GlobalAveragePooling1D,
    GlobalAvgPool1D,
    GlobalMaxPool1D,
    GlobalMaxPooling1D,
    MaxPool1D,
    MaxPooling1D,
)
from conv1dx.nn.reshaping import (
    Activation,
    Cropping1D,
    Flatten,
    Reshape,
    UpSampling1D,
    ZeroPadding1D,
)
from conv1dx.nn.sequential import Sequential
from conv1dx.nn.summary import count_params, summary

__all__ = [
    "Activation",
    "AveragePooling1D",
    "AvgPool1D",
    "BatchNormalization",
    "Bidirectional",
    "Cropping1D",
    "Dropout",
    "Embedding",
    "Flatten",
    "GRU",
    "GlobalAveragePooling1D",
    "GlobalAvgPool1D",
    "GlobalMaxPool1D",
    "GlobalMaxPooling1D",
    "LayerNormalization",
    "LSTM",
    "MaxPool1D",
    "MaxPooling1D",
    "Reshape",
    "SpatialDropout1D",
    "UpSampling1D",
    "ZeroPadding1D",
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
