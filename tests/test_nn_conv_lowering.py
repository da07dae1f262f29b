"""Choosing each convolution pass's implementation (`conv1dx.nn.conv_lowering`): modes, the timed
decision, and the decisions file that keeps a machine's choices (and so its numbers) from run to run."""

import json
import platform
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conv1dx.nn import conv_lowering, conv_ops, onednn
from conv1dx.train.config_check import ConfigError, check_config
from conv1dx.train.session import prepare
from tests.train_helpers import tiny_config

SUPPORTED = sys.platform == "linux" and platform.machine() == "x86_64"


@pytest.fixture
def decisions(monkeypatch, tmp_path):
    """A fresh decisions file, and the in-memory copy forgotten."""
    path = tmp_path / "decisions.json"
    monkeypatch.setenv("CONV1DX_CONV_TUNING_FILE", str(path))
    monkeypatch.setattr(conv_lowering, "_decisions", {})
    return path


def test_decide_prefers_xla_unless_clearly_beaten():
    just_short, enough = 1 - conv_lowering.MARGIN + 0.01, 1 - conv_lowering.MARGIN
    assert conv_lowering.decide({"xla": 1.0, "onednn": just_short, "onednn_blocked": 0.99}) == "xla"
    assert conv_lowering.decide({"xla": 1.0, "onednn": enough, "onednn_blocked": 0.99}) == "onednn"
    assert conv_lowering.decide({"xla": 1.0, "onednn": 0.8, "onednn_blocked": 0.5}) == "onednn_blocked"
    assert conv_lowering.decide({"xla": 0.5, "onednn": 0.9}) == "xla"


def test_modes(monkeypatch):
    monkeypatch.setattr(conv_lowering.MODE, "mode", None)
    monkeypatch.delenv("CONV1DX_CONV_LOWERING", raising=False)
    assert conv_lowering.get_conv_lowering() == "auto"
    monkeypatch.setenv("CONV1DX_CONV_LOWERING", "xla")
    assert conv_lowering.get_conv_lowering() == "xla"
    with conv_lowering.conv_lowering("onednn"):
        assert conv_lowering.get_conv_lowering() == "onednn"
    assert conv_lowering.get_conv_lowering() == "xla"
    with pytest.raises(ValueError, match=r"conv_lowering='fast' is not a convolution lowering; use one of"):
        conv_lowering.set_conv_lowering("fast")
    monkeypatch.setenv("CONV1DX_CONV_LOWERING", "onednnn")
    with pytest.raises(ValueError, match="CONV1DX_CONV_LOWERING='onednnn'"):
        conv_lowering.get_conv_lowering()


def test_a_decision_is_timed_once_and_kept(decisions, monkeypatch):
    timed = []

    def fake_timing(candidates, operands):
        timed.append(sorted(candidates))
        return {"xla": 2.0, "onednn": 1.0, "onednn_blocked": 1.5}

    monkeypatch.setattr(conv_lowering, "time_candidates", fake_timing)
    candidates = dict.fromkeys(conv_lowering.CANDIDATES, lambda a: a)
    operands = [jax.ShapeDtypeStruct((2, 3), jnp.float32)]
    assert conv_lowering.choose("forward A", "machine", candidates, operands) == "onednn"
    assert conv_lowering.choose("forward A", "machine", candidates, operands) == "onednn"
    assert len(timed) == 1
    stored = json.loads(decisions.read_text())
    assert stored["machine"]["forward A"] == {"choice": "onednn",
                                              "ms": {"xla": 2000.0, "onednn": 1000.0, "onednn_blocked": 1500.0}}
    monkeypatch.setattr(conv_lowering, "_decisions", {})  # a new process reads the file, times nothing
    assert conv_lowering.choose("forward A", "machine", candidates, operands) == "onednn"
    assert conv_lowering.choose("forward A", "another machine", candidates, operands) == "onednn"
    assert conv_lowering.choose("forward B", "machine", candidates, operands) == "onednn"
    assert len(timed) == 3
    assert set(json.loads(decisions.read_text())) == {"machine", "another machine"}


def test_a_corrupt_decisions_file_is_named(decisions):
    decisions.write_text("{not json")
    with pytest.raises(ValueError, match=r"decisions\.json cannot be read .*delete it"):
        conv_lowering.choose("k", "m", {"xla": lambda a: a}, [jax.ShapeDtypeStruct((1,), jnp.float32)])


def test_time_candidates_times_each_in_a_loop():
    seconds = conv_lowering.time_candidates(
        {"xla": lambda a, b: a @ b, "slower": lambda a, b: jnp.sin(a @ b) @ b.T @ b},
        [jax.ShapeDtypeStruct((64, 64), jnp.float32)] * 2)
    assert set(seconds) == {"xla", "slower"}
    assert all(s > 0 for s in seconds.values())


@pytest.mark.skipif(not SUPPORTED, reason="conv1dx installs oneDNN on Linux x86-64 only")
@pytest.mark.slow
def test_auto_times_each_pass_of_a_large_enough_convolution(decisions, monkeypatch):
    x = jax.random.normal(jax.random.key(0), (8, 64, 16))
    kernel = jax.random.normal(jax.random.key(1), (5, 16, 24))

    def loss(a, b):
        return jnp.sum(conv_ops.conv1d(a, b, stride=2, padding="same") ** 2)

    with conv_lowering.conv_lowering("xla"):
        want = jax.jit(jax.grad(loss, argnums=(0, 1)))(x, kernel)
    with conv_lowering.conv_lowering("auto"):
        jax.jit(jax.grad(loss, argnums=(0, 1)))(x, kernel)  # under the size threshold: nothing timed
        assert not decisions.exists()
        monkeypatch.setattr(conv_lowering, "MIN_TUNED_FLOPS", 0)
        got = jax.jit(jax.grad(loss, argnums=(0, 1)))(x, kernel)
    (machine, stored), = json.loads(decisions.read_text()).items()
    assert "oneDNN 3." in machine and onednn.build_id() in machine  # a changed handler is timed again
    assert sorted(stored) == [f"{name} B8 T64 C16 F24 K5 stride2 pad1,2 dilation1"
                              for name in ("forward", "input_gradient", "kernel_gradient")]
    onednn_variants = {"xla", "onednn", "onednn_blocked"}
    direct = {"direct"} if onednn.direct_available() else set()
    assert {key.split()[0]: set(entry["ms"]) for key, entry in stored.items()} == {
        "forward": onednn_variants, "input_gradient": onednn_variants, "kernel_gradient": onednn_variants | direct}
    assert set(conv_lowering.CANDIDATES) == onednn_variants | {"direct"}
    for a, b in zip(got, want, strict=True):  # float32 sums of terms up to ~1e3: absolute error ~1e-7 of that
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * np.max(np.abs(b)))


@pytest.mark.skipif(not SUPPORTED, reason="conv1dx installs oneDNN on Linux x86-64 only")
def test_auto_times_a_pass_of_few_flops_that_moves_many_bytes(decisions, monkeypatch):
    """One input channel over a long series: few FLOPs, a large result (memory-bound; see worth_timing)."""
    x = jax.random.normal(jax.random.key(0), (8, 64, 1))
    kernel = jax.random.normal(jax.random.key(1), (5, 1, 24))
    flops = 2 * 8 * 64 * 1 * 24 * 5
    nbytes = 4 * (8 * 64 * 1 + 8 * 64 * 24 + 5 * 1 * 24)
    assert flops < conv_lowering.MIN_TUNED_FLOPS
    timed = []
    monkeypatch.setattr(conv_lowering, "time_candidates",
                        lambda candidates, operands: timed.append(1) or {name: 1.0 for name in candidates})
    def trace():
        jax.jit(lambda a, b: conv_ops.conv1d(a, b, padding="same")).lower(x, kernel)

    with conv_lowering.conv_lowering("auto"):
        monkeypatch.setattr(conv_lowering, "MIN_TUNED_BYTES", nbytes + 1)
        trace()
        assert not timed and not conv_lowering.worth_timing(flops, nbytes)
        monkeypatch.setattr(conv_lowering, "MIN_TUNED_BYTES", nbytes)
        trace()
        assert timed == [1] and conv_lowering.worth_timing(flops, nbytes)
    (stored,) = json.loads(decisions.read_text()).values()
    assert list(stored) == ["forward B8 T64 C1 F24 K5 stride1 pad2,2 dilation1"]


def test_the_trainer_sets_the_mode(tmp_path, monkeypatch):
    monkeypatch.setattr(conv_lowering.MODE, "mode", None)
    prepare(tiny_config(tmp_path, "trainer.conv_lowering=xla", "trainer.epochs=1"))
    assert conv_lowering.get_conv_lowering() == "xla"
    with pytest.raises(ConfigError, match=r"trainer\.conv_lowering must be auto, xla, onednn, got 'gpu'"):
        check_config(tiny_config(tmp_path, "trainer.conv_lowering=gpu"))


def test_decisions_and_builds_live_in_the_user_cache_by_default(monkeypatch, tmp_path):
    from conv1dx.nn.onednn import library

    monkeypatch.delenv("CONV1DX_CONV_TUNING_FILE")
    monkeypatch.delenv("CONV1DX_ONEDNN_BUILD_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert conv_lowering.tuning_file() == tmp_path / "conv1dx" / "conv_lowering.json"
    assert library.build_dir() == tmp_path / "conv1dx" / "onednn"
