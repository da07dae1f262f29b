"""Analytic training FLOPs per example of a conv1dx `Sequential`, from its layers' shapes.

Only the matrix products are counted, as 2 FLOPs per multiply-add (the convention of matmul peaks):

  * Conv1D             2 * T_out * K * (C_in / groups) * F
  * DepthwiseConv1D    2 * T_out * K * C_in * M                  (M = depth_multiplier)
  * SeparableConv1D    depthwise + 2 * T_out * C_in * M * F      (pointwise)
  * Conv1DTranspose    2 * T_in * K * C_in * F
  * Dense              2 * P * C_in * units      (P = product of the leading axes, 1 for `(C,)`)
  * GRU                T * 2 * 3U * (C_in + U);   LSTM  T * 2 * 4U * (C_in + U)
  * Bidirectional      twice its wrapped layer

A training step costs 3 times the forward products (forward, gradient with respect to the inputs,
gradient with respect to the weights). Embedding lookups, pooling, dropout, activations, biases,
normalization and the optimizer update are elementwise or gathers and count 0, so GFLOP/s derived
from this understates the work of memory-bound models (a GRU's per-step products are tiny). Layers
not listed raise a ValueError rather than being silently counted as free.
"""

from __future__ import annotations

import math

from conv1dx import nn

TRAINING_MULTIPLIER = 3
FREE_LAYERS = (
    nn.Embedding, nn.Dropout, nn.SpatialDropout1D, nn.MaxPooling1D, nn.AveragePooling1D,
    nn.GlobalMaxPooling1D, nn.GlobalAveragePooling1D, nn.Flatten, nn.Reshape, nn.Activation,
    nn.Cropping1D, nn.ZeroPadding1D, nn.UpSampling1D, nn.BatchNormalization, nn.LayerNormalization,
)


def _steps_channels(layer, shape) -> tuple[int, int]:
    """(steps, channels) of a `(T, C)` or channels-first `(C, T)` shape (no batch axis)."""
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return shape[1], shape[0]
    return shape[0], shape[1]


def _known(value, layer, what: str) -> int:
    if value is None:
        raise ValueError(f"FLOPs of {type(layer).__name__} need a known {what}; give the model a "
                         "fixed input_shape (steps included).")
    return int(value)


def layer_forward_flops(layer, input_shape: tuple, output_shape: tuple) -> int:
    """Forward matmul FLOPs of one example through `layer` (shapes without the batch axis)."""
    name = type(layer).__name__
    if isinstance(layer, nn.Conv1D):
        _, c_in = _steps_channels(layer, input_shape)
        t_out, f = _steps_channels(layer, output_shape)
        t_out = _known(t_out, layer, "step count")
        return 2 * t_out * layer.kernel_size * (c_in // layer.groups) * f
    if isinstance(layer, nn.SeparableConv1D):
        _, c_in = _steps_channels(layer, input_shape)
        t_out, f = _steps_channels(layer, output_shape)
        t_out = _known(t_out, layer, "step count")
        m = layer.depth_multiplier
        return 2 * t_out * layer.kernel_size * c_in * m + 2 * t_out * c_in * m * f
    if isinstance(layer, nn.DepthwiseConv1D):
        _, c_in = _steps_channels(layer, input_shape)
        t_out, _ = _steps_channels(layer, output_shape)
        t_out = _known(t_out, layer, "step count")
        return 2 * t_out * layer.kernel_size * c_in * layer.depth_multiplier
    if isinstance(layer, nn.Conv1DTranspose):
        t_in, c_in = _steps_channels(layer, input_shape)
        return 2 * _known(t_in, layer, "step count") * layer.kernel_size * c_in * layer.filters
    if isinstance(layer, nn.Dense):
        positions = math.prod(_known(d, layer, "shape") for d in input_shape[:-1])
        return 2 * positions * int(input_shape[-1]) * layer.units
    if isinstance(layer, (nn.GRU, nn.LSTM)):
        steps, c_in = _known(input_shape[0], layer, "step count"), int(input_shape[-1])
        gates = 3 if isinstance(layer, nn.GRU) else 4
        return steps * 2 * gates * layer.units * (c_in + layer.units)
    if isinstance(layer, nn.Bidirectional):
        inner = layer.forward_layer
        return 2 * layer_forward_flops(inner, input_shape, inner.compute_output_shape(input_shape))
    if isinstance(layer, nn.Sequential):
        return model_forward_flops(layer, input_shape)
    if isinstance(layer, FREE_LAYERS):
        return 0
    raise ValueError(f"No FLOP rule for layer {name}; add one to experiments/throughput/flops.py "
                     "(count its matrix products as 2 * multiply-adds).")


def model_forward_flops(model, input_shape) -> int:
    """Forward matmul FLOPs of one example through a `Sequential` built for `input_shape`."""
    shape = tuple(input_shape)
    total = 0
    for layer in model.layers:
        output_shape = tuple(layer.compute_output_shape(shape))
        total += layer_forward_flops(layer, shape, output_shape)
        shape = output_shape
    return total


def training_flops_per_example(model, input_shape) -> int:
    """FLOPs of one training example: 3 x the forward matmul FLOPs (see the module docstring)."""
    return TRAINING_MULTIPLIER * model_forward_flops(model, input_shape)


def layer_table(model, input_shape) -> list[dict]:
    """Per layer: name, type, input and output shapes, forward FLOPs (for the study's README)."""
    rows, shape = [], tuple(input_shape)
    for layer in model.layers:
        output_shape = tuple(layer.compute_output_shape(shape))
        rows.append({"layer": layer.name, "type": type(layer).__name__, "input": shape,
                     "output": output_shape,
                     "forward_flops": layer_forward_flops(layer, shape, output_shape)})
        shape = output_shape
    return rows
