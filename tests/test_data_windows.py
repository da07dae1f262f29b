"""Lookback windows on device (conv1dx.data.windows) against the article's NumPy generator."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conv1dx.data.windows import (
    WindowedSeries,
    WindowSpec,
    gather_windows,
    window_length,
    window_starts,
)


def article_generator_batch(data, rows, lookback, step, delay, target_col=1):
    """The Jena generator's loop body (Chollet, DLwP 6.3) for one batch of rows, in plain NumPy."""
    samples = np.zeros((len(rows), len(range(-lookback, 0, step)), data.shape[-1]))
    targets = np.zeros((len(rows),))
    for j in range(len(rows)):
        indices = range(rows[j] - lookback, rows[j], step)
        samples[j] = data[indices]
        targets[j] = data[rows[j] + delay][target_col]
    return samples, targets


def article_rows(min_index, max_index, lookback, delay, num_rows):
    """Rows the sequential generator visits: range(min_index + lookback, max_index)."""
    if max_index is None:
        max_index = num_rows - delay - 1
    return list(range(min_index + lookback, max_index))


def index_series(num_rows, num_cols):
    """series[r, c] = 100 r + c: every value names its own row and column (exact in float32)."""
    return (100.0 * np.arange(num_rows)[:, None] + np.arange(num_cols)[None, :]).astype(np.float32)


@pytest.mark.parametrize(
    "min_index, max_index, lookback, delay",
    [(0, 200, 60, 12), (201, 300, 30, 6), (301, None, 24, 10), (5, 40, 34, 0)],
)
def test_window_starts_match_article_ranges(min_index, max_index, lookback, delay):
    rows = window_starts(min_index, max_index, lookback, delay, num_rows=400)
    assert rows.dtype == np.int32
    assert rows.tolist() == article_rows(min_index, max_index, lookback, delay, 400)


def test_window_starts_errors():
    with pytest.raises(ValueError, match="num_rows"):
        window_starts(0, None, 10, 2)
    with pytest.raises(ValueError, match="no window"):
        window_starts(0, 10, 10, 2)
    with pytest.raises(ValueError, match="past the series end"):
        window_starts(0, 100, 10, 5, num_rows=100)
    with pytest.raises(ValueError, match="lookback"):
        window_starts(0, 100, 0, 5)


@pytest.mark.parametrize("lookback, step, delay", [(12, 3, 4), (10, 3, 5), (7, 7, 0), (5, 1, 2)])
def test_gather_windows_jit_matches_article_generator(lookback, step, delay):
    data = index_series(80, 4)
    rows = np.array([lookback, lookback + 1, 30, 79 - delay - 1], dtype=np.int32)
    x, y = jax.jit(gather_windows, static_argnums=(2, 3, 4, 5))(
        jnp.asarray(data), jnp.asarray(rows), lookback, step, delay, 1
    )
    ref_x, ref_y = article_generator_batch(data, rows, lookback, step, delay, target_col=1)
    assert x.shape == (len(rows), window_length(lookback, step), 4) == ref_x.shape
    np.testing.assert_array_equal(np.asarray(x), ref_x)
    np.testing.assert_array_equal(np.asarray(y), ref_y)


def test_gather_windows_values_by_hand():
    data = index_series(50, 3)
    x, y = gather_windows(jnp.asarray(data), jnp.array([20, 31]), 12, 4, 5, 2)
    # row 20: rows 8, 12, 16; row 31: rows 19, 23, 27; targets 25*100+2, 36*100+2
    np.testing.assert_array_equal(np.asarray(x[:, :, 0]), [[800, 1200, 1600], [1900, 2300, 2700]])
    np.testing.assert_array_equal(np.asarray(x[1, 2]), [2700, 2701, 2702])
    np.testing.assert_array_equal(np.asarray(y), [2502, 3602])


def test_gather_windows_out_of_range_is_nan_not_wrapped():
    data = index_series(20, 2)
    x, y = gather_windows(jnp.asarray(data), jnp.array([3, 18]), 6, 2, 4, 0)
    assert np.isnan(np.asarray(x[0, 0])).all()  # row 3 - 6 < 0
    assert np.isnan(float(y[1]))  # 18 + 4 >= 20


def _windowed(data, ranges, spec, mean=None, std=None):
    cols = data.shape[1]
    return WindowedSeries(
        name="toy",
        series=data,
        ranges=ranges,
        spec=spec,
        mean=np.zeros(cols) if mean is None else mean,
        std=np.ones(cols) if std is None else std,
        feature_names=tuple(f"f{i}" for i in range(cols)),
    )


def test_windowed_series_rows_gather_and_shapes():
    data = index_series(300, 5)
    spec = WindowSpec(lookback=24, step=6, delay=12, target_col=1)
    ds = _windowed(data, {"train": (0, 150), "val": (151, 220), "test": (221, None)}, spec)
    assert ds.window_shape == ds.input_shape == (4, 5)
    assert ds.num_features == 5 and ds.num_rows == 300
    assert ds.rows("test").tolist() == article_rows(221, None, 24, 12, 300)
    rows = ds.rows("val")
    x, y = ds.gather(ds.device_series(), rows)
    ref_x, ref_y = article_generator_batch(data, rows, 24, 6, 12, target_col=1)
    np.testing.assert_array_equal(np.asarray(x), ref_x)
    np.testing.assert_array_equal(np.asarray(y), ref_y)
    # every window of a split reads only rows at or after the split's start
    for split, (lo, _) in ds.ranges.items():
        assert ds.rows(split).min() - 24 >= lo
    assert "val: rows [151, 220) -> 45 windows" in ds.describe()
    with pytest.raises(KeyError, match="no split"):
        ds.rows("dev")


def test_windowed_series_validates():
    with pytest.raises(ValueError, match="target_col"):
        _windowed(index_series(50, 2), {"train": (0, 30)}, WindowSpec(5, 1, 1, target_col=2))
    with pytest.raises(ValueError, match="no window"):
        _windowed(index_series(50, 2), {"train": (0, 5)}, WindowSpec(5, 1, 1, target_col=0))


def test_common_sense_mae_by_hand():
    """Target column = row index: the last sampled step is r - step, the target r + delay, so the
    naive forecast is off by exactly delay + step on every row."""
    data = np.stack([np.arange(200.0), np.sin(np.arange(200.0))], axis=1).astype(np.float32)
    std = np.array([2.5, 1.0])
    spec = WindowSpec(lookback=30, step=6, delay=9, target_col=0)
    ds = _windowed(data, {"val": (20, 150)}, spec, mean=np.array([7.0, 0.0]), std=std)
    result = ds.common_sense_mae("val")
    assert result["num_rows"] == 150 - 50
    assert result["mae"] == pytest.approx(9 + 6)
    assert result["mae_physical"] == pytest.approx((9 + 6) * 2.5)
    np.testing.assert_allclose(ds.to_physical(np.array([0.0, 2.0])), [7.0, 12.0])


def test_common_sense_mae_matches_article_loop():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(400, 3)).astype(np.float32)
    spec = WindowSpec(lookback=40, step=7, delay=11, target_col=1)
    ds = _windowed(data, {"val": (100, 300)}, spec, std=np.array([1.0, 3.0, 1.0]))
    samples, targets = article_generator_batch(data, list(range(140, 300)), 40, 7, 11, target_col=1)
    expected = np.mean(np.abs(samples[:, -1, 1] - targets))
    result = ds.common_sense_mae("val")
    assert result["mae"] == pytest.approx(expected, rel=1e-12)
    assert result["mae_physical"] == pytest.approx(3.0 * expected, rel=1e-12)
