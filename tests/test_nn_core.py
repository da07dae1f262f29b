"""Dense, regularizers, constraints, Sequential, the spec builder and the summary table."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conv1dx import nn
from conv1dx.nn import constraints, regularizers


def test_dense_matches_matmul_definition_on_any_rank():
    layer = nn.Dense(5, activation="sigmoid", bias_initializer="random_normal", rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).normal(size=(2, 7, 3)).astype(np.float32)
    y = np.asarray(layer(jnp.asarray(x)))
    w, b = np.asarray(layer.kernel[...], np.float64), np.asarray(layer.bias[...], np.float64)
    want = np.zeros((2, 7, 5))
    for i in range(2):
        for t in range(7):
            for u in range(5):
                want[i, t, u] = 1 / (1 + np.exp(-(sum(x[i, t, c] * w[c, u] for c in range(3)) + b[u])))
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
    assert nn.count_params(layer) == 3 * 5 + 5


def test_regularizers_follow_keras_formulas():
    w = jnp.array([[1.0, -2.0], [3.0, -4.0]])
    assert float(regularizers.l1(0.1)(w)) == pytest.approx(0.1 * 10)
    assert float(regularizers.l2(0.01)(w)) == pytest.approx(0.01 * 30)
    assert float(regularizers.l1_l2(0.1, 0.01)(w)) == pytest.approx(1.0 + 0.3)
    with pytest.raises(ValueError, match="must be >= 0"):
        regularizers.L1L2(l1=-1.0)
    with pytest.raises(ValueError, match="Unknown regularizer 'l3'"):
        regularizers.get("l3")


def test_regularization_loss_collects_weights_and_activity():
    model = nn.Sequential([
        nn.Conv1D(3, 2, kernel_regularizer=regularizers.l2(0.5), activity_regularizer=regularizers.l1(0.25)),
        nn.Dense(2, bias_regularizer="l1", bias_initializer="ones"),
    ], input_shape=(5, 2), rngs=nnx.Rngs(0))
    conv, dense = model.layers
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 5, 2)), jnp.float32)
    y_conv = conv(x)
    model(x)
    want = 0.5 * float(jnp.sum(conv.kernel[...] ** 2)) + 0.25 * float(jnp.sum(jnp.abs(y_conv))) \
        + 0.01 * 2.0
    assert float(nn.regularization_loss(model)) == pytest.approx(want, rel=1e-5)


def test_regularization_loss_traces_under_jit_and_grad():
    model = nn.Sequential([nn.Dense(3, kernel_regularizer="l2")], input_shape=(4,), rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)

    def loss(state):
        m = nnx.merge(graphdef, state)
        return nn.regularization_loss(m)

    grads = jax.jit(jax.grad(loss))(state)
    kernel = model.layers[0].kernel[...]
    np.testing.assert_allclose(np.asarray(grads["layers"][0]["kernel"][...]), 0.02 * np.asarray(kernel),
                               rtol=1e-6)


def _unit_norms(w):
    return np.linalg.norm(w.reshape(-1, w.shape[-1]), axis=0)


@pytest.mark.parametrize("constraint,check", [
    (constraints.MaxNorm(1.0, axis=(0, 1)), lambda w: np.all(_unit_norms(w) <= 1 + 1e-5)),
    (constraints.NonNeg(), lambda w: np.all(w >= 0)),
    (constraints.UnitNorm(axis=(0, 1)), lambda w: np.allclose(_unit_norms(w), 1, atol=1e-5)),
    (constraints.MinMaxNorm(0.5, 0.75, axis=(0, 1)), lambda w: np.all(
        (np.linalg.norm(w.reshape(-1, w.shape[-1]), axis=0) >= 0.5 - 1e-5)
        & (np.linalg.norm(w.reshape(-1, w.shape[-1]), axis=0) <= 0.75 + 1e-5))),
])
def test_constraints_project_each_unit(constraint, check):
    layer = nn.Conv1D(4, 3, kernel_constraint=constraint, kernel_initializer=nn.initializers.random_normal(0, 2.0),
                      input_shape=(8, 3), rngs=nnx.Rngs(0))
    assert not check(np.asarray(layer.kernel[...])) or isinstance(constraint, constraints.MinMaxNorm)
    assert nn.has_constraints(layer)
    nn.apply_constraints(layer)
    assert check(np.asarray(layer.kernel[...]))


@pytest.mark.parametrize("constraint,rescale", [
    (constraints.MaxNorm(2.0), lambda norm: min(norm, 2.0)),
    (constraints.UnitNorm(), lambda norm: 1.0),
    (constraints.MinMaxNorm(0.5, 1.5, rate=0.5),
     lambda norm: 0.5 * min(max(norm, 0.5), 1.5) + 0.5 * norm),
])
def test_norm_constraints_take_a_1d_weight_as_one_vector(constraint, rescale):
    """A bias or gamma is one unit-free vector (Keras' axis=0), not one "unit" per entry."""
    b = np.array([3.0, -4.0, 0.5])
    norm = np.sqrt(np.sum(b ** 2))
    want = b * rescale(norm) / (1e-7 + norm)
    np.testing.assert_allclose(np.asarray(constraint(jnp.asarray(b, jnp.float32))), want, rtol=1e-5)
    layer = nn.Dense(3, bias_constraint=constraint, bias_initializer=nn.initializers.constant(5.0),
                     input_shape=(2,), rngs=nnx.Rngs(0))
    nn.apply_constraints(layer)
    bias_norm = np.sqrt(np.sum(np.asarray(layer.bias[...], np.float64) ** 2))
    assert bias_norm == pytest.approx(rescale(np.sqrt(75.0)), rel=1e-5)


def test_max_norm_leaves_small_units_alone():
    w = jnp.array([[0.3, 3.0], [0.4, 4.0]])  # unit norms 0.5 and 5
    projected = np.asarray(constraints.MaxNorm(2.0)(w))
    np.testing.assert_allclose(projected[:, 0], [0.3, 0.4], rtol=1e-5)
    np.testing.assert_allclose(projected[:, 1], [1.2, 1.6], rtol=1e-5)


@pytest.mark.parametrize("name,definition", [
    ("gelu", lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2)))),  # Keras: exact, not the tanh form
    ("leaky_relu", lambda v: v if v > 0 else 0.2 * v),  # keras.activations.leaky_relu's slope
    ("hard_sigmoid", lambda v: min(max(v / 6 + 0.5, 0.0), 1.0)),
    ("relu6", lambda v: min(max(v, 0.0), 6.0)),
    ("softsign", lambda v: v / (1 + abs(v))),
    ("elu", lambda v: v if v > 0 else math.expm1(v)),
])
def test_activations_follow_keras_definitions(name, definition):
    x = np.array([-7.0, -2.5, -0.3, 0.0, 0.4, 1.7, 8.0])
    want = np.array([definition(v) for v in x])
    got = np.asarray(nn.activations.get(name)(jnp.asarray(x, jnp.float32)))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_units_must_be_integers():
    assert nn.Dense(np.int64(3), input_shape=(2,), rngs=nnx.Rngs(0)).kernel.shape == (2, 3)
    for units in (2.5, True, 0, "4"):
        with pytest.raises(ValueError, match="Dense: units must be an integer >= 1"):
            nn.Dense(units)


def test_sequential_names_shapes_and_intermediates():
    model = nn.Sequential([nn.Conv1D(4, 3), nn.Conv1D(4, 3), nn.Dense(2, name="head")],
                          input_shape=(10, 2), rngs=nnx.Rngs(0))
    assert [layer.name for layer in model.layers] == ["conv1d", "conv1d_1", "head"]
    assert model.layer_output_shapes((10, 2)) == [(8, 4), (6, 4), (6, 2)]
    y, intermediates = model(jnp.ones((3, 10, 2)), return_intermediates=True)
    assert y.shape == (3, 6, 2)
    assert {k: v.shape for k, v in intermediates.items()} == {
        "conv1d": (3, 8, 4), "conv1d_1": (3, 6, 4), "head": (3, 6, 2)}
    with pytest.raises(TypeError, match="not a conv1dx.nn layer"):
        nn.Sequential([nn.Dense(2), nnx.Linear(2, 2, rngs=nnx.Rngs(0))])


def test_sequential_builds_lazily_with_its_rngs():
    model = nn.Sequential([nn.Conv1D(4, 3), nn.Dense(1)], rngs=nnx.Rngs(0))
    assert not model.built
    assert model(jnp.ones((2, 9, 3))).shape == (2, 7, 1)
    assert model.built and model.layers[0].kernel.shape == (3, 3, 4)


def test_same_seed_same_weights_different_seed_different_weights():
    def make(seed):
        return nn.build_model([{"_target_": "conv1dx.nn.Conv1D", "filters": 4, "kernel_size": 3}],
                              input_shape=(10, 2), seed=seed)
    a, b, c = make(0), make(0), make(1)
    np.testing.assert_array_equal(a.layers[0].kernel[...], b.layers[0].kernel[...])
    assert not np.allclose(a.layers[0].kernel[...], c.layers[0].kernel[...])


def test_build_model_from_hydra_style_specs():
    from omegaconf import OmegaConf

    specs = OmegaConf.create([
        {"_target_": "conv1dx.nn.Conv1D", "filters": 8, "kernel_size": [3], "activation": "relu"},
        {"_target_": "conv1dx.nn.Dense", "units": 2},
    ])
    model = nn.build_model(specs, input_shape=OmegaConf.create([20, 3]), seed=0)
    assert model(jnp.ones((1, 20, 3))).shape == (1, 18, 2)
    with pytest.raises(ValueError, match="must be a mapping with a '_target_'"):
        nn.build_model([{"filters": 3}], input_shape=(5, 1))
    with pytest.raises(ValueError, match="kernel spans 9 steps"):
        nn.build_model([{"_target_": "conv1dx.nn.Conv1D", "filters": 3, "kernel_size": 9}], input_shape=(5, 1))


def test_summary_prints_keras_table():
    model = nn.Sequential([nn.Conv1D(32, 5, activation="relu"), nn.Dense(1)],
                          input_shape=(None, 14), rngs=nnx.Rngs(0))
    lines = []
    text = nn.summary(model, print_fn=lines.append)
    assert lines == [text]
    assert "Layer (type)" in text and "Output Shape" in text and "Param #" in text
    assert "conv1d (Conv1D)" in text and "(None, None, 32)" in text and "2,272" in text
    assert "dense (Dense)" in text and "(None, None, 1)" in text
    assert "Total params: 2,305" in text
    assert "Trainable params: 2,305" in text and "Non-trainable params: 0" in text


def test_summary_lists_each_shape_of_a_tuple_output():
    model = nn.Sequential([nn.Bidirectional(nn.GRU(3, return_sequences=True), merge_mode=None)],
                          input_shape=(5, 2), rngs=nnx.Rngs(0))
    text = nn.summary(model, print_fn=None)
    assert "[(None, 5, 3), (None, 5, 3)]" in text
    assert "Total params: 126" in text  # 2 directions x 3 gates x (2*3 + 3*3 + 2*3)


def test_norm_constraints_default_to_keras_axis_0():
    """Keras' default axis=0: for a Conv1D kernel (K, C, F), each (channel, filter) pair's K taps."""
    w = np.random.default_rng(1).normal(size=(3, 2, 4)).astype(np.float32) * 3
    projected = np.asarray(constraints.UnitNorm()(jnp.asarray(w)))
    np.testing.assert_allclose(np.linalg.norm(projected, axis=0), np.ones((2, 4)), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(constraints.MaxNorm(1.0, axis=0)(jnp.asarray(w))),
                               np.asarray(constraints.MaxNorm(1.0)(jnp.asarray(w))))
