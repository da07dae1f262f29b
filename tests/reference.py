"""Independent NumPy references written from the definitions (loops, no conv1dx code).

Shared by the layer tests. Everything is channels-last, float64 internally.
"""

import numpy as np


def same_padding(length, kernel_size, stride, dilation):
    """TensorFlow's SAME: output ceil(T/S); padding split with the extra step on the right."""
    span = dilation * (kernel_size - 1) + 1
    out = -(-length // stride)
    total = max((out - 1) * stride + span - length, 0)
    return total // 2, total - total // 2


def forward_padding(length, kernel_size, padding, stride, dilation):
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return dilation * (kernel_size - 1), 0
    return same_padding(length, kernel_size, stride, dilation)


def conv1d(x, kernel, bias=None, *, stride=1, padding="valid", dilation=1, groups=1):
    """y[b,o,f] = sum_k sum_c xpad[b, o*S + k*D, g*Cg + c] * kernel[k, c, f] (+ bias[f])."""
    x = np.asarray(x, np.float64)
    kernel = np.asarray(kernel, np.float64)
    batch, length, channels = x.shape
    k_size, cg, filters = kernel.shape
    left, right = forward_padding(length, k_size, padding, stride, dilation)
    xpad = np.concatenate([np.zeros((batch, left, channels)), x, np.zeros((batch, right, channels))], 1)
    fg = filters // groups
    outputs = []
    o = 0
    while o * stride + dilation * (k_size - 1) <= xpad.shape[1] - 1:
        row = np.zeros((batch, filters))
        for f in range(filters):
            g = f // fg
            for k in range(k_size):
                t = o * stride + k * dilation
                row[:, f] += xpad[:, t, g * cg:(g + 1) * cg] @ kernel[k, :, f]
        outputs.append(row)
        o += 1
    y = np.stack(outputs, 1) if outputs else np.zeros((batch, 0, filters))
    if bias is not None:
        y = y + np.asarray(bias, np.float64)
    return y


def conv1d_transpose(x, kernel, bias=None, *, stride=1, padding="valid", dilation=1, output_padding=None):
    """Keras Conv1DTranspose by scattering: each x[t] adds kernel[k] @ x[t] at t*S + k*D, then crop.

    `kernel` is (K, F, C). The full scatter has length (T-1)*S + span; Keras keeps the window that starts
    `crop` steps in and has length `out` (zeros beyond the scatter when output_padding extends it).
    """
    x = np.asarray(x, np.float64)
    kernel = np.asarray(kernel, np.float64)
    batch, length, _ = x.shape
    k_size, filters, _ = kernel.shape
    span = dilation * (k_size - 1) + 1
    full = np.zeros((batch, (length - 1) * stride + span + stride, filters))
    for t in range(length):
        for k in range(k_size):
            full[:, t * stride + k * dilation] += x[:, t] @ kernel[k].T
    if padding == "valid":
        crop = 0
        out = length * stride + max(span - stride, 0) if output_padding is None else \
            (length - 1) * stride + span + output_padding
    else:
        if output_padding is None:
            out = length * stride
            total = stride + span - 2
        else:
            pad = span // 2
            out = (length - 1) * stride + span - 2 * pad + output_padding
            total = span + span % 2 - 2 + output_padding
        crop = span - 1 - min(total // 2 + total % 2, span - 1)
    y = full[:, crop:crop + out]
    if bias is not None:
        y = y + np.asarray(bias, np.float64)
    return y
