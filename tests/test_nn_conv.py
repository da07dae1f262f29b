"""Conv1D and friends against the NumPy sliding-window definition (tests/reference.py)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conv1dx import nn
from conv1dx.nn import conv_ops
from tests import reference

RTOL, ATOL = 1e-5, 1e-5


def _grid():
    """Every kernel size 1-9 with strides 1-3 or dilation 2-4, all paddings; groups, formats, odd T cycle."""
    stride_dilation = [(1, 1), (2, 1), (3, 1), (1, 2), (1, 3), (1, 4)]
    cases = []
    for i, (k, (s, d), p) in enumerate(
        itertools.product(range(1, 10), stride_dilation, conv_ops.PADDINGS)
    ):
        length = (7, 10, 13, 31)[i % 4]
        groups = (1, 2, 3)[i % 3]
        if p == "valid" and d * (k - 1) + 1 > length:
            length = d * (k - 1) + 1 + i % 3  # keep the kernel inside the sequence
        cases.append((k, s, d, p, length, groups))
    return cases


@pytest.mark.parametrize("k,s,d,p,length,groups", _grid())
def test_conv1d_op_matches_sliding_window_definition(k, s, d, p, length, groups):
    rng = np.random.default_rng(k * 100 + s * 10 + d)
    channels, filters = 2 * groups, 3 * groups
    x = rng.normal(size=(2, length, channels)).astype(np.float32)
    kernel = rng.normal(size=(k, channels // groups, filters)).astype(np.float32)
    got = conv_ops.conv1d(jnp.asarray(x), jnp.asarray(kernel), stride=s, padding=p, dilation=d,
                          groups=groups)
    want = reference.conv1d(x, kernel, stride=s, padding=p, dilation=d, groups=groups)
    np.testing.assert_allclose(np.asarray(got), want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("k,s,d,p,length,groups", _grid())
def test_output_length_formula(k, s, d, p, length, groups):
    """O = floor((W + total_padding - dilation*(K-1) - 1)/S) + 1, counted here by brute force."""
    left, right = reference.forward_padding(length, k, p, s, d)
    padded = length + left + right
    brute = sum(1 for o in range(padded) if o * s + d * (k - 1) <= padded - 1)
    assert conv_ops.conv_output_length(length, k, p, s, d) == brute
    assert brute == (length + left + right - d * (k - 1) - 1) // s + 1
    if p in ("same", "causal"):
        assert brute == -(-length // s)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("padding,strides,dilation,groups", [
    ("valid", 1, 1, 1), ("same", 2, 1, 2), ("causal", 1, 3, 1), ("causal", 3, 1, 2), ("same", 1, 2, 1),
])
def test_conv1d_layer_matches_reference(data_format, padding, strides, dilation, groups):
    layer = nn.Conv1D(4, 3, strides=strides, padding=padding, data_format=data_format,
                      dilation_rate=dilation, groups=groups, activation="relu",
                      bias_initializer="random_normal", rngs=nnx.Rngs(0))
    x = np.random.default_rng(1).normal(size=(3, 11, 4)).astype(np.float32)
    x_in = x.transpose(0, 2, 1) if data_format == "channels_first" else x
    y = np.asarray(layer(jnp.asarray(x_in)))
    want = np.maximum(reference.conv1d(x, layer.kernel[...], layer.bias[...], stride=strides,
                                       padding=padding, dilation=dilation, groups=groups), 0)
    if data_format == "channels_first":
        want = want.transpose(0, 2, 1)
    np.testing.assert_allclose(y, want, rtol=RTOL, atol=ATOL)
    assert y.shape[1:] == layer.compute_output_shape(x_in.shape[1:])


def test_known_answer_single_channel():
    """Article 002: the filter [1, 2] on [0, 3, 4, 5] gives [6, 11, 14]."""
    layer = nn.Conv1D(1, 2, use_bias=False, input_shape=(4, 1), rngs=nnx.Rngs(0))
    layer.kernel[...] = jnp.array([1.0, 2.0]).reshape(2, 1, 1)
    y = layer(jnp.array([0.0, 3, 4, 5]).reshape(1, 4, 1))
    np.testing.assert_array_equal(np.asarray(y).ravel(), [6, 11, 14])


def test_known_answer_two_channels():
    """Article 002: input [[0,0],[3,6],[4,7],[5,8]] with kernel [[1,3],[2,4]] (k, c) gives [30, 57, 67]."""
    layer = nn.Conv1D(1, 2, use_bias=False, input_shape=(4, 2), rngs=nnx.Rngs(0))
    layer.kernel[...] = jnp.array([[1.0, 3.0], [2.0, 4.0]]).reshape(2, 2, 1)
    y = layer(jnp.array([[0.0, 0], [3, 6], [4, 7], [5, 8]]).reshape(1, 4, 2))
    np.testing.assert_array_equal(np.asarray(y).ravel(), [30, 57, 67])


def test_known_answer_two_filters():
    """Article 002: filters [1, 2] and [3, 4] on [0, 3, 4, 5] give [[6, 12], [11, 25], [14, 32]]."""
    layer = nn.Conv1D(2, 2, use_bias=False, input_shape=(4, 1), rngs=nnx.Rngs(0))
    layer.kernel[...] = jnp.array([[1.0, 3.0], [2.0, 4.0]]).reshape(2, 1, 2)
    y = layer(jnp.array([0.0, 3, 4, 5]).reshape(1, 4, 1))
    np.testing.assert_array_equal(np.asarray(y)[0], [[6, 12], [11, 25], [14, 32]])


def test_causal_output_never_sees_the_future():
    layer = nn.Conv1D(2, 3, padding="causal", dilation_rate=2, input_shape=(12, 1), rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).normal(size=(1, 12, 1)).astype(np.float32)
    changed = x.copy()
    changed[:, 8:] += 10.0
    y0, y1 = np.asarray(layer(jnp.asarray(x))), np.asarray(layer(jnp.asarray(changed)))
    np.testing.assert_array_equal(y0[:, :8], y1[:, :8])
    assert not np.allclose(y0[:, 8:], y1[:, 8:])


@pytest.mark.parametrize("padding,strides,dilation,depth_multiplier", [
    ("valid", 1, 1, 1), ("same", 2, 1, 2), ("causal", 1, 2, 3),
])
def test_depthwise_and_separable_match_reference(padding, strides, dilation, depth_multiplier):
    x = np.random.default_rng(2).normal(size=(2, 9, 3)).astype(np.float32)
    dw = nn.DepthwiseConv1D(3, strides=strides, padding=padding, dilation_rate=dilation,
                            depth_multiplier=depth_multiplier, bias_initializer="random_normal",
                            rngs=nnx.Rngs(0))
    y = np.asarray(dw(jnp.asarray(x)))
    kernel = np.asarray(dw.depthwise_kernel[...])
    # Depthwise: channel c with multiplier m is a one-channel convolution, written as output c*M+m.
    want = np.concatenate([
        reference.conv1d(x[:, :, c:c + 1], kernel[:, c:c + 1, m:m + 1], stride=strides, padding=padding,
                         dilation=dilation)
        for c in range(3) for m in range(depth_multiplier)
    ], axis=2) + np.asarray(dw.bias[...])
    np.testing.assert_allclose(y, want, rtol=RTOL, atol=ATOL)

    sep = nn.SeparableConv1D(5, 3, strides=strides, padding=padding, dilation_rate=dilation,
                             depth_multiplier=depth_multiplier, rngs=nnx.Rngs(1))
    y = np.asarray(sep(jnp.asarray(x)))
    kernel = np.asarray(sep.depthwise_kernel[...])
    depthwise = np.concatenate([
        reference.conv1d(x[:, :, c:c + 1], kernel[:, c:c + 1, m:m + 1], stride=strides, padding=padding,
                         dilation=dilation)
        for c in range(3) for m in range(depth_multiplier)
    ], axis=2)
    want = reference.conv1d(depthwise, np.asarray(sep.pointwise_kernel[...]), np.asarray(sep.bias[...]))
    np.testing.assert_allclose(y, want, rtol=RTOL, atol=ATOL)
    assert y.shape[1:] == sep.compute_output_shape(x.shape[1:])


@pytest.mark.parametrize("k,s,d,p,op", [
    (k, s, d, p, op)
    for k in (1, 2, 3, 5) for s in (1, 2, 3) for d in (1, 2) for p in ("valid", "same")
    for op in (None, 0, s - 1)
    if not (s > 1 and d > 1) and not (op is not None and op >= s)
])
def test_conv1d_transpose_matches_scatter_definition(k, s, d, p, op):
    layer = nn.Conv1DTranspose(3, k, strides=s, padding=p, dilation_rate=d, output_padding=op,
                               bias_initializer="random_normal", rngs=nnx.Rngs(k + s))
    x = np.random.default_rng(3).normal(size=(2, 6, 2)).astype(np.float32)
    y = np.asarray(layer(jnp.asarray(x)))
    want = reference.conv1d_transpose(x, layer.kernel[...], layer.bias[...], stride=s, padding=p,
                                      dilation=d, output_padding=op)
    assert y.shape == want.shape
    assert y.shape[1:] == layer.compute_output_shape(x.shape[1:])
    np.testing.assert_allclose(y, want, rtol=RTOL, atol=ATOL)


def test_keras_weight_shapes_and_parameter_counts():
    rngs = nnx.Rngs(0)
    conv = nn.Conv1D(32, 7, input_shape=(500, 128), rngs=rngs)
    assert conv.kernel.shape == (7, 128, 32) and nn.count_params(conv) == 28_704
    grouped = nn.Conv1D(8, 3, groups=4, input_shape=(10, 8), rngs=rngs)
    assert grouped.kernel.shape == (3, 2, 8) and nn.count_params(grouped) == 3 * 2 * 8 + 8
    sep = nn.SeparableConv1D(16, 5, depth_multiplier=2, input_shape=(20, 4), rngs=rngs)
    assert nn.count_params(sep) == 5 * 4 * 2 + 8 * 16 + 16
    dw = nn.DepthwiseConv1D(5, depth_multiplier=2, input_shape=(20, 4), rngs=rngs)
    assert nn.count_params(dw) == 5 * 4 * 2 + 8
    tr = nn.Conv1DTranspose(6, 4, input_shape=(20, 3), rngs=rngs)
    assert tr.kernel.shape == (4, 6, 3) and nn.count_params(tr) == 4 * 6 * 3 + 6


@pytest.mark.parametrize("kwargs,match", [
    (dict(filters=4, kernel_size=3, strides=2, dilation_rate=2), "strides > 1 together with dilation"),
    (dict(filters=5, kernel_size=3, groups=2), "filters \\(5\\) must be divisible by groups"),
    (dict(filters=4, kernel_size=3, padding="full"), "unknown padding 'full'"),
    (dict(filters=0, kernel_size=3), "filters must be an integer >= 1"),
    (dict(filters=4, kernel_size=0), "kernel_size must be an integer >= 1"),
    (dict(filters=4, kernel_size=3, data_format="NWC"), "data_format must be"),
])
def test_invalid_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nn.Conv1D(**kwargs)


def test_input_errors_name_the_problem():
    with pytest.raises(ValueError, match="input channels \\(3\\) must be divisible by groups \\(2\\)"):
        nn.Conv1D(4, 3, groups=2, input_shape=(10, 3), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="kernel spans 9 steps .* only 5 steps"):
        nn.Conv1D(4, 9, input_shape=(5, 2), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="kernel spans 7 steps"):
        nn.Conv1D(4, 4, dilation_rate=2, input_shape=(6, 2), rngs=nnx.Rngs(0))
    layer = nn.Conv1D(4, 3, input_shape=(10, 2), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="built for 2 input channels but got 5"):
        layer(jnp.ones((1, 10, 5)))
    with pytest.raises(ValueError, match="expects inputs of rank 3"):
        layer(jnp.ones((10, 2)))
    with pytest.raises(ValueError, match="pass rngs=nnx.Rngs"):
        nn.Conv1D(4, 3)(jnp.ones((1, 10, 2)))


def test_lazy_build_on_first_call_and_jit_and_grad():
    layer = nn.Conv1D(4, 3, padding="causal", activation="tanh", rngs=nnx.Rngs(0))
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 9, 5)), jnp.float32)
    eager = layer(x)
    graphdef, state = nnx.split(layer)

    @jax.jit
    def loss(state, x):
        return jnp.sum(nnx.merge(graphdef, state)(x) ** 2)

    np.testing.assert_allclose(float(loss(state, x)), float(jnp.sum(eager ** 2)), rtol=1e-5)
    grads = jax.grad(loss)(state, x)
    leaves = jax.tree.leaves(grads)
    assert leaves and all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert all(float(jnp.abs(g).sum()) > 0 for g in leaves)


def test_unbuilt_layer_under_jit_fails_clearly():
    layer = nn.Conv1D(4, 3, rngs=nnx.Rngs(0))
    with pytest.raises(RuntimeError, match="not built and is being traced"):
        jax.jit(lambda x: layer(x))(jnp.ones((1, 8, 2)))


def _xla_conv(x, kernel, s, p, d, groups):
    pads = conv_ops.padding_amounts(x.shape[1], kernel.shape[0], p, s, d)
    return jax.lax.conv_general_dilated(x, kernel, (s,), (pads,), rhs_dilation=(d,),
                                        dimension_numbers=("NWC", "WIO", "NWC"),
                                        feature_group_count=groups)


@pytest.mark.parametrize("k,s,d,p,length,groups", _grid()[::7])
def test_conv1d_gradients_equal_xla_autodiff(k, s, d, p, length, groups):
    """The hand-written backward convolutions agree with JAX's own transpose rules."""
    rng = np.random.default_rng(7)
    x = jnp.asarray(rng.normal(size=(2, length, 2 * groups)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(k, 2, 3 * groups)), jnp.float32)
    y = _xla_conv(x, kernel, s, p, d, groups)
    dy = jnp.asarray(rng.normal(size=y.shape), jnp.float32)

    def ours(x, kernel):
        return jnp.sum(conv_ops.conv1d(x, kernel, stride=s, padding=p, dilation=d, groups=groups) * dy)

    def xla(x, kernel):
        return jnp.sum(_xla_conv(x, kernel, s, p, d, groups) * dy)

    for got, want in zip(jax.grad(ours, (0, 1))(x, kernel), jax.grad(xla, (0, 1))(x, kernel), strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("padding", ["valid", "causal", "same"])
def test_masks_flow_through_convolutions_and_pooling(padding):
    """Right padding (any values) never reaches a masked global pooling after conv + pooling layers."""
    model = nn.Sequential([
        nn.Conv1D(4, 3, padding=padding, activation="relu"),
        nn.MaxPooling1D(2),
        nn.Conv1D(4, 2, strides=2, padding=padding),
        nn.GlobalAveragePooling1D(),
    ], input_shape=(20, 2), rngs=nnx.Rngs(0))
    rng = np.random.default_rng(0)
    lengths = np.array([20, 13, 9])
    mask = np.arange(20)[None, :] < lengths[:, None]
    x = rng.normal(size=(3, 20, 2)).astype(np.float32)
    garbage = np.where(mask[..., None], x, 1e3).astype(np.float32)
    clean = np.where(mask[..., None], x, 0.0).astype(np.float32)
    y_garbage = model(jnp.asarray(garbage), mask=jnp.asarray(mask))
    y_clean = model(jnp.asarray(clean), mask=jnp.asarray(mask))
    np.testing.assert_allclose(np.asarray(y_garbage), np.asarray(y_clean), rtol=1e-5, atol=1e-5)
    assert model.compute_mask(None, jnp.asarray(mask)) is None  # global pooling consumes the mask
    assert model.layers[0].compute_mask(None, jnp.asarray(mask)).shape == (3, 18 if padding == "valid" else 20)


def test_conv_mask_anchor_rule():
    mask = jnp.asarray(np.arange(10)[None, :] < 6)
    valid = nn.Conv1D(1, 3, input_shape=(10, 1), rngs=nnx.Rngs(0))
    assert np.asarray(valid.compute_mask(None, mask)).tolist() == [[True] * 4 + [False] * 4]
    same = nn.Conv1D(1, 3, strides=2, padding="same", input_shape=(10, 1), rngs=nnx.Rngs(0))
    # 'same' with stride 2 pads (0, 1): output o reads steps up to 2o + 2.
    assert np.asarray(same.compute_mask(None, mask)).tolist() == [[True, True, False, False, False]]
    causal = nn.Conv1D(1, 3, padding="causal", input_shape=(10, 1), rngs=nnx.Rngs(0))
    assert np.asarray(causal.compute_mask(None, mask)).tolist() == [[True] * 6 + [False] * 4]


@pytest.mark.parametrize("k,s,d,p,length,groups", _grid()[::9])
def test_patches_lowering_matches_reference(k, s, d, p, length, groups):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, length, 2 * groups)).astype(np.float32)
    kernel = rng.normal(size=(k, 2, 3 * groups)).astype(np.float32)
    got = conv_ops.conv1d_patches(jnp.asarray(x), jnp.asarray(kernel), stride=s, padding=p, dilation=d,
                                  groups=groups)
    want = reference.conv1d(x, kernel, stride=s, padding=p, dilation=d, groups=groups)
    np.testing.assert_allclose(np.asarray(got), want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.int32])
def test_bfloat16_and_integer_inputs_compute_in_float32(dtype):
    """XLA's convolution needs equal dtypes: the input is promoted to the kernel's float32."""
    rngs = nnx.Rngs(0)
    x = np.random.default_rng(0).integers(-4, 5, size=(2, 9, 2)).astype(np.float32)  # exact in both
    conv = nn.Conv1D(3, 3, padding="same", input_shape=(9, 2), rngs=rngs)
    want = reference.conv1d(x, conv.kernel[...], conv.bias[...], padding="same")
    got = conv(jnp.asarray(x, dtype))
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got), want, rtol=RTOL, atol=ATOL)
    transpose = nn.Conv1DTranspose(3, 3, strides=2, input_shape=(9, 2), rngs=rngs)
    want = reference.conv1d_transpose(x, transpose.kernel[...], transpose.bias[...], stride=2)
    got = transpose(jnp.asarray(x, dtype))
    np.testing.assert_allclose(np.asarray(got), want, rtol=RTOL, atol=ATOL)
    depthwise = nn.DepthwiseConv1D(3, input_shape=(9, 2), rngs=rngs)
    assert depthwise(jnp.asarray(x, dtype)).dtype == jnp.float32


def test_integer_arguments_may_be_numpy_integers_or_1_tuples():
    layer = nn.Conv1D(np.int64(4), (np.int32(3),), strides=np.int64(1), input_shape=(8, 2),
                      rngs=nnx.Rngs(0))
    assert layer.kernel.shape == (3, 2, 4) and type(layer.filters) is int
    for make in (lambda: nn.Conv1D(4.0, 3), lambda: nn.Conv1D(4, True),
                 lambda: nn.Conv1D(4, (3, 3))):
        with pytest.raises(ValueError, match="must be an integer >= 1"):
            make()


@pytest.mark.parametrize("k,d", [(1, 1), (2, 1), (3, 2), (4, 3)])
def test_same_padding_of_stride_1_needs_no_length(k, d):
    """With stride 1, 'same' pads span - 1 (extra step on the right) for every length."""
    for length in (5, 8, 13):
        want = reference.same_padding(length, k, 1, d)
        assert conv_ops.padding_amounts(None, k, "same", 1, d) == want
    with pytest.raises(ValueError, match="stride 2 > 1 depends on the sequence length"):
        conv_ops.padding_amounts(None, k, "same", 2, 1)


@pytest.mark.parametrize("k,s,d,p,length", [
    (10, 1, 1, "valid", 11), (9, 1, 1, "valid", 20), (5, 2, 1, "same", 9), (3, 3, 1, "causal", 8),
    (4, 1, 3, "causal", 8), (7, 1, 2, "same", 6), (6, 2, 1, "valid", 13),
])
def test_short_output_input_gradient_matches_xla_autodiff(k, s, d, p, length):
    """Outputs no longer than twice the kernel take the matmul-and-shifted-adds input gradient."""
    rng = np.random.default_rng(11)
    x = jnp.asarray(rng.normal(size=(3, length, 4)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(k, 4, 5)), jnp.float32)
    y = _xla_conv(x, kernel, s, p, d, 1)
    assert y.shape[1] <= 2 * k
    dy = jnp.asarray(rng.normal(size=y.shape), jnp.float32)
    ours = jax.grad(lambda x: jnp.sum(conv_ops.conv1d(x, kernel, stride=s, padding=p, dilation=d) * dy))(x)
    xla = jax.grad(lambda x: jnp.sum(_xla_conv(x, kernel, s, p, d, 1) * dy))(x)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(xla), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("form", ["transposing_x", "transposing_dy"])
@pytest.mark.parametrize("k,s,d,p,length", [
    (1, 1, 1, "valid", 5), (3, 1, 1, "valid", 11), (4, 2, 1, "same", 13), (3, 3, 2, "causal", 17),
    (5, 1, 3, "same", 9), (2, 2, 2, "valid", 12), (7, 1, 1, "same", 7), (3, 2, 1, "causal", 4),
])
def test_both_kernel_gradient_forms_match_xla_autodiff(form, k, s, d, p, length):
    """Either operand may be the transposed one; both give XLA's kernel gradient."""
    rng = np.random.default_rng(13)
    x = jnp.asarray(rng.normal(size=(3, length, 4)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(k, 4, 5)), jnp.float32)
    y = _xla_conv(x, kernel, s, p, d, 1)
    dy = jnp.asarray(rng.normal(size=y.shape), jnp.float32)
    pads = conv_ops.padding_amounts(length, k, p, s, d)
    ours = getattr(conv_ops, f"_kernel_gradient_{form}")(dy, x, k, s, pads, d)
    xla = jax.grad(lambda w: jnp.sum(_xla_conv(x, w, s, p, d, 1) * dy))(kernel)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(xla), rtol=1e-4, atol=1e-4)
