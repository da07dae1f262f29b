"""Jena climate loader on a fixture CSV zip in the original format (tests/data_fixtures/jena.py)."""

import datetime as dt
import zipfile

import jax
import numpy as np
import pytest

from conv1dx.data import jena
from conv1dx.data.archives import DatasetError
from conv1dx.data.windows import WindowedSeries
from tests.data_fixtures.jena import CSV_NAME, FILENAME, HEADER, write_jena_zip

# A scaled-down version of the article's settings: train [0, 1500), val [1501, 2200), test [2201, end).
SETTINGS = dict(
    lookback=120, step=6, delay=12, train=(0, 1500), val=(1501, 2200), test=(2201, None)
)


def article_generator(data, rows, lookback, step, delay, target_col=1):
    """The article's generator loop body for a batch of rows, in plain NumPy."""
    samples = np.zeros((len(rows), lookback // step, data.shape[-1]))
    targets = np.zeros((len(rows),))
    for j in range(len(rows)):
        samples[j] = data[range(rows[j] - lookback, rows[j], step)]
        targets[j] = data[rows[j] + delay][target_col]
    return samples, targets


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    archives = tmp_path_factory.mktemp("archives")
    data_dir = tmp_path_factory.mktemp("data")
    fixture = write_jena_zip(archives, num_rows=3000)
    ds = jena.load_jena(data_dir=data_dir, archives=archives, download=False, **SETTINGS)
    return fixture, ds, archives, data_dir


def test_parse_csv_reads_values_and_dates(setup):
    fixture, _, _, _ = setup
    times, values = jena.read_archive(fixture.path)
    np.testing.assert_array_equal(values, fixture.values)
    expected = [dt.datetime.strptime(d, "%d.%m.%Y %H:%M:%S") for d in fixture.dates]
    assert times.astype(dt.datetime).tolist() == expected
    assert values.shape == (3000, 14)


def test_series_standardized_with_train_rows_only(setup):
    fixture, ds, _, _ = setup
    train = fixture.values[:1500]
    mean, std = train.mean(axis=0), train.std(axis=0)
    np.testing.assert_allclose(ds.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(ds.std, std, rtol=1e-12)
    assert ds.series.dtype == np.float32 and ds.series.shape == (3000, 14)
    np.testing.assert_allclose(ds.series, (fixture.values - mean) / std, rtol=1e-6, atol=1e-6)
    full_mean = fixture.values.mean(axis=0)
    assert not np.allclose(ds.mean, full_mean)  # the fixture drifts, so the choice of rows matters


def test_spec_ranges_and_row_counts(setup):
    _, ds, _, _ = setup
    assert isinstance(ds, WindowedSeries) and ds.task == "regression"
    assert ds.window_shape == (20, 14) and ds.num_features == 14
    assert ds.feature_names[ds.spec.target_col] == "T (degC)" == ds.metadata["target"]
    assert ds.rows("train").tolist() == list(range(120, 1500))
    assert ds.rows("val").tolist() == list(range(1501 + 120, 2200))
    assert ds.rows("test").tolist() == list(range(2201 + 120, 3000 - 12 - 1))


def test_gathered_windows_match_article_generator(setup):
    _, ds, _, _ = setup
    series = ds.device_series()
    step_fn = jax.jit(ds.gather)
    for split in ("train", "val", "test"):
        rows = ds.rows(split)[::97]
        x, y = step_fn(series, rows)
        ref_x, ref_y = article_generator(ds.series, rows, 120, 6, 12)
        np.testing.assert_array_equal(np.asarray(x), ref_x)
        np.testing.assert_array_equal(np.asarray(y), ref_y)


def test_common_sense_baseline_by_hand(setup):
    """Normalized MAE from the article's definition, and degC straight from the raw temperatures."""
    fixture, ds, _, _ = setup
    rows = np.arange(1501 + 120, 2200)
    samples, targets = article_generator(ds.series, rows, 120, 6, 12)
    result = ds.common_sense_mae("val")
    assert result["mae"] == pytest.approx(np.mean(np.abs(samples[:, -1, 1] - targets)), rel=1e-6)
    temp = fixture.values[:, 1]
    degc = np.mean(np.abs(temp[rows - 6] - temp[rows + 12]))  # last sampled hour vs 12 rows ahead
    assert result["mae_physical"] == pytest.approx(degc, rel=1e-5)
    assert result["num_rows"] == len(rows)


def test_target_by_name_and_reuse_without_reprepare(setup):
    _, first, archives, data_dir = setup
    assert first.metadata["reused_cache"] is False
    ds = jena.load_jena(
        data_dir=data_dir, archives=archives, download=False,
        **{**SETTINGS, "lookback": 60, "step": 3}, target_col="p (mbar)",
    )  # fmt: skip
    assert ds.metadata["reused_cache"] is True
    assert ds.spec.target_col == 0 and ds.window_shape == (20, 14)
    np.testing.assert_array_equal(ds.series, first.series)


def test_bad_arguments(setup):
    _, _, archives, data_dir = setup
    kwargs = dict(data_dir=data_dir, archives=archives, download=False)
    with pytest.raises(ValueError, match="not a feature"):
        jena.load_jena(**kwargs, target_col="T (K)")
    with pytest.raises(ValueError, match="no window"):
        jena.load_jena(**kwargs, **{**SETTINGS, "val": (1501, 1600)})
    with pytest.raises(ValueError, match="min_index, max_index"):
        jena.load_jena(**kwargs, **{**SETTINGS, "test": (5,)})


def _write_csv_zip(folder, text):
    path = folder / FILENAME
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(CSV_NAME, text)
    return path


def test_malformed_row_names_file_and_line(tmp_path):
    fixture = write_jena_zip(tmp_path / "ok", num_rows=20)
    lines = zipfile.ZipFile(fixture.path).read(CSV_NAME).decode().split("\n")
    for bad in (
        "01.01.2009 01:00:00,996.5,oops" + ",1.0" * 12,
        "01.01.2009 01:00:00,1.0",
        "01.01.2009 01:00:00" + ",1.0" * 15,
        "",
    ):
        broken = lines[:7] + [bad] + lines[7:]
        path = _write_csv_zip(tmp_path, "\n".join(broken))
        with pytest.raises(DatasetError, match=f"{CSV_NAME} line 8:"):
            jena.read_archive(path)


def test_wrong_header_and_bad_date(tmp_path):
    row = "01.01.2009 00:10:00" + ",1.00" * 14
    with pytest.raises(DatasetError, match="header"):
        jena.read_archive(
            _write_csv_zip(tmp_path, HEADER.replace("T (degC)", "T (K)") + "\n" + row)
        )
    with pytest.raises(DatasetError, match="line 3"):
        jena.read_archive(
            _write_csv_zip(tmp_path, HEADER + "\n" + row + "\n2009-01-01 00:20:00" + ",1.00" * 14)
        )


def test_missing_and_corrupt_archive(tmp_path):
    with pytest.raises(DatasetError, match="download=False") as info:
        jena.load_jena(data_dir=tmp_path / "data", archives=tmp_path, download=False)
    assert FILENAME in str(info.value)
    path = write_jena_zip(tmp_path / "archives", num_rows=50).path
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    with pytest.raises(DatasetError, match="corrupt"):
        jena.load_jena(data_dir=tmp_path / "data", archives=path.parent, download=False)
