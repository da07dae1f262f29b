"""Pure functions for 1D convolution: output-length arithmetic, Keras/TF padding, and the convolutions.

Everything here is channels-last: `x_BxTxC`, kernels `kernel_KxCgxF` (Cg = C / groups). Output length of a
forward convolution is

    O = floor((T + pad_left + pad_right - dilation * (K - 1) - 1) / stride) + 1

with (pad_left, pad_right) = (0, 0) for "valid", TF's split for "same" (extra padding on the right so that
O = ceil(T / stride)), and (dilation * (K - 1), 0) for "causal".
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

PADDINGS = ("valid", "same", "causal")
_DIMENSION_NUMBERS = ("NWC", "WIO", "NWC")


def effective_kernel_size(kernel_size: int, dilation: int) -> int:
    """Span of a dilated kernel: dilation * (K - 1) + 1."""
    return dilation * (kernel_size - 1) + 1


def padding_amounts(length: int | None, kernel_size: int, padding: str, stride: int = 1,
                    dilation: int = 1) -> tuple[int, int]:
    """(left, right) zero padding of a forward convolution, as Keras/TensorFlow compute it."""
    span = effective_kernel_size(kernel_size, dilation)
    if padding == "valid":
        return (0, 0)
    if padding == "causal":
        return (span - 1, 0)
    if padding == "same":
        if length is None:
            raise ValueError("'same' padding with stride > 1 needs a known sequence length.")
        out = -(-length // stride)
        total = max((out - 1) * stride + span - length, 0)
        return (total // 2, total - total // 2)
    raise ValueError(f"Unknown padding {padding!r}; use one of {PADDINGS}.")


def conv_output_length(length: int | None, kernel_size: int, padding: str, stride: int = 1,
                       dilation: int = 1) -> int | None:
    """O = floor((T + total_padding - dilation*(K-1) - 1) / stride) + 1 (None for unknown T)."""
    if length is None:
        return None
    left, right = padding_amounts(length, kernel_size, padding, stride, dilation)
    return (length + left + right - dilation * (kernel_size - 1) - 1) // stride + 1


def conv1d(x_BxTxC: jax.Array, kernel_KxCgxF: jax.Array, *, stride: int = 1, padding: str = "valid",
           dilation: int = 1, groups: int = 1) -> jax.Array:
    """Cross-correlation (what deep-learning frameworks call convolution): returns `y_BxOxF`.

    y[b, o, f] = sum_k sum_c x_pad[b, o*stride + k*dilation, g(f)*Cg + c] * kernel[k, c, f], where g(f) is the
    group of output channel f and x_pad is x zero-padded by `padding_amounts`.
    """
    kernel_size = kernel_KxCgxF.shape[0]
    pads = padding_amounts(x_BxTxC.shape[1], kernel_size, padding, stride, dilation)
    return lax.conv_general_dilated(
        x_BxTxC,
        kernel_KxCgxF,
        window_strides=(stride,),
        padding=(pads,),
        rhs_dilation=(dilation,),
        dimension_numbers=_DIMENSION_NUMBERS,
        feature_group_count=groups,
    )


def transpose_padding(kernel_size: int, stride: int, dilation: int, padding: str,
                      output_padding: int | None) -> tuple[int, int]:
    """Padding of the lhs-dilated input that gives Keras' Conv1DTranspose output (Keras 3 JAX backend)."""
    span = effective_kernel_size(kernel_size, dilation)
    if padding == "valid":
        extra = max(span, stride) - span if output_padding is None else output_padding
        return (span - 1, span - 1 + extra)
    if padding == "same":
        if output_padding is None:
            total = stride + span - 2
        else:
            total = span + span % 2 - 2 + output_padding
        left = min(total // 2 + total % 2, span - 1)
        return (left, total - left)
    raise ValueError(f"Conv1DTranspose supports padding 'valid' or 'same', got {padding!r}.")


def conv_transpose_output_length(length: int | None, kernel_size: int, padding: str, stride: int = 1,
                                 dilation: int = 1, output_padding: int | None = None) -> int | None:
    """Output length of Keras' Conv1DTranspose."""
    if length is None:
        return None
    span = effective_kernel_size(kernel_size, dilation)
    left, right = transpose_padding(kernel_size, stride, dilation, padding, output_padding)
    return (length - 1) * stride + 1 + left + right - span + 1


def conv1d_transpose(x_BxTxC: jax.Array, kernel_KxFxC: jax.Array, *, stride: int = 1,
                     padding: str = "valid", dilation: int = 1,
                     output_padding: int | None = None) -> jax.Array:
    """Transposed convolution with Keras' kernel layout `(K, filters, in_channels)`: returns `y_BxOxF`.

    Each input step t scatters x[t] @ kernel[k].T to output position t*stride + k*dilation - crop, where the
    crop and the output length follow Keras (`transpose_padding`).
    """
    kernel_size = kernel_KxFxC.shape[0]
    pads = transpose_padding(kernel_size, stride, dilation, padding, output_padding)
    kernel_KxCxF = jnp.flip(kernel_KxFxC, axis=0).transpose(0, 2, 1)
    return lax.conv_general_dilated(
        x_BxTxC,
        kernel_KxCxF,
        window_strides=(1,),
        padding=(pads,),
        lhs_dilation=(stride,),
        rhs_dilation=(dilation,),
        dimension_numbers=_DIMENSION_NUMBERS,
    )


def to_channels_last(x: jax.Array, data_format: str) -> jax.Array:
    """(B, C, T) -> (B, T, C) for "channels_first"; identity for "channels_last"."""
    return jnp.swapaxes(x, 1, 2) if data_format == "channels_first" else x


def from_channels_last(x: jax.Array, data_format: str) -> jax.Array:
    """Inverse of `to_channels_last`."""
    return jnp.swapaxes(x, 1, 2) if data_format == "channels_first" else x


def check_data_format(data_format: str) -> str:
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            f"data_format must be 'channels_last' or 'channels_first', got {data_format!r}."
        )
    return data_format


def as_int(value, argument: str, minimum: int = 1) -> int:
    """An int argument that Keras also accepts as a 1-tuple; error names the argument."""
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{argument} must be an int or a 1-tuple for 1D layers, got {value!r}.")
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{argument} must be an integer >= {minimum}, got {value!r}.")
    return value
