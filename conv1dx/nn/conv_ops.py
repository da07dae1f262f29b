"""Pure functions for 1D convolution: output-length arithmetic, Keras/TF padding, and the convolutions.

Everything here is channels-last: `x_BxTxC`, kernels `kernel_KxCgxF` (Cg = C / groups). Output length of a
forward convolution is

    O = floor((T + pad_left + pad_right - dilation * (K - 1) - 1) / stride) + 1

with (pad_left, pad_right) = (0, 0) for "valid", TF's split for "same" (extra padding on the right so that
O = ceil(T / stride)), and (dilation * (K - 1), 0) for "causal".
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from conv1dx.nn import conv_lowering, onednn

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
        if length is not None:
            out = -(-length // stride)
            total = max((out - 1) * stride + span - length, 0)
        elif stride == 1:
            total = span - 1  # O = T whatever T is
        else:
            raise ValueError(
                f"'same' padding with stride {stride} > 1 depends on the sequence length; "
                "give a known number of steps."
            )
        return (total // 2, total - total // 2)
    raise ValueError(f"Unknown padding {padding!r}; use one of {PADDINGS}.")


def conv_output_length(length: int | None, kernel_size: int, padding: str, stride: int = 1,
                       dilation: int = 1) -> int | None:
    """O = floor((T + total_padding - dilation*(K-1) - 1) / stride) + 1 (None for unknown T)."""
    if length is None:
        return None
    pads = padding_amounts(length, kernel_size, padding, stride, dilation)
    return _padded_output_length(length, kernel_size, pads, stride, dilation)


def _padded_output_length(length: int, kernel_size: int, pads: tuple[int, int], stride: int, dilation: int) -> int:
    return (length + pads[0] + pads[1] - dilation * (kernel_size - 1) - 1) // stride + 1


def conv1d(x_BxTxC: jax.Array, kernel_KxCgxF: jax.Array, *, stride: int = 1, padding: str = "valid",
           dilation: int = 1, groups: int = 1) -> jax.Array:
    """Cross-correlation (what deep-learning frameworks call convolution): returns `y_BxOxF`.

    y[b, o, f] = sum_k sum_c x_pad[b, o*stride + k*dilation, g(f)*Cg + c] * kernel[k, c, f], where g(f) is the
    group of output channel f and x_pad is x zero-padded by `padding_amounts`.

    The gradients are written as standard forward convolutions (`_conv1d_bwd`): XLA's own transpose of the
    kernel gradient falls back to a naive loop inside `lax.scan` on CPU (JAX issue #12868), which made a
    scanned training epoch over 100x slower than the same steps run one by one. Being a
    `jax.custom_vjp`, it supports reverse-mode differentiation (`jax.grad`, `jax.vjp`) only, not
    `jax.jvp` / `jax.jacfwd`; `conv1d_patches` computes the same function with both modes.

    On CPU each pass may instead run as oneDNN's convolution (`conv1dx.nn.onednn`) or as conv1dx's own
    AVX-512 loops (`onednn.kernel_gradient_direct`; with stride 1 `onednn.forward_direct` and
    `onednn.input_gradient_direct`), per the `conv_lowering`
    mode in force at the call: "auto" picks among them per pass and shape by timing them once per
    machine (`conv_lowering.choose`); all compute this definition.
    """
    x_BxTxC, kernel_KxCgxF = _promote(x_BxTxC, kernel_KxCgxF)
    kernel_size = kernel_KxCgxF.shape[0]
    pads = padding_amounts(x_BxTxC.shape[1], kernel_size, padding, stride, dilation)
    return _conv1d(x_BxTxC, kernel_KxCgxF, stride, pads, dilation, groups, conv_lowering.get_conv_lowering())


def _promote(x: jax.Array, kernel: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Both operands in their common dtype (XLA's convolution needs equal dtypes; a bfloat16 or int
    input with a float32 kernel computes in float32, like Dense's matmul)."""
    dtype = jnp.result_type(x, kernel)
    return x.astype(dtype), kernel.astype(dtype)


def conv1d_patches(x_BxTxC: jax.Array, kernel_KxCgxF: jax.Array, *, stride: int = 1,
                   padding: str = "valid", dilation: int = 1, groups: int = 1) -> jax.Array:
    """The same convolution as `conv1d`, as one matmul of explicit patches with the kernel.

    patches_BxOx(K*C)[b, o, k*C + c] = x_pad[b, o*stride + k*dilation, c]; y = patches @ kernel. Uses K
    times the input's memory for the patches; its gradients are plain matmuls and strided slices.
    """
    x_BxTxC, kernel_KxCgxF = _promote(x_BxTxC, kernel_KxCgxF)
    k, cg, f = kernel_KxCgxF.shape
    pads = padding_amounts(x_BxTxC.shape[1], k, padding, stride, dilation)
    x_pad = jnp.pad(x_BxTxC, ((0, 0), pads, (0, 0)))
    batch = x_BxTxC.shape[0]
    out_len = (x_pad.shape[1] - dilation * (k - 1) - 1) // stride + 1
    last = (out_len - 1) * stride + 1
    taps = [x_pad[:, i * dilation:i * dilation + last:stride] for i in range(k)]
    if groups == 1:
        return jnp.concatenate(taps, axis=2) @ kernel_KxCgxF.reshape(k * cg, f)
    patches = jnp.stack(taps, axis=2).reshape(batch, out_len, k, groups, cg)
    kernel = kernel_KxCgxF.reshape(k, cg, groups, f // groups)
    return jnp.einsum("bokgc,kcgf->bogf", patches, kernel).reshape(batch, out_len, f)


def _conv1d_xla(x_BxTxC, kernel_KxCgxF, stride, pads, dilation, groups):
    return lax.conv_general_dilated(
        x_BxTxC,
        kernel_KxCgxF,
        window_strides=(stride,),
        padding=(pads,),
        rhs_dilation=(dilation,),
        dimension_numbers=_DIMENSION_NUMBERS,
        feature_group_count=groups,
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5, 6))
def _conv1d(x_BxTxC, kernel_KxCgxF, stride, pads, dilation, groups, mode):
    """`mode` is the `conv_lowering` mode where `conv1d` was called: the backward passes, traced later,
    follow it too."""
    return _forward(x_BxTxC, kernel_KxCgxF, stride, pads, dilation, groups, mode)


def _conv1d_fwd(x_BxTxC, kernel_KxCgxF, stride, pads, dilation, groups, mode):
    y = _forward(x_BxTxC, kernel_KxCgxF, stride, pads, dilation, groups, mode)
    return y, (x_BxTxC, kernel_KxCgxF)


def _conv1d_bwd(stride, pads, dilation, groups, mode, residuals, dy_BxOxF):
    x_BxTxC, kernel_KxCgxF = residuals
    length, kernel_size = x_BxTxC.shape[1], kernel_KxCgxF.shape[0]
    geometry = (stride, pads, dilation, groups, mode)

    def xla_input_gradient(dy, kernel):
        return _input_gradient(dy, kernel, length, stride, pads, dilation, groups)

    def xla_kernel_gradient(x, dy):
        return _kernel_gradient(dy, x, kernel_size, stride, pads, dilation, groups)

    def onednn_input_gradient(dy, kernel, blocked):
        return onednn.input_gradient(dy, kernel, length, stride, pads, dilation, blocked)

    def onednn_kernel_gradient(x, dy, blocked):
        return onednn.kernel_gradient(x, dy, kernel_size, stride, pads, dilation, blocked)

    def direct_kernel_gradient(x, dy):
        return onednn.kernel_gradient_direct(x, dy, kernel_size, stride, pads, dilation)

    def direct_input_gradient(dy, kernel):
        return onednn.input_gradient_direct(dy, kernel, length, pads, dilation)

    input_gradients = {**_onednn_variants(onednn_input_gradient), **_stride_one(stride, direct_input_gradient)}
    dx = _lowered("input_gradient", (dy_BxOxF, kernel_KxCgxF), x_BxTxC, kernel_KxCgxF, dy_BxOxF, geometry,
                  xla_input_gradient, input_gradients)
    kernel_gradients = {**_onednn_variants(onednn_kernel_gradient), "direct": direct_kernel_gradient}
    dkernel = _lowered("kernel_gradient", (x_BxTxC, dy_BxOxF), x_BxTxC, kernel_KxCgxF, dy_BxOxF, geometry,
                       xla_kernel_gradient, kernel_gradients)
    return dx, dkernel


def _forward(x_BxTxC, kernel_KxCgxF, stride, pads, dilation, groups, mode):
    def xla_forward(x, kernel):
        return _conv1d_xla(x, kernel, stride, pads, dilation, groups)

    def onednn_forward(x, kernel, blocked):
        return onednn.forward(x, kernel, stride, pads, dilation, blocked)

    def direct_forward(x, kernel):
        return onednn.forward_direct(x, kernel, pads, dilation)

    out_len = _padded_output_length(x_BxTxC.shape[1], kernel_KxCgxF.shape[0], pads, stride, dilation)
    dy_shape = jax.ShapeDtypeStruct((x_BxTxC.shape[0], out_len, kernel_KxCgxF.shape[2]), x_BxTxC.dtype)
    forwards = {**_onednn_variants(onednn_forward), **_stride_one(stride, direct_forward)}
    return _lowered("forward", (x_BxTxC, kernel_KxCgxF), x_BxTxC, kernel_KxCgxF, dy_shape,
                    (stride, pads, dilation, groups, mode), xla_forward, forwards)


def _onednn_variants(onednn_pass):
    """oneDNN's pass on the channels-last arrays ("onednn") and in its own blocked layouts."""
    return {"onednn": lambda *ops: onednn_pass(*ops, False), "onednn_blocked": lambda *ops: onednn_pass(*ops, True)}


def _stride_one(stride, direct_pass):
    """{"direct": direct_pass} where conv1dx's correlation loops compute the pass (stride 1), else {}."""
    return {"direct": direct_pass} if stride == 1 else {}


def _lowered(pass_name, operands, x_BxTxC, kernel_KxCgxF, y_BxOxF, geometry, xla_pass, cpu_passes):
    """One pass of the convolution, computed by the implementation `conv_lowering` picks for its shapes.

    `xla_pass(*operands)` is XLA's formulation; `cpu_passes` maps candidate names to the CPU handlers'
    implementations of the same pass (float32, one group): oneDNN's, and conv1dx's own loops ("direct", a
    candidate where the CPU has AVX-512F: every kernel gradient, the forward pass and input gradient with
    stride 1). A CPU implementation runs only when the function is lowered for the CPU.
    """
    choice = _lowering_choice(pass_name, operands, x_BxTxC, kernel_KxCgxF, y_BxOxF, geometry, xla_pass,
                              cpu_passes)
    if choice == "xla":
        return xla_pass(*operands)
    return lax.platform_dependent(*operands, cpu=cpu_passes[choice], default=xla_pass)


def _lowering_choice(pass_name, operands, x_BxTxC, kernel_KxCgxF, y_BxOxF, geometry, xla_pass,
                     cpu_passes) -> str:
    stride, pads, dilation, groups, mode = geometry
    batch, length, channels = x_BxTxC.shape
    kernel_size, _, filters = kernel_KxCgxF.shape
    out_len = y_BxOxF.shape[1]
    supported = (groups == 1 and x_BxTxC.dtype == jnp.float32 and kernel_KxCgxF.dtype == jnp.float32
                 and min(batch, length, channels, filters, kernel_size, out_len) > 0
                 and jax.default_backend() == "cpu")
    flops = 2 * batch * out_len * channels * filters * kernel_size
    nbytes = 4 * (batch * length * channels + batch * out_len * filters + kernel_size * channels * filters)
    if mode == "xla" or not supported or (mode == "auto" and not conv_lowering.worth_timing(flops, nbytes)):
        return "xla"
    if not onednn.available():
        return "xla"
    if mode == "onednn":
        return "onednn"
    key = (f"{pass_name} B{batch} T{length} C{channels} F{filters} K{kernel_size} stride{stride} "
           f"pad{pads[0]},{pads[1]} dilation{dilation}")
    fingerprint = conv_lowering.machine_fingerprint(onednn.build_id())
    shapes = [jax.ShapeDtypeStruct(op.shape, op.dtype) for op in operands]
    offered = {name: function for name, function in cpu_passes.items()
               if name != "direct" or onednn.direct_available()}
    return conv_lowering.choose(key, fingerprint, {"xla": xla_pass, **offered}, shapes)


_conv1d.defvjp(_conv1d_fwd, _conv1d_bwd)


def _input_gradient(dy_BxOxF, kernel_KxCgxF, length, stride, pads, dilation, groups):
    """dx = the transposed convolution of dy, cropped back to the unpadded input: `dx_BxTxC`.

    When the output is short next to the kernel (O <= 2K), XLA's transposed convolution pads dy by more
    than its own length and was over 20x slower on CPU than a matmul followed by K shifted adds (WISDM's
    last convolution, measured during development), so that case uses the matmul.
    """
    if groups == 1 and dy_BxOxF.shape[1] <= 2 * kernel_KxCgxF.shape[0]:
        return _input_gradient_matmul(dy_BxOxF, kernel_KxCgxF, length, stride, pads, dilation)
    k, cg, f = kernel_KxCgxF.shape
    fg = f // groups
    # Kernel of the transposed convolution, per group: in channels = that group's filters, out = its inputs.
    kernel_KxFgxC = (kernel_KxCgxF.reshape(k, cg, groups, fg).transpose(0, 3, 2, 1)
                     .reshape(k, fg, groups * cg))
    kernel_KxFgxC = jnp.flip(kernel_KxFgxC, axis=0)
    span = dilation * (k - 1)
    padded_length = length + pads[0] + pads[1]
    reach = (dy_BxOxF.shape[1] - 1) * stride + span + 1
    dx_pad = lax.conv_general_dilated(
        dy_BxOxF,
        kernel_KxFgxC,
        window_strides=(1,),
        padding=((span, span + padded_length - reach),),
        lhs_dilation=(stride,),
        rhs_dilation=(dilation,),
        dimension_numbers=_DIMENSION_NUMBERS,
        feature_group_count=groups,
    )
    return dx_pad[:, pads[0]:pads[0] + length]


def _input_gradient_matmul(dy_BxOxF, kernel_KxCxF, length, stride, pads, dilation):
    """dx as patches: dpatches_BxOxKxC = dy @ kernel^T, each tap k added back at o*stride + k*dilation."""
    batch, out_len, f = dy_BxOxF.shape
    k, c, _ = kernel_KxCxF.shape
    dpatches = (dy_BxOxF.reshape(batch * out_len, f) @ kernel_KxCxF.reshape(k * c, f).T)
    dpatches = dpatches.reshape(batch, out_len, k, c)
    padded_length = length + pads[0] + pads[1]
    reach = (out_len - 1) * stride + 1
    zero = jnp.zeros((), dy_BxOxF.dtype)
    dx_pad = sum(
        lax.pad(dpatches[:, :, tap], zero,
                ((0, 0, 0), (tap * dilation, padded_length - tap * dilation - reach, stride - 1), (0, 0, 0)))
        for tap in range(k)
    )
    return dx_pad[:, pads[0]:pads[0] + length]


def _kernel_gradient(dy_BxOxF, x_BxTxC, kernel_size, stride, pads, dilation, groups):
    """dkernel[k, c, f] = sum_{b,o} x_pad[b, o*stride + k*dilation, g(f)*Cg + c] * dy[b, o, f].

    Both ungrouped forms are one forward convolution that contracts over batch and time; they differ
    in which operand is transposed to put the batch innermost. Transposing dy when F < C and x
    otherwise trained every seed model as fast as the faster form forced everywhere, within the
    spread of rounds, and IMDB 1.24x faster than always transposing x (its first convolution has
    C = 128, F = 32, and XLA fused the transpose of x with the embedding lookup that produced it);
    experiments/conv_lowering/README.md.
    """
    if groups != 1:
        return _kernel_gradient_grouped(dy_BxOxF, x_BxTxC, kernel_size, stride, pads, dilation, groups)
    if dy_BxOxF.shape[2] < x_BxTxC.shape[2]:
        return _kernel_gradient_transposing_dy(dy_BxOxF, x_BxTxC, kernel_size, stride, pads, dilation)
    return _kernel_gradient_transposing_x(dy_BxOxF, x_BxTxC, kernel_size, stride, pads, dilation)


def _kernel_gradient_transposing_x(dy_BxOxF, x_BxTxC, kernel_size, stride, pads, dilation):
    """A forward convolution over time with the batch as the contracted "channel" axis:
    lhs x as (C, Tpad, B), rhs dy as (O, B, F) -> (C, K', F), stepping k by `dilation`, o by `stride`."""
    x_pad = jnp.pad(x_BxTxC, ((0, 0), pads, (0, 0)))
    full_CxKxF = lax.conv_general_dilated(
        x_pad.transpose(2, 1, 0),
        dy_BxOxF.transpose(1, 0, 2),
        window_strides=(dilation,),
        padding=((0, 0),),
        rhs_dilation=(stride,),
        dimension_numbers=_DIMENSION_NUMBERS,
    )
    return full_CxKxF[:, :kernel_size].transpose(1, 0, 2)


def _kernel_gradient_transposing_dy(dy_BxOxF, x_BxTxC, kernel_size, stride, pads, dilation):
    """The batch folded into time: rows q = b * Tpad + t of x are the window, dy is the input.

    With dy_up[b, o * stride] = dy[b, o] (zero elsewhere on x_pad's time grid), flattened to rows,
    dkernel[k] = sum_q x_rows[q]^T dy_up_rows[q - k * dilation]: terms that cross from one example
    into the next meet dy_up's zero tail, because (O - 1) * stride + k * dilation < Tpad. One
    convolution of dy_up as (F, span + rows, 1) (left-padded by span = dilation * (K - 1)) with x
    as a (rows, 1, C) kernel gives output j = K - 1 - k at stride `dilation`.
    """
    x_pad = jnp.pad(x_BxTxC, ((0, 0), pads, (0, 0)))
    batch, padded_length, c = x_pad.shape
    _, out_len, f = dy_BxOxF.shape
    zero = jnp.zeros((), dy_BxOxF.dtype)
    tail = padded_length - ((out_len - 1) * stride + 1)
    dy_up = lax.pad(dy_BxOxF, zero, ((0, 0, 0), (0, tail, stride - 1), (0, 0, 0)))
    span = dilation * (kernel_size - 1)
    rows = batch * padded_length
    lhs_Fx_span_plus_rows_x1 = jnp.pad(dy_up.reshape(rows, f).T, ((0, 0), (span, 0)))[:, :, None]
    out_FxKxC = lax.conv_general_dilated(
        lhs_Fx_span_plus_rows_x1,
        x_pad.reshape(rows, 1, c),
        window_strides=(dilation,),
        padding=((0, 0),),
        dimension_numbers=_DIMENSION_NUMBERS,
    )
    return jnp.flip(out_FxKxC, axis=1).transpose(1, 2, 0)


def _kernel_gradient_grouped(dy_BxOxF, x_BxTxC, kernel_size, stride, pads, dilation, groups):
    """Grouped convolutions: explicit patches contracted with dy per group."""
    x_pad = jnp.pad(x_BxTxC, ((0, 0), pads, (0, 0)))
    batch, out_len, f = dy_BxOxF.shape
    c = x_BxTxC.shape[2]
    cg, fg = c // groups, f // groups
    last = (out_len - 1) * stride + 1
    patches = jnp.stack(
        [x_pad[:, k * dilation:k * dilation + last:stride] for k in range(kernel_size)], axis=2
    ).reshape(batch, out_len, kernel_size, groups, cg)
    grad = jnp.einsum("bokgc,bogf->kcgf", patches, dy_BxOxF.reshape(batch, out_len, groups, fg))
    return grad.reshape(kernel_size, cg, f)


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
    x_BxTxC, kernel_KxFxC = _promote(x_BxTxC, kernel_KxFxC)
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


def downsample_mask(mask_BxT: jax.Array | None, out_len: int, stride: int, span: int,
                    pad_left: int) -> jax.Array | None:
    """The padding mask of a windowed layer's output (convolution or pooling).

    Output step o reads input steps up to `o * stride + span - 1 - pad_left`; it is valid when that last
    step is valid, so with right-padded sequences no valid output ever reads a padded step.
    """
    if mask_BxT is None:
        return None
    last = jnp.arange(out_len) * stride + span - 1 - pad_left
    return mask_BxT[:, jnp.clip(last, 0, mask_BxT.shape[1] - 1)]


def to_channels_last(x: jax.Array, data_format: str) -> jax.Array:
    """(B, C, T) -> (B, T, C) for "channels_first"; identity for "channels_last"."""
    return jnp.swapaxes(x, 1, 2) if data_format == "channels_first" else x


def from_channels_last(x: jax.Array, data_format: str) -> jax.Array:
    """Inverse of `to_channels_last`."""
    return jnp.swapaxes(x, 1, 2) if data_format == "channels_first" else x

