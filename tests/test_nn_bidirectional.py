"""Bidirectional against a per-sequence NumPy reference: each direction over each valid sequence.

The reference never masks: for a right-padded sequence of length L, the forward output at t < L is
a plain GRU/LSTM run over steps 0..t, the backward output at t is a plain run over steps
L-1, L-2, ..., t (with the backward layer's weights), and padded positions are zeros (Keras'
Bidirectional forces zero_output_for_mask when returning sequences).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conv1dx.nn import initializers
from conv1dx.nn.bidirectional import Bidirectional
from conv1dx.nn.dense import Dense
from conv1dx.nn.gru import GRU
from conv1dx.nn.lstm import LSTM

TOL = dict(rtol=1e-5, atol=1e-5)
BIAS_INIT = initializers.random_uniform(-0.5, 0.5)
LENGTHS = np.array([5, 3, 0, 1])


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def np_weights(layer):
    return {k: np.asarray(v[...], np.float64) for k, v in nnx.state(layer, nnx.Param).items()}


def gru_run(steps_TxC, w):
    """Final state of a GRU (reset_after=True) over the given steps, from a zero state: (h,)."""
    units = w["recurrent_kernel"].shape[0]
    h = np.zeros(units)
    for x_t in steps_TxC:
        xp = x_t @ w["kernel"] + w["bias"][0]
        hp = h @ w["recurrent_kernel"] + w["bias"][1]
        z = sigmoid(xp[:units] + hp[:units])
        r = sigmoid(xp[units:2 * units] + hp[units:2 * units])
        h = z * h + (1 - z) * np.tanh(xp[2 * units:] + r * hp[2 * units:])
    return (h,)


def lstm_run(steps_TxC, w):
    """Final (h, c) of an LSTM over the given steps, from zero states."""
    units = w["recurrent_kernel"].shape[0]
    h, c = np.zeros(units), np.zeros(units)
    for x_t in steps_TxC:
        pre = x_t @ w["kernel"] + h @ w["recurrent_kernel"] + w["bias"]
        i, f, g, o = (pre[k * units:(k + 1) * units] for k in range(4))
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
    return (h, c)


def reference(x, lengths, run, w_fwd, w_bwd, units):
    """(fwd_BxTxU, bwd_BxTxU) in forward time order, and the final states of both directions."""
    batch, steps, _ = x.shape
    fwd, bwd = np.zeros((batch, steps, units)), np.zeros((batch, steps, units))
    fwd_states, bwd_states = [], []
    for b, length in enumerate(lengths):
        seq = x[b, :length].astype(np.float64)
        for t in range(length):
            fwd[b, t] = run(seq[: t + 1], w_fwd)[0]
            bwd[b, t] = run(seq[t:][::-1], w_bwd)[0]
        fwd_states.append(run(seq, w_fwd))
        bwd_states.append(run(seq[::-1], w_bwd))
    stack = lambda states: [np.stack(s) for s in zip(*states, strict=True)]  # noqa: E731
    return fwd, bwd, stack(fwd_states), stack(bwd_states)


def make_x(features, seed=0):
    return np.random.default_rng(seed).normal(size=(len(LENGTHS), 5, features)).astype(np.float32)


def test_gru_sequences_align_per_sequence_with_lengths():
    x = make_x(2)
    layer = Bidirectional(GRU(3, return_sequences=True, bias_initializer=BIAS_INIT),
                          input_shape=(5, 2), rngs=nnx.Rngs(0))
    fwd, bwd, _, _ = reference(x, LENGTHS, gru_run, np_weights(layer.forward_layer),
                               np_weights(layer.backward_layer), 3)
    y = layer(x, lengths=jnp.asarray(LENGTHS))
    np.testing.assert_allclose(y, np.concatenate([fwd, bwd], -1), **TOL)
    mask = jnp.asarray(np.arange(5)[None] < LENGTHS[:, None])
    np.testing.assert_array_equal(layer(x, mask=mask), y)
    assert y.shape[1:] == layer.compute_output_shape((5, 2)) == (5, 6)
    assert layer.compute_mask(x, mask) is mask


@pytest.mark.parametrize("merge_mode", ["sum", "mul", "ave", None])
def test_lstm_merge_modes_and_states(merge_mode):
    x = make_x(3, seed=1)
    layer = Bidirectional(
        LSTM(4, return_sequences=True, return_state=True, bias_initializer=BIAS_INIT),
        merge_mode=merge_mode, input_shape=(5, 3), rngs=nnx.Rngs(1),
    )
    fwd, bwd, fwd_states, bwd_states = reference(
        x, LENGTHS, lstm_run, np_weights(layer.forward_layer), np_weights(layer.backward_layer), 4
    )
    out = layer(x, lengths=jnp.asarray(LENGTHS))
    expected = {
        "sum": (fwd + bwd,), "mul": (fwd * bwd,), "ave": ((fwd + bwd) / 2,), None: (fwd, bwd)
    }
    expected = (*expected[merge_mode], *fwd_states, *bwd_states)  # h_f, c_f, h_b, c_b
    assert len(out) == len(expected)
    for got, want in zip(out, expected, strict=True):
        np.testing.assert_allclose(got, want, **TOL)
    assert jax.tree.map(lambda a: a.shape[1:], tuple(out)) == layer.compute_output_shape((5, 3))


def test_last_outputs_concatenate_both_final_states():
    x = make_x(2, seed=2)
    layer = Bidirectional(GRU(3, bias_initializer=BIAS_INIT), input_shape=(5, 2), rngs=nnx.Rngs(2))
    _, _, (h_fwd,), (h_bwd,) = reference(x, LENGTHS, gru_run, np_weights(layer.forward_layer),
                                         np_weights(layer.backward_layer), 3)
    y = layer(x, lengths=jnp.asarray(LENGTHS))
    np.testing.assert_allclose(y, np.concatenate([h_fwd, h_bwd], -1), **TOL)
    assert layer.compute_output_shape((5, 2)) == (6,)
    assert layer.compute_mask(x, jnp.ones((4, 5), bool)) is None


def test_fresh_weights_and_doubled_parameters():
    inner = GRU(3, return_sequences=True, input_shape=(5, 2), rngs=nnx.Rngs(0))
    layer = Bidirectional(inner, rngs=nnx.Rngs(1))  # input_shape taken from the built layer
    def count(module):
        return sum(leaf.size for leaf in jax.tree.leaves(nnx.state(module, nnx.Param)))

    assert count(layer) == 2 * count(inner) == 2 * 3 * (2 * 3 + 3 * 3 + 2 * 3)
    assert layer.forward_layer is not inner and layer.backward_layer.go_backwards
    assert not np.allclose(layer.forward_layer.kernel[...], layer.backward_layer.kernel[...])
    assert not np.allclose(layer.forward_layer.kernel[...], inner.kernel[...])


def test_custom_backward_layer_is_used():
    backward = GRU(3, return_sequences=True, go_backwards=True, activation="relu")
    layer = Bidirectional(GRU(3, return_sequences=True), backward_layer=backward,
                          input_shape=(5, 2), rngs=nnx.Rngs(0))
    assert layer.backward_layer is backward and backward.built and backward.zero_output_for_mask


@pytest.mark.slow
def test_jit_gradients_and_dropout_keys():
    x = jnp.asarray(make_x(2, seed=3))
    layer = Bidirectional(GRU(3, return_sequences=True, dropout=0.3, recurrent_dropout=0.3),
                          input_shape=(5, 2), rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(layer)

    @jax.jit
    def loss(state, x, lengths, key):
        y = nnx.merge(graphdef, state)(x, lengths=lengths, training=True, rngs=key)
        return jnp.sum(y**2)

    key, lengths = jax.random.key(0), jnp.asarray(LENGTHS)
    eager = jnp.sum(layer(x, lengths=lengths, training=True, rngs=key) ** 2)
    np.testing.assert_allclose(loss(state, x, lengths, key), eager, rtol=1e-6)
    for g in jax.tree.leaves(jax.grad(loss)(state, x, lengths, key)):
        assert np.all(np.isfinite(g)) and np.any(g != 0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="merge_mode"):
        Bidirectional(GRU(3), merge_mode="max")
    with pytest.raises(ValueError, match="go_backwards=False"):
        Bidirectional(GRU(3, go_backwards=True))
    with pytest.raises(ValueError, match="recurrent layer"):
        Bidirectional(Dense(3))
    with pytest.raises(ValueError, match="return_sequences"):
        Bidirectional(GRU(3), backward_layer=GRU(3, go_backwards=True, return_sequences=True))
    with pytest.raises(ValueError, match="go_backwards=True"):
        Bidirectional(GRU(3), backward_layer=GRU(3))
    layer = Bidirectional(GRU(3), input_shape=(5, 2), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="rank 3"):
        layer(jnp.ones((5, 2)))
