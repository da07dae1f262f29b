"""WISDM v1.1 loader on a fixture archive with the raw file's quirks (tests/data_fixtures/wisdm.py)."""

import numpy as np
import pytest

from conv1dx.data import wisdm
from conv1dx.data.archives import DatasetError
from tests.data_fixtures.wisdm import FILENAME, write_wisdm_tar

# Alphabetical, as scikit-learn's LabelEncoder orders them in the WISDM article.
ALPHABETICAL = ["Downstairs", "Jogging", "Sitting", "Standing", "Upstairs", "Walking"]


def reference_windows(fixture, window, step, keep=None):
    """Plain loops: for each run, windows every ``step`` records from its first kept record."""
    xs, ys, users = [], [], []
    for lo, hi in fixture.run_bounds:
        idx = [i for i in range(lo, hi) if keep is None or keep[i]]
        for start in range(0, len(idx) - window + 1, step):
            rows = idx[start : start + window]
            xs.append(fixture.acc[rows])
            ys.append(ALPHABETICAL.index(fixture.activity[lo]))
            users.append(fixture.user[lo])
    return np.asarray(xs, dtype=np.float32), np.asarray(ys), np.asarray(users)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    archives = tmp_path_factory.mktemp("archives")
    data_dir = tmp_path_factory.mktemp("data")
    fixture = write_wisdm_tar(archives)
    return fixture, archives, data_dir


def _load(setup, **kwargs):
    _, archives, data_dir = setup
    return wisdm.load_wisdm(data_dir=data_dir, archives=archives, download=False, **kwargs)


def test_parse_raw_reads_every_kept_record(setup):
    fixture, _, _ = setup
    stream = wisdm.parse_raw(*wisdm.read_raw_text(fixture.path))
    np.testing.assert_array_equal(stream["user"], fixture.user)
    np.testing.assert_array_equal(stream["timestamp"], fixture.timestamp)
    np.testing.assert_array_equal(stream["acc"], fixture.acc.astype(np.float32))
    assert [ALPHABETICAL[a] for a in stream["activity"]] == fixture.activity
    assert stream["dropped_empty_field"] == fixture.dropped_empty_field == 1


def test_parse_raw_quirks_by_hand():
    text = (
        "33,Jogging,49105962326000,-0.6946377,12.680544,0.50395286;\n"
        "33,Jogging,49106062271000,5.012288,11.264028,0.95342433;33,Jogging,49106112167000,4.9,10.8,-0.08;\n"
        "33,Jogging,49106222305000,-0.61,18.49,3.02,;\n"
        "\n"
        "33,Jogging,49106332290000,-1.18,12.1,;\n"
        "19, Sitting, 131623531465000, 8.88, -1.33, 1.61;\r\n"
        "20,Walking,0,0,0,0.0;\n"
        "\n"
    )
    stream = wisdm.parse_raw(text, "raw.txt")
    assert stream["user"].tolist() == [33, 33, 33, 33, 19, 20]
    assert [ALPHABETICAL[a] for a in stream["activity"]] == ["Jogging"] * 4 + ["Sitting", "Walking"]
    assert stream["timestamp"].tolist() == [
        49105962326000,
        49106062271000,
        49106112167000,
        49106222305000,
        131623531465000,
        0,
    ]
    np.testing.assert_array_equal(stream["acc"][2], np.float32([4.9, 10.8, -0.08]))
    np.testing.assert_array_equal(stream["acc"][3], np.float32([-0.61, 18.49, 3.02]))
    np.testing.assert_array_equal(stream["acc"][4], np.float32([8.88, -1.33, 1.61]))
    assert stream["dropped_empty_field"] == 1


@pytest.mark.parametrize(
    "line, problem",
    [
        ("33,Jogging,abc,1.0,2.0,3.0;", "not a number"),
        ("33,Jogging,49106332290000,1.0;", "expected 6 comma-separated fields"),
        ("33,Swimming,49106332290000,1.0,2.0,3.0;", "unknown activity"),
    ],
)
def test_malformed_record_names_file_and_line(tmp_path, line, problem):
    fixture = write_wisdm_tar(tmp_path / "archives", malformed=line)
    with pytest.raises(DatasetError, match=problem) as info:
        wisdm.load_wisdm(data_dir=tmp_path / "data", archives=fixture.path.parent, download=False)
    assert f"WISDM_ar_v1.1_raw.txt line {fixture.bad_line}:" in str(info.value)


def test_windows_follow_runs_exactly(setup):
    fixture, _, _ = setup
    ds = _load(setup, standardize=False)
    ref_x, ref_y, ref_user = reference_windows(fixture, 80, 40)
    x = np.concatenate([ds["train"].x, ds["test"].x])
    y = np.concatenate([ds["train"].y, ds["test"].y])
    user = np.concatenate([ds["train"].extras["user"], ds["test"].extras["user"]])
    train_first = np.argsort(ref_user > 28, kind="stable")  # loader lists train windows first
    np.testing.assert_array_equal(x, ref_x[train_first])
    np.testing.assert_array_equal(y, ref_y[train_first])
    np.testing.assert_array_equal(user, ref_user[train_first])
    assert ds.input_shape == (80, 3) and x.dtype == np.float32 and y.dtype == np.int32
    assert ds.class_names == tuple(ALPHABETICAL)


def test_split_by_user_without_leakage(setup):
    ds = _load(setup)
    train_users = set(ds["train"].extras["user"].tolist())
    test_users = set(ds["test"].extras["user"].tolist())
    assert train_users == {1, 2, 7} and test_users == {29, 33, 36}
    assert ds.metadata["train_users"] == (1, 2, 7) and ds.metadata["test_users"] == (29, 33, 36)


def test_standardization_uses_train_windows_only(setup):
    fixture, _, _ = setup
    raw = _load(setup, standardize=False)
    ds = _load(setup)
    ref_x, _, ref_user = reference_windows(fixture, 80, 40)
    train = ref_x[ref_user <= 28].astype(np.float64)
    mean = train.reshape(-1, 3).mean(axis=0)
    std = train.reshape(-1, 3).std(axis=0)
    np.testing.assert_allclose(ds.metadata["mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(ds.metadata["std"], std, rtol=1e-12)
    for split in ("train", "test"):
        np.testing.assert_allclose(ds[split].x, (raw[split].x - mean) / std, rtol=1e-5, atol=1e-6)
    assert abs(ds["train"].x.mean()) < 1e-5 and abs(ds["test"].x.mean()) > 1e-3


def test_window_step_and_users_change_without_reprepare(setup):
    fixture, _, _ = setup
    _load(setup)  # ensure prepared
    ds = _load(setup, window=50, step=25, train_users=[1, 29], standardize=False)
    assert ds.metadata["reused_cache"] is True
    ref_x, ref_y, ref_user = reference_windows(fixture, 50, 25)
    is_train = np.isin(ref_user, [1, 29])
    np.testing.assert_array_equal(ds["train"].x, ref_x[is_train])
    np.testing.assert_array_equal(ds["test"].y, ref_y[~is_train])
    assert set(ds["train"].extras["user"].tolist()) == {1, 29}


def test_zero_timestamp_records_kept_or_dropped(setup):
    fixture, _, _ = setup
    zero = fixture.timestamp == 0
    assert zero.sum() == 1
    kept = _load(setup, standardize=False)
    assert kept.metadata["zero_timestamp_records"] == 1
    assert kept.metadata["dropped_records"] == {"empty_field": 1, "zero_timestamp": 0}
    dropped = _load(setup, standardize=False, drop_zero_timestamps=True)
    assert dropped.metadata["dropped_records"] == {"empty_field": 1, "zero_timestamp": 1}
    ref_x, _, ref_user = reference_windows(fixture, 80, 40, keep=~zero)
    np.testing.assert_array_equal(dropped["train"].x, ref_x[ref_user <= 28])


def test_bad_arguments():
    with pytest.raises(ValueError, match="window"):
        wisdm.load_wisdm(window=0, download=False)
    with pytest.raises(ValueError, match="train_users"):
        wisdm.load_wisdm(train_users=[], download=False)


def test_split_without_windows_is_an_error(setup):
    with pytest.raises(ValueError, match="test split without windows"):
        _load(setup, train_users=36)


def test_missing_archive_without_download(tmp_path):
    with pytest.raises(DatasetError, match="download=False") as info:
        wisdm.load_wisdm(data_dir=tmp_path / "data", archives=tmp_path, download=False)
    assert FILENAME in str(info.value)


def test_corrupt_archive(tmp_path):
    path = write_wisdm_tar(tmp_path / "archives").path
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DatasetError, match="corrupt"):
        wisdm.load_wisdm(data_dir=tmp_path / "data", archives=path.parent, download=False)


def test_segment_starts_by_hand():
    run_id = np.array([0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2])
    # run 0: [0,5) -> starts 0, 2; run 1: [5,8) -> 5; run 2: [8,15) -> 8, 10, 12
    assert wisdm.segment_starts(run_id, 3, 2).tolist() == [0, 2, 5, 8, 10, 12]
    assert wisdm.segment_starts(run_id, 6, 1).tolist() == [8, 9]
    assert wisdm.segment_starts(run_id[:2], 3, 1).tolist() == []
