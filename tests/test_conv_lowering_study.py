"""The convolution-lowering studies run: the kernel-gradient study times every form and leaves the
library's function in place; the ceiling study times the passes the library computes; the oneDNN
epochs study times both lowering modes."""

import platform
import sys

import pytest

from conv1dx.nn import conv_ops
from experiments.conv_lowering import kernel_gradient


@pytest.mark.slow
def test_kernel_gradient_study_times_every_form_and_restores_the_library():
    library = conv_ops._kernel_gradient
    rates = kernel_gradient.measure("jena_convnet", rounds=2, steps=2, epochs=1)
    assert set(rates) == {"transposing_x", "transposing_dy", "library rule"}
    assert all(len(values) == 2 and min(values) > 0 for values in rates.values())
    assert conv_ops._kernel_gradient is library


def test_ceiling_study_times_the_passes_the_library_computes():
    """Each timed pass is the convolution's forward / input gradient / kernel gradient, and the
    GEMM beside it has the same FLOPs."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from experiments.conv_lowering import ceiling

    batch, length, channels, filters, kernel_size = 3, 11, 4, 5, 3
    passes = ceiling.conv_passes(batch, length, channels, filters, kernel_size, input_gradient=True)
    assert list(passes) == ["forward", "input gradient", "kernel gradient"]
    (forward, (x, kernel), flop, _), (input_grad, (dy, _), _, _), (kernel_grad, _, _, _) = (
        passes.values())
    y, vjp = jax.vjp(conv_ops.conv1d, x, kernel)
    dx, dkernel = vjp(dy)
    np.testing.assert_allclose(forward(x, kernel), y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(input_grad(dy, kernel), dx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(kernel_grad(dy, x), dkernel, rtol=1e-5, atol=1e-5)
    assert flop == 2 * batch * (length - kernel_size + 1) * channels * filters * kernel_size
    for _, _, pass_flop, (m, k, n) in passes.values():
        assert 2 * m * k * n == pass_flop
    fn, (a, b) = ceiling.gemm(2, 3, 4)
    np.testing.assert_allclose(fn(a, b), jnp.dot(a, b))
    first_layer = ceiling.conv_passes(batch, length, channels, filters, kernel_size,
                                      input_gradient=False)
    assert list(first_layer) == ["forward", "kernel gradient"]


def test_ceiling_table_bounds_the_step_by_its_passes(monkeypatch):
    from experiments.conv_lowering import ceiling

    monkeypatch.setattr(ceiling, "training_flops_per_step", lambda model: (3e9, 10))
    rows = [{"model": "m", "layer": "conv1d", "pass": "forward", "flop": 1e9, "shape": (1,) * 5,
             "gemm_shape": (1, 1, 1), "ms": 10.0, "gemm_ms": 20.0},  # conv faster
            {"model": "m", "layer": "conv1d", "pass": "kernel gradient", "flop": 1e9,
             "shape": (1,) * 5, "gemm_shape": (1, 1, 1), "ms": 20.0, "gemm_ms": 5.0}]
    text = ceiling.markdown(rows, peak=200.0, models=("m",))
    # 3 GFLOP: convolutions 30 ms = 100 GFLOP/s = 50% of peak; GEMMs 25 ms -> 60%; the faster of
    # the two per pass, 10 + 5 ms -> 100%.
    assert "| m | 10 | 3.00 | 30.0 | 50% | 60% | 100% |" in text
    assert "| forward | 10.00 | 100 | 50% |" in text


def test_blocked_patches_compute_the_forward_and_kernel_gradient():
    import numpy as np

    from experiments.conv_lowering import ceiling

    shape = (4, 9, 3, 5, 3)
    reference = ceiling.conv_passes(*shape, input_gradient=False)
    for block in (1, 2, 4):
        for name, (fn, args) in ceiling.blocked_passes(*shape, block).items():
            want_fn, want_args, _, _ = reference[name]
            np.testing.assert_allclose(fn(*args), want_fn(*want_args), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_recurrent_dropout_study_times_every_variant():
    from experiments.recurrent_dropout import bench

    rates = bench.measure(rounds=1, steps=2, epochs=1)
    assert set(rates) == {(False, 0.5), (False, 0.0), (True, 0.5), (True, 0.0)}
    assert all(len(values) == 1 and values[0] > 0 for values in rates.values())


@pytest.fixture
def epoch_study(monkeypatch):
    """What an epochs study changes in the process, restored after the test; every pass timed."""
    from conv1dx.nn import conv_lowering

    monkeypatch.setattr(conv_lowering.MODE, "mode", conv_lowering.MODE.mode)  # the study sets it per run
    monkeypatch.setenv("CONV1DX_CONV_TUNING_FILE", "restored after the test")  # the study points it elsewhere
    monkeypatch.setattr(conv_lowering, "MIN_TUNED_FLOPS", 0)  # time even jena_convnet's small passes


@pytest.mark.slow
@pytest.mark.skipif(not (sys.platform == "linux" and platform.machine() == "x86_64"),
                    reason="conv1dx installs oneDNN on Linux x86-64 only")
def test_onednn_epochs_study_times_both_modes_and_lists_the_decisions(capsys, epoch_study):
    from experiments.conv_lowering import onednn_epochs

    onednn_epochs.main(["--models", "jena_convnet", "--rounds", "2", "--steps", "1"])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| jena_convnet |"))
    tuning, xla, auto, ratio = (float(cell.replace(",", "")) for cell in row.split("|")[2:6])
    assert xla > 0 and auto > 0 and abs(ratio - auto / xla) < 0.01
    assert "| forward B128 T240 C14 F32 K5 stride1 pad0,0 dilation1 |" in out
    assert out.count("| kernel_gradient ") == 3  # the three convolutions' kernel gradients were timed


@pytest.mark.slow
@pytest.mark.skipif(not (sys.platform == "linux" and platform.machine() == "x86_64"),
                    reason="conv1dx installs oneDNN on Linux x86-64 only")
def test_direct_epochs_study_times_both_runs_and_lists_the_passes(capsys, epoch_study):
    from conv1dx.nn import onednn
    from experiments.conv_lowering import direct_epochs

    direct_epochs.main(["--models", "jena_convnet", "--rounds", "2", "--steps", "1"])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| jena_convnet |"))
    without, with_direct, ratio = (float(cell.replace(",", "")) for cell in row.split("|")[2:5])
    assert without > 0 and with_direct > 0 and abs(ratio - with_direct / without) < 0.01
    rows = [line for line in out.splitlines() if line.startswith("| jena_convnet: ")]
    # Three stride-1 convolutions: each pass of each timed with the direct loops among the candidates.
    assert len(rows) == (9 if onednn.direct_available() else 0)
    assert all(float(line.split("|")[6]) > 0 for line in rows)


def test_direct_epochs_decides_the_studied_passes_again_without_the_direct_loops():
    from experiments.conv_lowering import direct_epochs

    ms = {"xla": 10.0, "onednn": 9.0, "onednn_blocked": 9.8, "direct": 5.0}
    stored = {"machine": {"forward B1": {"choice": "direct", "ms": ms},
                          "input_gradient B1": {"choice": "direct", "ms": {**ms, "onednn": 9.9}},
                          "kernel_gradient B1": {"choice": "direct", "ms": ms},
                          "forward B2": {"choice": "xla", "ms": {"xla": 1.0, "onednn": 2.0}}}}
    got = direct_epochs.withheld(stored, ["forward", "input_gradient"])["machine"]
    # the others' choice on the same timings (oneDNN must beat XLA by conv_lowering.MARGIN)
    assert {key: entry["choice"] for key, entry in got.items()} == {
        "forward B1": "onednn", "input_gradient B1": "xla", "kernel_gradient B1": "direct", "forward B2": "xla"}
    assert got["forward B1"]["ms"] == ms and stored["machine"]["forward B1"]["choice"] == "direct"
    with pytest.raises(SystemExit, match="--passes must name some of"):
        direct_epochs.parse_args(["--passes", "backward"])
