"""A convolution applied straight to token ids: `conv1d(table[ids], kernel)` without the embedded rows.

A Conv1D right after an Embedding computes, at every output step o,

    y[b, o] = sum_k table[ids[b, o*stride + k*dilation - pad_left]] @ kernel[k]
            = sum_k projected[k][ids[b, o*stride + k*dilation - pad_left]],   projected[k] = table @ kernel[k]

so the K x (V x D x F) products `projected` can be computed once per call, and the convolution becomes
K gathers of F-wide rows. That is 2 V D K F multiply-adds instead of 2 B O D K F: fewer whenever the
vocabulary V is smaller than the B x O output steps of a batch. IMDB's first layer (V = 10,000,
B x O = 128 x 494, D = 128, F = 32, K = 7) needs 0.57 instead of 3.6 GFLOP per pass. The gradients
follow the same way: the K F-wide output gradients are scatter-added into `d_projected` (V x K x F),
and `d_table = d_projected @ kernel^T`, `d_kernel = table^T @ d_projected` are two more
V x D x K F matmuls. Nothing of size B x T x D (the embedded sequence) is ever formed.

On CPU (float32, unless `conv_lowering` is pinned to "xla") the taps' gathers and scatter-adds run as
conv1dx's C++ handlers (`onednn.embedding_taps_sum` / `embedding_taps_scatter`, built with the oneDNN
handlers): one pass writing each output step once, and the scatters spread over XLA's threads. XLA's
own operations (a loop of gathers, K scatter-adds) took IMDB's epoch 1.28x longer (an interleaved A/B of
7 rounds, scratch script); they remain the path on other backends.

Semantics are those of `Embedding` followed by `conv_ops.conv1d`: an id outside `[0, V)` gives a NaN
row (every output step whose window holds it is NaN, and the kernel gradient is NaN) and no table
gradient; zero padding ("same", "causal") contributes nothing. The sums are reassociated, so float32
results agree with the unfused layers to float32 rounding, not bit for bit. In bfloat16 the fused path
computes and accumulates in float32 (the unfused convolution rounds its input rows and sums in
bfloat16), so it is the more accurate of the two and they differ by bfloat16 rounding.

`Sequential` uses it for an Embedding followed by a channels-last, single-group Conv1D when
`fusion_choice` says so: by the mode `set_embedding_conv_fusion` (or ``$CONV1DX_EMBEDDING_CONV_FUSION``)
sets, ``"auto"`` (the default: float32 layers whose fused passes need at most half the FLOPs are timed
once per machine against the unfused layers, both forward and backward, and the faster is kept with the
convolution lowering's decisions, `conv_lowering.tuning_file()`), ``"on"`` (whenever the layers allow
it) or ``"off"``. Like the lowering, the mode is read when a function is traced.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from conv1dx.nn import conv_lowering, onednn
from conv1dx.nn.conv_ops import conv1d, padding_amounts
from conv1dx.nn.lookup import embed
from conv1dx.nn.trace_setting import TraceSetting

MODES = ("auto", "on", "off")
# "auto" times fusion only where it needs at most this share of the unfused FLOPs: elsewhere the gathers
# and scatters it adds cannot be paid for.
MAX_FLOP_SHARE = 0.5

MODE = TraceSetting("embedding_conv_fusion", MODES, "CONV1DX_EMBEDDING_CONV_FUSION", "auto",
                    "an embedding-convolution fusion mode")


def get_embedding_conv_fusion() -> str:
    """The mode in force: set by `set_embedding_conv_fusion`, else $CONV1DX_EMBEDDING_CONV_FUSION, else "auto"."""
    return MODE.get()


def set_embedding_conv_fusion(mode: str | None) -> str | None:
    """Sets the mode for functions traced from now on (None: back to the environment's); returns the old one."""
    return MODE.set(mode)


def embedding_conv_fusion(mode: str):
    """`with embedding_conv_fusion("off"): ...` traces the block's models with that mode."""
    return MODE.using(mode)


def embedding_conv1d(table_VxD: jax.Array, ids_BxT: jax.Array, kernel_KxDxF: jax.Array, *, stride: int = 1,
                     padding: str = "valid", dilation: int = 1) -> jax.Array:
    """`conv1d(table[ids], kernel)` computed from `table @ kernel[k]`: returns `y_BxOxF` (see the module).

    `ids_BxT` are int token ids (NaN rows for ids outside `[0, V)`); `kernel_KxDxF` has one group.
    """
    kernel_size = kernel_KxDxF.shape[0]
    pads = padding_amounts(ids_BxT.shape[1], kernel_size, padding, stride, dilation)
    handlers = _use_handlers(jnp.result_type(table_VxD, kernel_KxDxF))
    return _embedding_conv1d(table_VxD, ids_BxT, kernel_KxDxF, stride, pads, dilation, handlers)


def _window_ids(ids_BxT, vocabulary, kernel_size, stride, pads, dilation) -> jax.Array:
    """`rows_KxBxO`: the row of `_extended` that tap k reads at output step o (V: NaN row, V + 1: zeros)."""
    checked = jnp.where((ids_BxT < 0) | (ids_BxT >= vocabulary), vocabulary, ids_BxT)
    padded = jnp.pad(checked, ((0, 0), pads), constant_values=vocabulary + 1)
    out_len = (padded.shape[1] - dilation * (kernel_size - 1) - 1) // stride + 1
    last = (out_len - 1) * stride + 1
    return jnp.stack([padded[:, k * dilation:k * dilation + last:stride] for k in range(kernel_size)])


def _extended(table_VxD, kernel_KxDxF) -> jax.Array:
    """`projected_Kx(V+2)xF`: table @ kernel[k] for every tap, then a NaN row (bad ids) and a zero row."""
    vocabulary, dim = table_VxD.shape
    kernel_size, _, filters = kernel_KxDxF.shape
    # One wide matmul (V x D) @ (D x K F), then one transpose: faster on CPU than K narrow ones.
    wide = table_VxD @ kernel_KxDxF.transpose(1, 0, 2).reshape(dim, kernel_size * filters)
    projected = wide.reshape(vocabulary, kernel_size, filters).transpose(1, 0, 2)
    extra = jnp.stack([jnp.full((kernel_size, filters), jnp.nan, wide.dtype),
                       jnp.zeros((kernel_size, filters), wide.dtype)], axis=1)
    return jnp.concatenate([projected, extra], axis=1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5, 6))
def _embedding_conv1d(table_VxD, ids_BxT, kernel_KxDxF, stride, pads, dilation, handlers):
    """`handlers`: the taps' gathers and scatters run as conv1dx's C++ handlers on CPU (decided when
    `embedding_conv1d` is traced, so the backward pass, traced later, does the same)."""
    return _forward(table_VxD, ids_BxT, kernel_KxDxF, stride, pads, dilation, handlers)[0]


def _use_handlers(dtype) -> bool:
    """The C++ handlers (`onednn.embedding_taps_sum` / `_scatter`) for float32 on CPU, unless the
    convolution lowering is pinned to XLA's own operations."""
    return (jnp.promote_types(dtype, jnp.float32) == jnp.float32 and jax.default_backend() == "cpu"
            and conv_lowering.get_conv_lowering() != "xla" and onednn.available())


def _forward(table_VxD, ids_BxT, kernel_KxDxF, stride, pads, dilation, handlers):
    out_dtype = jnp.result_type(table_VxD, kernel_KxDxF)
    table_VxD, kernel_KxDxF = _widened(table_VxD, kernel_KxDxF)
    rows_KxBxO = _window_ids(ids_BxT, table_VxD.shape[0], kernel_KxDxF.shape[0], stride, pads, dilation)
    projected = _extended(table_VxD, kernel_KxDxF)
    if handlers:
        y_BxOxF = jax.lax.platform_dependent(projected, rows_KxBxO, cpu=onednn.embedding_taps_sum,
                                             default=_taps_sum)
    else:
        y_BxOxF = _taps_sum(projected, rows_KxBxO)
    return y_BxOxF.astype(out_dtype), rows_KxBxO


def _taps_sum(projected_KxRxF, rows_KxBxO):
    """y_BxOxF = sum_k projected[k][rows[k]], in XLA's operations."""
    def add_tap(k, y_BxOxF):
        return y_BxOxF + jnp.take(projected_KxRxF[k], rows_KxBxO[k], axis=0, mode="clip")  # rows are in bounds

    # A loop, so y is written once per tap and then read once by each of its users. Summed as one
    # expression, XLA on CPU wrote out every tap's gather and summed them again in each user of y
    # (pooling, the activation's gradient): IMDB's epoch ran 1.09-1.13x faster with the loop (two
    # interleaved A/B runs of 7 and 9 rounds, scratch script, commit 8ce8d7f).
    first = jnp.take(projected_KxRxF[0], rows_KxBxO[0], axis=0, mode="clip")
    return jax.lax.fori_loop(1, projected_KxRxF.shape[0], add_tap, first)


def _taps_scatter(dy_BxOxF, rows_KxBxO, num_rows):
    """d_projected_KxRxF[k, r] = the sum of dy over the steps whose tap k reads row r, in XLA's operations."""
    kernel_size, filters = rows_KxBxO.shape[0], dy_BxOxF.shape[2]
    d_rows = dy_BxOxF.reshape(-1, filters)
    d_projected = jnp.zeros((kernel_size, num_rows, filters), dy_BxOxF.dtype)
    for k in range(kernel_size):  # one scatter per tap: faster on CPU than one over (B O K) rows
        d_projected = d_projected.at[k, rows_KxBxO[k].reshape(-1)].add(d_rows, mode="promise_in_bounds")
    return d_projected


def _widened(table_VxD, kernel_KxDxF):
    """Both in (at least) float32, as Embedding looks up: the table's gradient sums every occurrence of a
    token, which would saturate in bfloat16."""
    wide = jnp.promote_types(jnp.result_type(table_VxD, kernel_KxDxF), jnp.float32)
    return table_VxD.astype(wide), kernel_KxDxF.astype(wide)


def _forward_rule(table_VxD, ids_BxT, kernel_KxDxF, stride, pads, dilation, handlers):
    y_BxOxF, rows_KxBxO = _forward(table_VxD, ids_BxT, kernel_KxDxF, stride, pads, dilation, handlers)
    return y_BxOxF, (table_VxD, kernel_KxDxF, rows_KxBxO)


def _backward_rule(stride, pads, dilation, handlers, residuals, dy_BxOxF):
    table, kernel, rows_KxBxO = residuals
    table_VxD, kernel_KxDxF = _widened(table, kernel)
    vocabulary, dim = table_VxD.shape
    kernel_size, _, filters = kernel_KxDxF.shape
    dy_BxOxF = dy_BxOxF.astype(table_VxD.dtype)
    if handlers:
        scatter = functools.partial(onednn.embedding_taps_scatter, num_rows=vocabulary + 2)
        d_projected = jax.lax.platform_dependent(dy_BxOxF, rows_KxBxO, cpu=scatter,
                                                 default=functools.partial(_taps_scatter, num_rows=vocabulary + 2))
    else:
        d_projected = _taps_scatter(dy_BxOxF, rows_KxBxO, vocabulary + 2)
    d_wide = d_projected[:, :vocabulary].transpose(1, 0, 2).reshape(vocabulary, kernel_size * filters)
    d_table = d_wide @ kernel_KxDxF.transpose(0, 2, 1).reshape(kernel_size * filters, dim)
    d_kernel = (table_VxD.T @ d_wide).reshape(dim, kernel_size, filters).transpose(1, 0, 2)
    # The unfused kernel gradient sums x^T dy over the embedded rows, NaN wherever a window read a bad
    # id: so is this one (the table's rows above never see the NaN row, as in the lookup's gradient).
    read_bad_id = jnp.any(rows_KxBxO == vocabulary)
    d_kernel = jnp.where(read_bad_id, jnp.nan, d_kernel)
    return d_table.astype(table.dtype), None, d_kernel.astype(kernel.dtype)


_embedding_conv1d.defvjp(_forward_rule, _backward_rule)


def unfused_embedding_conv1d(table_VxD, ids_BxT, kernel_KxDxF, *, stride=1, padding="valid", dilation=1):
    """The same function as the layers compute it: the looked-up rows, then the convolution."""
    return conv1d(embed(table_VxD, ids_BxT), kernel_KxDxF, stride=stride, padding=padding, dilation=dilation)


def fusion_choice(table: jax.ShapeDtypeStruct, ids: jax.ShapeDtypeStruct, kernel: jax.ShapeDtypeStruct, *,
                  stride: int, padding: str, dilation: int) -> bool:
    """Whether to compute an Embedding + Conv1D with these shapes as `embedding_conv1d` (see the module)."""
    mode = get_embedding_conv_fusion()
    if mode != "auto":
        return mode == "on"
    vocabulary, dim = table.shape
    kernel_size, _, filters = kernel.shape
    batch, length = ids.shape
    pads = padding_amounts(length, kernel_size, padding, stride, dilation)
    out_len = (length + pads[0] + pads[1] - dilation * (kernel_size - 1) - 1) // stride + 1
    if (table.dtype != jnp.float32 or kernel.dtype != jnp.float32 or out_len < 1
            or vocabulary > MAX_FLOP_SHARE * batch * out_len):
        return False
    flops = 2 * batch * out_len * dim * filters * kernel_size
    if flops < conv_lowering.MIN_TUNED_FLOPS:
        return False
    geometry = dict(stride=stride, padding=padding, dilation=dilation)

    def trained(function):
        def forward_and_backward(table_VxD, kernel_KxDxF, noise_BxT, dy_BxOxF):
            # the timing's operands are random floats: spread the ids over the whole vocabulary
            ids_BxT = (jnp.abs(noise_BxT) * 7919).astype(jnp.int32) % vocabulary
            y, backward = jax.vjp(lambda t, k: function(t, ids_BxT, k, **geometry), table_VxD, kernel_KxDxF)
            d_table, d_kernel = backward(dy_BxOxF)
            return jnp.sum(y) + jnp.sum(d_table) + jnp.sum(d_kernel)
        return forward_and_backward

    candidates = {"xla": trained(unfused_embedding_conv1d), "fused": trained(embedding_conv1d)}
    lowering = conv_lowering.get_conv_lowering()
    device = jax.devices()[0]
    key = (f"embedding_conv B{batch} T{length} V{vocabulary} D{dim} F{filters} K{kernel_size} "
           f"stride{stride} pad{pads[0]},{pads[1]} dilation{dilation} lowering {lowering} "
           f"on {device.platform} {device.device_kind}")
    # The unfused candidate's convolutions depend on the oneDNN build only where they may use it.
    uses_onednn = device.platform == "cpu" and lowering != "xla"
    fingerprint = conv_lowering.machine_fingerprint(onednn.build_id() if uses_onednn else "not used")
    operands = [jax.ShapeDtypeStruct(table.shape, table.dtype), jax.ShapeDtypeStruct(kernel.shape, kernel.dtype),
                jax.ShapeDtypeStruct(ids.shape, jnp.float32),
                jax.ShapeDtypeStruct((batch, out_len, filters), jnp.float32)]
    return conv_lowering.choose(key, fingerprint, candidates, operands) == "fused"
