"""Tests of the article-002 toy convolution sets and the seeded synthetic classification set."""

from __future__ import annotations

import numpy as np
import pytest

from conv1dx.data.synthetic import load_synthetic
from conv1dx.data.toy import EXAMPLES, load_toy, valid_conv1d


def _conv_loops(x_TxC, kernel_KxCxF):
    """y[t, f] = sum_k sum_c x[t + k, c] * kernel[k, c, f], written with plain loops."""
    taps, channels, filters = kernel_KxCxF.shape
    steps = x_TxC.shape[0] - taps + 1
    y = np.zeros((steps, filters))
    for t in range(steps):
        for f in range(filters):
            y[t, f] = sum(
                x_TxC[t + k, c] * kernel_KxCxF[k, c, f]
                for k in range(taps)
                for c in range(channels)
            )
    return y


# The article's printed numbers (seed article 002).
ARTICLE = {
    "single": ([[0], [3], [4], [5]], [[6], [11], [14]]),
    "channels": ([[0, 0], [3, 6], [4, 7], [5, 8]], [[30], [57], [67]]),
    "filters": ([[0], [3], [4], [5]], [[6, 12], [11, 25], [14, 32]]),
}


@pytest.mark.parametrize("example", EXAMPLES)
def test_article_examples_and_kernels(example):
    ds = load_toy(example)
    x, y = ARTICLE[example]
    train = ds["train"]
    np.testing.assert_array_equal(train.x[0], x)
    np.testing.assert_array_equal(train.y[0], y)
    assert train.x.dtype == np.float32 and train.y.dtype == np.float32
    assert ds.task == "regression" and ds.num_classes is None
    kernel = ds.metadata["kernel_KxCxF"]
    np.testing.assert_allclose(_conv_loops(train.x[0], kernel), y)


def test_article_kernels_as_the_article_states_them():
    np.testing.assert_array_equal(load_toy("single").metadata["kernel_KxCxF"][:, 0, 0], [1, 2])
    # "We are expecting the weights to be [[1, 3], [2, 4]]" (taps x channels).
    np.testing.assert_array_equal(
        load_toy("channels").metadata["kernel_KxCxF"][:, :, 0], [[1, 3], [2, 4]]
    )
    filters = load_toy("filters").metadata["kernel_KxCxF"]
    np.testing.assert_array_equal(filters[:, 0, 0], [1, 2])
    np.testing.assert_array_equal(filters[:, 0, 1], [3, 4])


def test_channels_example_is_underdetermined():
    ds = load_toy("channels")
    assert ds.metadata["kernel_unique"] is False
    # The article's training ended at another kernel that fits the data (loss 0.009).
    other = np.array([0.61243659, 3.15884042, 2.47074366, 3.76123118]).reshape(2, 2, 1)
    np.testing.assert_allclose(_conv_loops(ds["train"].x[0], other)[:, 0], [30, 57, 67], atol=0.05)


def test_valid_conv1d_matches_loops():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 9, 2))
    kernel = rng.normal(size=(4, 2, 3))
    out = valid_conv1d(x, kernel)
    assert out.shape == (3, 6, 3)
    for n in range(3):
        np.testing.assert_allclose(out[n], _conv_loops(x[n], kernel), rtol=1e-5, atol=1e-5)


def test_generated_examples_follow_the_true_kernel_and_seed():
    ds = load_toy("filters", num_train=5, num_test=3, seed=1)
    assert len(ds["train"]) == 6 and len(ds["test"]) == 3 and ds.input_shape == (4, 1)
    kernel = ds.metadata["kernel_KxCxF"]
    for split in ds.splits.values():
        for x, y in zip(split.x, split.y, strict=True):
            np.testing.assert_allclose(_conv_loops(x, kernel), y)
    same = load_toy("filters", num_train=5, num_test=3, seed=1)
    np.testing.assert_array_equal(same["test"].x, ds["test"].x)
    other = load_toy("filters", num_train=5, num_test=3, seed=2)
    assert not np.array_equal(other["test"].x, ds["test"].x)
    assert "test" not in load_toy("single").splits


def test_toy_errors():
    with pytest.raises(ValueError, match="example must be one of"):
        load_toy("triple")
    with pytest.raises(ValueError, match="num_train"):
        load_toy("single", num_train=-1)


# ---------------------------------------------------------------- synthetic


def test_synthetic_shapes_balance_and_determinism():
    ds = load_synthetic(num_train=300, num_test=100, seed=3)
    assert ds.input_shape == (100, 1) and ds.num_classes == 10 and len(ds.class_names) == 10
    assert ds["train"].x.dtype == np.float32 and ds["train"].y.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(ds["train"].y), [30] * 10)
    np.testing.assert_array_equal(np.bincount(ds["test"].y), [10] * 10)
    again = load_synthetic(num_train=300, num_test=100, seed=3)
    np.testing.assert_array_equal(again["train"].x, ds["train"].x)
    other = load_synthetic(num_train=300, num_test=100, seed=4)
    assert not np.array_equal(other["train"].x, ds["train"].x)
    assert not np.array_equal(ds["train"].x[:100], ds["test"].x)  # independent streams


def test_synthetic_is_learnable_by_a_simple_baseline():
    """Nearest class mean of the FFT magnitude (NumPy only) must beat chance (10%) by far."""
    ds = load_synthetic(num_train=1000, num_test=500, seed=0)
    train, test = ds["train"], ds["test"]
    spectrum_train = np.abs(np.fft.rfft(train.x[:, :, 0], axis=1))
    spectrum_test = np.abs(np.fft.rfft(test.x[:, :, 0], axis=1))
    means = np.stack([spectrum_train[train.y == k].mean(0) for k in range(10)])
    distances = ((spectrum_test[:, None, :] - means[None]) ** 2).sum(-1)
    accuracy = (distances.argmin(1) == test.y).mean()
    assert accuracy > 0.5, accuracy
    # ...and the label really lives in the burst: shuffling labels destroys it.
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(train.y)
    means = np.stack([spectrum_train[shuffled == k].mean(0) for k in range(10)])
    chance = (((spectrum_test[:, None, :] - means[None]) ** 2).sum(-1).argmin(1) == test.y).mean()
    assert chance < 0.25, chance


def test_synthetic_errors():
    with pytest.raises(ValueError, match="Nyquist"):
        load_synthetic(freq_step=0.06)
    with pytest.raises(ValueError, match="burst_len"):
        load_synthetic(burst_len=101)
    with pytest.raises(ValueError, match="num_classes"):
        load_synthetic(num_classes=1)
