"""Independent NumPy references written from the definitions (loops, no conv1dx code).

Shared by the layer tests: convolutions (channels-last, float64 internally) and Keras' GRU/LSTM
step by step.
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


def conv1d_input_gradient(dy, kernel, length, *, stride=1, padding="valid", dilation=1):
    """dx[b, t, c] = sum of dy[b, o, f] * kernel[k, c, f] over the (o, k) with o*S + k*D - left = t."""
    dy = np.asarray(dy, np.float64)
    kernel = np.asarray(kernel, np.float64)
    batch, out_len, _ = dy.shape
    k_size, channels, _ = kernel.shape
    left, _ = forward_padding(length, k_size, padding, stride, dilation)
    dx = np.zeros((batch, length, channels))
    for o in range(out_len):
        for k in range(k_size):
            t = o * stride + k * dilation - left
            if 0 <= t < length:
                dx[:, t] += dy[:, o] @ kernel[k].T
    return dx


def conv1d_kernel_gradient(x, dy, kernel_size, *, stride=1, padding="valid", dilation=1):
    """dkernel[k, c, f] = sum over b, o of xpad[b, o*S + k*D, c] * dy[b, o, f]."""
    x = np.asarray(x, np.float64)
    dy = np.asarray(dy, np.float64)
    batch, length, channels = x.shape
    left, right = forward_padding(length, kernel_size, padding, stride, dilation)
    xpad = np.concatenate([np.zeros((batch, left, channels)), x, np.zeros((batch, right, channels))], 1)
    dkernel = np.zeros((kernel_size, channels, dy.shape[2]))
    for o in range(dy.shape[1]):
        for k in range(kernel_size):
            dkernel[k] += xpad[:, o * stride + k * dilation].T @ dy[:, o]
    return dkernel


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


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def np_gru(x, valid, w, *, reset_after, go_backwards=False, h0=None, in_masks=None,
           rec_masks=None, zero_output=False):
    """Keras' GRU: (outputs in processing order BxTxU, final h). Masks: 3 per-gate arrays."""
    batch, steps, _ = x.shape
    kernel, rec = w["kernel"], w["recurrent_kernel"]
    units = rec.shape[0]
    gate = lambda m, g: m[:, g * units:(g + 1) * units]  # noqa: E731
    if reset_after:
        b_in, b_rec = w["bias"][0], w["bias"][1]
    else:
        b_in, b_rec = w["bias"], np.zeros(3 * units)
    h = np.zeros((batch, units)) if h0 is None else h0.astype(np.float64)
    ones_x, ones_h = [np.ones(x.shape[::2])] * 3, [np.ones((batch, units))] * 3
    in_masks = ones_x if in_masks is None else in_masks
    rec_masks = ones_h if rec_masks is None else rec_masks
    outputs = []
    for t in (reversed(range(steps)) if go_backwards else range(steps)):
        x_z, x_r, x_h = ((x[:, t] * in_masks[g]) @ gate(kernel, g) + b_in[g * units:(g + 1) * units]
                         for g in range(3))
        h_z, h_r, h_h = (h * rec_masks[g] for g in range(3))
        z = sigmoid(x_z + h_z @ gate(rec, 0) + b_rec[:units])
        r = sigmoid(x_r + h_r @ gate(rec, 1) + b_rec[units:2 * units])
        if reset_after:
            cand = np.tanh(x_h + r * (h_h @ gate(rec, 2) + b_rec[2 * units:]))
        else:
            cand = np.tanh(x_h + (r * h_h) @ gate(rec, 2))
        h_new = z * h + (1 - z) * cand
        ok = valid[:, t][:, None]
        h = np.where(ok, h_new, h)
        outputs.append(np.where(ok, h, 0.0) if zero_output else h)
    return np.stack(outputs, 1), h


def np_lstm(x, valid, w, *, go_backwards=False, h0=None, c0=None, in_mask=None, rec_mask=None):
    """Keras' LSTM, gates [i, f, c, o]: returns (outputs in processing order, final h, final c)."""
    batch, steps, _ = x.shape
    kernel, rec, bias = w["kernel"], w["recurrent_kernel"], w["bias"]
    units = rec.shape[0]
    h = np.zeros((batch, units)) if h0 is None else h0.astype(np.float64)
    c = np.zeros((batch, units)) if c0 is None else c0.astype(np.float64)
    in_mask = np.ones(x.shape[::2]) if in_mask is None else in_mask
    rec_mask = np.ones((batch, units)) if rec_mask is None else rec_mask
    outputs = []
    for t in (reversed(range(steps)) if go_backwards else range(steps)):
        pre = (x[:, t] * in_mask) @ kernel + (h * rec_mask) @ rec + bias
        i, f, g, o = (pre[:, k * units:(k + 1) * units] for k in range(4))
        c_new = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h_new = sigmoid(o) * np.tanh(c_new)
        ok = valid[:, t][:, None]
        h, c = np.where(ok, h_new, h), np.where(ok, c_new, c)
        outputs.append(h)
    return np.stack(outputs, 1), h, c
