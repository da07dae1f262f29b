"""GRU and LSTM against NumPy references written from the gate equations (loops over time)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conv1dx.nn import initializers, regularizers
from conv1dx.nn.gru import GRU
from conv1dx.nn.layer import apply_constraints, regularization_loss
from conv1dx.nn.lstm import LSTM
from conv1dx.nn.rnn_scan import dropout_keep_mask
from tests.reference import np_gru, np_lstm

TOL = dict(rtol=1e-5, atol=1e-5)
BIAS_INIT = initializers.random_uniform(-0.5, 0.5)  # nonzero biases, so the bias layout is tested


def weights(layer):
    """The layer's own initialized weights as float64 NumPy arrays."""
    return {k: np.asarray(v[...], np.float64) for k, v in nnx.state(layer, nnx.Param).items()}


def make_inputs(batch, steps, features, mask_kind, seed=0):
    """x_BxTxC, the valid-step matrix for the reference, and the layer's mask/lengths keyword.

    "mask" rows: a full sequence, right padding (length 2), an empty sequence, then holes anywhere.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, steps, features)).astype(np.float32)
    lengths = np.array([steps, 2, 0][:batch] + [1] * max(batch - 3, 0))
    valid = np.arange(steps)[None] < lengths[:, None]
    if mask_kind == "lengths":
        return x, valid, {"lengths": jnp.asarray(lengths)}
    if mask_kind == "mask":
        valid[3:] = rng.random((max(batch - 3, 0), steps)) < 0.6
        return x, valid, {"mask": jnp.asarray(valid)}
    return x, np.ones((batch, steps), bool), {}


SHAPES = [(3, 2, 5, 1), (4, 3, 7, 2)]  # (units, features, steps, unroll)


@pytest.mark.parametrize("units,features,steps,unroll", SHAPES)
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("mask_kind", ["none", "mask"])
def test_gru_matches_reference(units, features, steps, unroll, reset_after, go_backwards,
                               mask_kind):
    x, valid, kwargs = make_inputs(4, steps, features, mask_kind)
    common = dict(reset_after=reset_after, go_backwards=go_backwards, unroll=unroll,
                  bias_initializer=BIAS_INIT, input_shape=(steps, features))
    layer = GRU(units, return_sequences=True, return_state=True, rngs=nnx.Rngs(1), **common)
    ref_y, ref_h = np_gru(x.astype(np.float64), valid, weights(layer), reset_after=reset_after,
                          go_backwards=go_backwards)
    y, h = layer(x, **kwargs)
    np.testing.assert_allclose(y, ref_y, **TOL)
    np.testing.assert_allclose(h, ref_h, **TOL)


@pytest.mark.parametrize("units,features,steps,unroll", SHAPES)
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("mask_kind", ["none", "mask"])
def test_lstm_matches_reference(units, features, steps, unroll, go_backwards, mask_kind):
    x, valid, kwargs = make_inputs(4, steps, features, mask_kind, seed=1)
    common = dict(go_backwards=go_backwards, unroll=unroll, bias_initializer=BIAS_INIT,
                  input_shape=(steps, features))
    layer = LSTM(units, return_sequences=True, return_state=True, rngs=nnx.Rngs(3), **common)
    ref_y, ref_h, ref_c = np_lstm(x.astype(np.float64), valid, weights(layer),
                                  go_backwards=go_backwards)
    y, h, c = layer(x, **kwargs)
    np.testing.assert_allclose(y, ref_y, **TOL)
    np.testing.assert_allclose(h, ref_h, **TOL)
    np.testing.assert_allclose(c, ref_c, **TOL)


@pytest.mark.parametrize("cls", [GRU, LSTM])
def test_last_output_is_state_after_last_valid_step(cls):
    """return_sequences=False returns h after each sequence's last processed valid step.

    Also covers use_bias=False (the reference gets zero biases) and a fully unrolled scan.
    """
    x, valid, kwargs = make_inputs(4, 5, 2, "mask", seed=6)
    layer = cls(3, go_backwards=True, use_bias=False, unroll=True, input_shape=(5, 2),
                rngs=nnx.Rngs(0))
    w = weights(layer)
    assert "bias" not in w
    w["bias"] = np.zeros((2, 9)) if cls is GRU else np.zeros(12)
    if cls is GRU:
        ref_h = np_gru(x, valid, w, reset_after=True, go_backwards=True)[1]
    else:
        ref_h = np_lstm(x, valid, w, go_backwards=True)[1]
    np.testing.assert_allclose(layer(x, **kwargs), ref_h, **TOL)


def test_initial_state_and_zero_output_for_mask():
    x, valid, kwargs = make_inputs(3, 6, 2, "lengths", seed=2)
    rng = np.random.default_rng(5)
    h0, c0 = rng.normal(size=(2, 3, 3)).astype(np.float32)
    gru = GRU(3, return_sequences=True, zero_output_for_mask=True, bias_initializer=BIAS_INIT,
              input_shape=(6, 2), rngs=nnx.Rngs(0))
    ref_y, _ = np_gru(x, valid, weights(gru), reset_after=True, h0=h0, zero_output=True)
    np.testing.assert_allclose(gru(x, initial_state=jnp.asarray(h0), **kwargs), ref_y, **TOL)
    lstm = LSTM(3, return_state=True, input_shape=(6, 2), rngs=nnx.Rngs(0))
    _, ref_h, ref_c = np_lstm(x, valid, weights(lstm), h0=h0, c0=c0)
    _, h, c = lstm(x, initial_state=(h0, c0), **kwargs)
    np.testing.assert_allclose(h, ref_h, **TOL)
    np.testing.assert_allclose(c, ref_c, **TOL)


def test_lengths_equal_right_padded_mask():
    x, valid, kwargs = make_inputs(3, 5, 2, "lengths")
    layer = GRU(3, return_sequences=True, input_shape=(5, 2), rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(layer(x, **kwargs), layer(x, mask=jnp.asarray(valid)))


def param_shapes(make):
    """{weight name: shape} of the layer `make()` builds, initialized abstractly (no compute)."""
    state = nnx.state(nnx.eval_shape(make), nnx.Param)
    return {name: tuple(v.shape) for name, v in state.items()}


def test_parameter_counts_match_keras():
    def count(make):
        return sum(int(np.prod(shape)) for shape in param_shapes(make).values())

    def on(features):
        return dict(input_shape=(None, features), rngs=nnx.Rngs(0))

    assert count(lambda: GRU(32, reset_after=False, **on(32))) == 6240
    assert count(lambda: GRU(32, **on(32))) == 6336
    assert count(lambda: LSTM(32, **on(32))) == 8320
    assert param_shapes(lambda: GRU(5, reset_after=False, **on(2))) == {
        "kernel": (2, 15), "recurrent_kernel": (5, 15), "bias": (15,)
    }
    assert param_shapes(lambda: GRU(5, **on(2)))["bias"] == (2, 15)
    assert param_shapes(lambda: LSTM(5, use_bias=False, **on(2))) == {
        "kernel": (2, 20), "recurrent_kernel": (5, 20)
    }


def test_lstm_unit_forget_bias():
    bias = np.asarray(LSTM(3, input_shape=(None, 2), rngs=nnx.Rngs(0)).bias[...])
    np.testing.assert_array_equal(bias, np.r_[np.zeros(3), np.ones(3), np.zeros(6)])
    no_ufb = LSTM(3, unit_forget_bias=False, input_shape=(None, 2), rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(no_ufb.bias[...], np.zeros(12))


# -- dropout ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [GRU, LSTM])
def test_dropout_inference_is_deterministic_and_training_is_not(cls):
    x, valid, _ = make_inputs(2, 5, 3, "none")
    layer = cls(4, dropout=0.5, recurrent_dropout=0.5, return_sequences=True,
                input_shape=(5, 3), rngs=nnx.Rngs(0))
    w = weights(layer)
    ref = np_gru(x, valid, w, reset_after=True)[0] if cls is GRU else np_lstm(x, valid, w)[0]
    np.testing.assert_allclose(layer(x), ref, **TOL)
    np.testing.assert_allclose(layer(x, training=False, rngs=jax.random.key(0)), ref, **TOL)
    a = layer(x, training=True, rngs=jax.random.key(0))
    b = layer(x, training=True, rngs=nnx.Rngs(dropout=1))
    assert not np.allclose(a, ref) and not np.allclose(a, b)
    np.testing.assert_array_equal(a, layer(x, training=True, rngs=jax.random.key(0)))


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("dropout,recurrent_dropout", [(0.4, 0.0), (0.0, 0.4), (0.3, 0.5)])
def test_gru_dropout_masks_are_fixed_over_time(dropout, recurrent_dropout, reset_after):
    """Keras 3: masks sampled once per call; one per gate when recurrent_dropout > 0 (impl. 1).

    The reference draws the masks with the layer's documented recipe (key split into input and
    recurrent keys, inverted-dropout multipliers) and applies the same masks at every step.
    """
    x, valid, kwargs = make_inputs(3, 6, 3, "lengths", seed=3)
    layer = GRU(4, dropout=dropout, recurrent_dropout=recurrent_dropout, return_sequences=True,
                reset_after=reset_after, bias_initializer=BIAS_INIT, input_shape=(6, 3),
                rngs=nnx.Rngs(0))
    key = jax.random.key(11)
    key_in, key_rec = jax.random.split(key)
    per_gate = recurrent_dropout > 0
    lead = (3,) if per_gate else ()
    in_m = np.asarray(dropout_keep_mask(key_in, dropout, (*lead, 3, 3))) if dropout else None
    rec_m = np.asarray(dropout_keep_mask(key_rec, recurrent_dropout, (*lead, 3, 4))) \
        if recurrent_dropout else None
    as_gates = (lambda m: None if m is None else (list(m) if per_gate else [m] * 3))  # noqa: E731
    ref, _ = np_gru(x, valid, weights(layer), reset_after=reset_after, in_masks=as_gates(in_m),
                    rec_masks=as_gates(rec_m))
    np.testing.assert_allclose(layer(x, training=True, rngs=key, **kwargs), ref, **TOL)


def test_lstm_dropout_masks_are_fixed_over_time():
    """Keras 3's LSTM shares one input mask (B, C) and one recurrent mask (B, U) across gates."""
    x, valid, kwargs = make_inputs(4, 6, 3, "mask", seed=4)
    layer = LSTM(4, dropout=0.3, recurrent_dropout=0.5, return_state=True, input_shape=(6, 3),
                 rngs=nnx.Rngs(0))
    key = jax.random.key(5)
    key_in, key_rec = jax.random.split(key)
    in_m = np.asarray(dropout_keep_mask(key_in, 0.3, (4, 3)))
    rec_m = np.asarray(dropout_keep_mask(key_rec, 0.5, (4, 4)))
    _, ref_h, ref_c = np_lstm(x, valid, weights(layer), in_mask=in_m, rec_mask=rec_m)
    _, h, c = layer(x, training=True, rngs=key, **kwargs)
    np.testing.assert_allclose(h, ref_h, **TOL)
    np.testing.assert_allclose(c, ref_c, **TOL)


def test_dropout_keep_mask_values_and_rate():
    m = np.asarray(dropout_keep_mask(jax.random.key(0), 0.25, (200, 100)))
    assert set(np.unique(m)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((m == 0).mean() - 0.25) < 0.02


def test_dropout_needs_rngs_when_training():
    layer = GRU(3, dropout=0.5, input_shape=(3, 2), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="rngs"):
        layer(jnp.ones((1, 3, 2)), training=True)


# -- jit, gradients, shapes, masks -----------------------------------------------------------------
@pytest.mark.parametrize("cls", [GRU, LSTM])
def test_jit_and_gradients(cls):
    x, _, kwargs = make_inputs(3, 5, 2, "lengths")
    layer = cls(3, return_sequences=True, recurrent_dropout=0.2, input_shape=(5, 2),
                rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(layer)

    @jax.jit
    def loss(state, x, lengths, key):
        y = nnx.merge(graphdef, state)(x, lengths=lengths, training=True, rngs=key)
        return jnp.sum(y**2)

    key = jax.random.key(0)
    eager = jnp.sum(layer(x, training=True, rngs=key, **kwargs) ** 2)
    np.testing.assert_allclose(loss(state, x, kwargs["lengths"], key), eager, rtol=1e-6)
    grads = jax.grad(loss)(state, x, kwargs["lengths"], key)
    for name, g in grads.items():
        g = np.asarray(g[...])
        assert np.all(np.isfinite(g)) and np.any(g != 0), name


@pytest.mark.parametrize("cls", [GRU, LSTM])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("return_state", [False, True])
def test_output_shapes_and_mask(cls, return_sequences, return_state):
    layer = cls(3, return_sequences=return_sequences, return_state=return_state, rngs=nnx.Rngs(0))
    x, mask = jnp.ones((2, 4, 2)), jnp.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool)
    out = layer(x, mask=mask)
    got = jax.tree.map(lambda a: a.shape[1:], out)
    assert got == layer.compute_output_shape((4, 2))
    out_mask = layer.compute_mask(x, mask)
    first = out_mask[0] if return_state else out_mask
    assert (first is mask) if return_sequences else (first is None)


def test_regularizers_and_constraints_are_registered():
    layer = GRU(3, kernel_regularizer=regularizers.l2(0.1),
                recurrent_regularizer=regularizers.l1(0.2),
                bias_regularizer=regularizers.l2(0.3), recurrent_constraint="non_neg",
                bias_initializer=BIAS_INIT, input_shape=(4, 2), rngs=nnx.Rngs(0))
    w = weights(layer)
    expected = 0.1 * (w["kernel"] ** 2).sum() + 0.2 * np.abs(w["recurrent_kernel"]).sum() \
        + 0.3 * (w["bias"] ** 2).sum()
    np.testing.assert_allclose(regularization_loss(layer), expected, rtol=1e-5)
    assert w["recurrent_kernel"].min() < 0
    apply_constraints(layer)
    np.testing.assert_allclose(layer.recurrent_kernel[...], np.maximum(w["recurrent_kernel"], 0))
    np.testing.assert_array_equal(layer.kernel[...], w["kernel"])


def test_activity_regularizer_sums_all_outputs():
    layer = LSTM(3, return_state=True, activity_regularizer=regularizers.l2(0.5),
                 input_shape=(4, 2), rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).normal(size=(2, 4, 2)).astype(np.float32)
    y, h, c = (np.asarray(a, np.float64) for a in layer(x))
    expected = 0.5 * ((y**2).sum() + (h**2).sum() + (c**2).sum())  # Keras 3: not divided by batch
    np.testing.assert_allclose(regularization_loss(layer), expected, rtol=1e-5)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: GRU(0), "units"),
        (lambda: LSTM(-2), "units"),
        (lambda: GRU(2.5), "units"),
        (lambda: GRU(2, dropout=1.0), "dropout"),
        (lambda: LSTM(2, recurrent_dropout=-0.1), "recurrent_dropout"),
        (lambda: GRU(2, unroll=0), "unroll"),
        (lambda: GRU(2, activation="nope"), "activation"),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_inputs():
    layer = GRU(4, input_shape=(4, 3), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="rank 3"):
        layer(jnp.ones((4, 3)))
    with pytest.raises(ValueError, match="rank 3"):
        GRU(2, rngs=nnx.Rngs(0))(jnp.ones((1, 4, 3, 1)))
    with pytest.raises(ValueError, match="built for 3 input features"):
        layer(jnp.ones((1, 4, 5)))
    with pytest.raises(ValueError, match="mask must have shape"):
        layer(jnp.ones((2, 4, 3)), mask=jnp.ones((2, 5), bool))
    with pytest.raises(ValueError, match="not both"):
        layer(jnp.ones((2, 4, 3)), mask=jnp.ones((2, 4), bool), lengths=jnp.array([1, 2]))
    with pytest.raises(ValueError, match="lengths must be"):
        layer(jnp.ones((2, 4, 3)), lengths=jnp.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="initial state"):
        layer(jnp.ones((2, 4, 3)), initial_state=jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match="initial_state needs 2"):
        LSTM(4, input_shape=(4, 3), rngs=nnx.Rngs(0))(
            jnp.ones((2, 4, 3)), initial_state=jnp.zeros((2, 4))
        )
