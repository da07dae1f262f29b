"""The bfloat16 compute policy (`trainer.compute_dtype`): float32 weights and optimizer state, the
model's forward and backward pass in bfloat16, outputs back in float32 for the loss and metrics."""

import functools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from omegaconf import OmegaConf

from conv1dx import nn
from conv1dx.train import compose_config, precision, steps, train
from conv1dx.train.config_check import ConfigError
from conv1dx.train.facts import dataset_facts
from conv1dx.train.metrics import ClassificationMetrics, RegressionMetrics
from conv1dx.train.session import instantiate, prepare
from conv1dx.train.state import init_state
from tests.train_helpers import tiny_config

BF16 = jnp.dtype(jnp.bfloat16)
F32 = jnp.dtype(jnp.float32)
# bfloat16 keeps 8 significant bits: rounding to nearest moves a value by at most U relative.
U = 2.0**-8

# Model configs from conf/model with a small input shape each accepts, its dataset facts, whether
# its inputs are token ids, and overrides that narrow its layers to 8 units (the same layers,
# faster; equal widths also let the eager weight initializers reuse their compiled kernels).
# Together they hold every layer type and loss of every config in conf/model (checked below); each
# model costs seconds of compilation, so configs made only of these layers are not run again.
NARROW = ["model.filters=8"]
MODELS = {
    "har_convnet": ((30, 9), {"num_classes": 6}, False, [*NARROW, "model.dense_units=8"]),
    "imdb_convnet": ((60,), {"vocab_size": 50}, True, [*NARROW, "model.embedding_dim=8"]),
    "jena_conv_gru": ((40, 14), {}, False, [*NARROW, "model.units=8"]),
    "small_convnet": ((20, 6), {"num_classes": 4}, False, NARROW),
    "toy_conv": ((4, 1), {}, False, []),
}


def _parts(name: str) -> set[str]:
    """The layer classes and the loss class of model config `name`."""
    model = compose_config([f"model={name}"]).model
    return {layer["_target_"] for layer in model.layers} | {model.loss._target_}


def test_the_models_cover_every_model_config():
    tested = set().union(*(_parts(name) for name in MODELS))
    for path in (Path(__file__).parents[1] / "conf" / "model").glob("*.yaml"):
        missing = _parts(path.stem) - tested
        assert not missing, f"model={path.stem} uses {missing}: add it to MODELS"
    assert {"conv1dx.nn.GRU", "conv1dx.nn.Embedding"} <= tested


def _model(name: str):
    """(model, its number of layers, inputs x_Bx..., loss, metrics, targets y_B...) for `name`."""
    input_shape, facts, token_ids, overrides = MODELS[name]
    cfg = compose_config([f"model={name}", *overrides])
    with dataset_facts(facts):
        resolved = OmegaConf.to_container(cfg.model, resolve=True)
    model = nn.build_model(resolved["layers"], input_shape, seed=0)
    loss = instantiate(resolved["loss"])
    rng = np.random.default_rng(0)
    batch = 16
    if token_ids:
        x = rng.integers(1, facts["vocab_size"], (batch, *input_shape)).astype(np.int32)
    else:
        x = rng.normal(size=(batch, *input_shape)).astype(np.float32)
    out_shape = model.compute_output_shape(input_shape)
    if "num_classes" in facts:
        y = rng.integers(0, facts["num_classes"], batch)
        metrics = ClassificationMetrics(facts["num_classes"])
    elif type(loss).__name__ == "BinaryCrossentropy":
        y = rng.integers(0, 2, batch)
        metrics = ClassificationMetrics(2)
    else:
        target_shape = out_shape[:-1] if out_shape[-1] == 1 else out_shape  # losses.align
        y = rng.normal(size=(batch, *target_shape)).astype(np.float32)
        metrics = RegressionMetrics()
    return model, len(resolved["layers"]), x, loss, metrics, y


def _rounded(tree):
    """Every floating-point leaf rounded to the nearest bfloat16, kept as float32."""
    return precision.cast_floating(precision.cast_floating(tree, BF16), F32)


def _distance(a, b, scale) -> float:
    """|a - b| / |scale| (Euclidean norms over every entry)."""
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(scale)))


# -- the cast helpers --------------------------------------------------------------------------
def test_cast_floating_casts_only_floating_point_leaves():
    tree = {"x": np.ones((2, 3), np.float32), "w": jnp.ones(4), "ids": np.arange(3),
            "mask": np.ones(2, bool), "key": jax.random.key(0), "rate": 0.5}
    cast = precision.cast_floating(tree, BF16)
    assert cast["x"].dtype == BF16 and cast["w"].dtype == BF16
    assert cast["ids"].dtype == tree["ids"].dtype and cast["mask"].dtype == bool
    assert cast["key"] is tree["key"] and cast["rate"] == 0.5
    back = precision.cast_floating(cast, F32)
    assert back["x"].dtype == F32 and back["ids"].dtype == tree["ids"].dtype


def test_cast_floating_rounds_to_nearest_bfloat16():
    # Near 1 the bf16 spacing is 2**-7: 1 + 3 * 2**-9 lies 3/4 of the way to 1 + 2**-7, and
    # 1 + 2**-8 is a tie that rounds to the even neighbour 1.
    values = np.array([1 + 3 * 2.0**-9, 1 + 2.0**-8, -3.0], np.float32)
    cast = np.asarray(precision.cast_floating(values, BF16).astype(F32))
    np.testing.assert_array_equal(cast, [1 + 2.0**-7, 1.0, -3.0])
    x = np.random.default_rng(0).normal(size=1000).astype(np.float32)
    error = np.abs(np.asarray(_rounded(x)) - x)
    assert np.all(error <= U * np.abs(x)) and np.any(error > 0)


def test_compute_dtype_names():
    assert precision.compute_dtype("bfloat16") == BF16
    assert precision.compute_dtype("float32") == F32
    with pytest.raises(ValueError, match="float32, bfloat16.*'float16'"):
        precision.compute_dtype("float16")


def test_bad_compute_dtype_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"trainer\.compute_dtype must be float32 or bfloat16, "
                                          r"got 'float16'"):
        train(tiny_config(tmp_path, "trainer.compute_dtype=float16"))


# -- every model config under the policy -------------------------------------------------------
@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.slow
def test_model_config_trains_in_bfloat16_with_float32_state(name):
    """Forward: three passes of the same float32 weights, in float32 (y32), in bf16 (y16), and in
    float32 on weights and inputs rounded to bf16 (yq). Rounding the weights and inputs alone moves
    the outputs by d_q = |yq - y32| / |y32|, a bf16-sized amount; the bf16 pass must move them at
    least half as much (the float32 policy moves them by exactly 0). On top of that the bf16 pass
    rounds each layer's results (the sum, then bias and activation: at most 2 roundings of U each);
    at initialization the layers keep relative errors about unchanged, so |y16 - yq| / |y32| stays
    below 2 U per layer.

    Training: one epoch (two steps) in bf16 has a finite loss, changes every weight and leaves no
    bf16 array in the parameters, the other model state or the optimizer state."""
    model, layers, x, loss, metrics, y = _model(name)
    tx = optax.adam(1e-3)
    graphdef, state = init_state(model, tx)

    @functools.partial(jax.jit, static_argnums=2)
    def forward(params, x, dtype):
        return precision.apply_model(graphdef, params, state.rest, {"x": x}, dtype,
                                     training=False)[0]

    y32 = forward(state.params, x, F32)
    y16 = forward(state.params, x, BF16)
    yq = forward(_rounded(state.params), _rounded(x), F32)
    assert y16.dtype == F32 and np.all(np.isfinite(y16))
    d_q = _distance(yq, y32, y32)
    assert d_q > U / 16  # rounding to bf16 moves the outputs by a bf16-sized amount
    assert _distance(y16, y32, y32) >= d_q / 2
    assert _distance(y16, yq, y32) <= 2 * U * layers

    config = steps.StepConfig(graphdef, tx, loss, metrics, compute_dtype=BF16)
    epoch = jax.jit(functools.partial(steps.train_epoch, config, num_examples=len(x), batch_size=8))
    new, sums = epoch(state, {"x": x, "y": y}, jax.random.key(0))
    assert np.isfinite(float(sums["loss"])) and int(new.nonfinite) == 0 and int(new.step) == 2
    for part in (new.params, new.rest, new.opt_state):
        floating = [leaf.dtype for leaf in jax.tree.leaves(part)
                    if jnp.issubdtype(leaf.dtype, jnp.floating)]
        assert set(floating) <= {F32}
    before, after = jax.tree.leaves(state.params), jax.tree.leaves(new.params)
    assert all(not np.array_equal(b, a) for b, a in zip(before, after, strict=True))


def test_gradient_sums_accumulate_in_float32():
    """Embedding(5, 3) -> Conv1D(2, 1) with a kernel of ones on B x T = 4 x 1000 copies of token 0,
    loss = sum of the outputs. By definition d loss / d bias_f = B * T = 4000 (every output holds
    each bias once) and d loss / d E[0, c] = B * T * sum_f K[0, c, f] = 8000. Both are exact in
    bf16, so one rounding at the end keeps them; a bf16 running sum would stall (adding 1 to 256
    in bf16 gives 256 again)."""
    model = nn.Sequential([nn.Embedding(5, 3), nn.Conv1D(2, 1)], input_shape=(1000,),
                          rngs=nnx.Rngs(0))
    model.layers[1].kernel[...] = jnp.ones((1, 3, 2))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    batch = {"x": np.zeros((4, 1000), np.int32)}

    def loss(params, dtype):
        outputs, _ = precision.apply_model(graphdef, params, rest, batch, dtype, training=False)
        return jnp.sum(outputs)

    for dtype in (F32, BF16):
        grads = jax.jit(jax.grad(loss), static_argnums=1)(params, dtype)
        np.testing.assert_array_equal(grads["layers"][1]["bias"][...], [4000.0, 4000.0])
        np.testing.assert_array_equal(grads["layers"][0]["embeddings"][...][0], [8000.0] * 3)
        assert grads["layers"][0]["embeddings"][...].dtype == F32


@pytest.mark.parametrize("make_layer", [
    lambda: nn.GRU(8, return_sequences=True),
    lambda: nn.GRU(8, return_sequences=True, reset_after=False),
    lambda: nn.LSTM(8, return_sequences=True),
], ids=["gru", "gru_reset_before", "lstm"])
def test_recurrent_weight_gradients_accumulate_over_time_in_float32(make_layer):
    """1,000 steps of a constant input drive the state to a fixed point, so every step adds about
    the same term to the recurrent weights' gradients. Summed in bfloat16 they stall (the recurrent
    kernel's gradient came out 64% off before `loop_weight`); summed in float32 every bfloat16
    gradient is within 5% of the float32 one (same bf16-exact weights; 1.4-1.9% measured)."""
    model = nn.Sequential([make_layer()], input_shape=(1000, 4), rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    params = precision.cast_floating(precision.cast_floating(params, BF16), F32)
    batch = {"x": np.full((2, 1000, 4), 0.5, np.float32)}

    def loss(params, dtype):
        outputs, _ = precision.apply_model(graphdef, params, rest, batch, dtype, training=False)
        return jnp.sum(outputs)

    exact, low = (jax.jit(jax.grad(loss), static_argnums=1)(params, dtype)["layers"][0]
                  for dtype in (F32, BF16))
    for name in ("kernel", "recurrent_kernel", "bias"):
        want, got = np.asarray(exact[name][...]), np.asarray(low[name][...])
        assert np.linalg.norm(got - want) <= 0.05 * np.linalg.norm(want), name


def test_masked_global_average_counts_in_float32():
    """Rows of 257 and 259 valid steps of 1.5: bfloat16 has no 257 or 259, and a bfloat16 count
    made the means 1.5078125 and 1.4921875; counted and divided in float32 they are exactly 1.5."""
    x = jnp.full((2, 400, 2), 1.5, jnp.bfloat16)
    mask = jnp.arange(400)[None, :] < jnp.array([[257], [259]])
    mean = nn.GlobalAveragePooling1D()(x, mask=mask)
    assert mean.dtype == BF16
    np.testing.assert_array_equal(np.asarray(mean, np.float32), np.full((2, 2), 1.5))


# -- through the config and the CLI's train(cfg) -----------------------------------------------
@pytest.mark.slow
def test_config_reaches_the_step_and_a_bfloat16_run_trains(tmp_path):
    assert tiny_config(tmp_path).trainer.compute_dtype == "float32"  # the default
    cfg = tiny_config(tmp_path, "trainer.epochs=2", "trainer.compute_dtype=bfloat16")
    assert prepare(cfg).step_config.compute_dtype == BF16
    report = train(cfg)
    assert np.isfinite(report["test_loss"]) and np.isfinite(report["final_train_loss"])
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 2 and all(np.isfinite(row["train_loss"]) for row in rows)
    saved = OmegaConf.load(tmp_path / "run" / "config.yaml")
    assert saved.trainer.compute_dtype == "bfloat16"  # the run records its policy
