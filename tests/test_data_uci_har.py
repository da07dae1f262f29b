"""UCI HAR loader on a fixture archive in the original layout (tests/data_fixtures/uci_har.py)."""

import zipfile

import numpy as np
import pytest

from conv1dx.data import uci_har
from conv1dx.data.archives import DatasetError
from tests.data_fixtures.uci_har import FILENAME, ROOT, write_uci_har_zip

# The HAR article's channel order (Brownlee's load_dataset_group), written out independently here.
ARTICLE_ORDER = [
    "total_acc_x", "total_acc_y", "total_acc_z",
    "body_acc_x", "body_acc_y", "body_acc_z",
    "body_gyro_x", "body_gyro_y", "body_gyro_z",
]  # fmt: skip


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    archives = tmp_path_factory.mktemp("archives")
    data_dir = tmp_path_factory.mktemp("data")
    fixture = write_uci_har_zip(archives)
    ds = uci_har.load_uci_har(data_dir=data_dir, archives=archives, download=False)
    return fixture, ds, archives, data_dir


def test_shapes_dtypes_and_splits(prepared):
    fixture, ds, _, _ = prepared
    assert ds.name == "uci_har" and ds.task == "classification"
    assert set(ds.splits) == {"train", "test"}
    assert ds.input_shape == (128, 9)
    for split in ("train", "test"):
        n = len(fixture.y[split])
        assert ds[split].x.shape == (n, 128, 9) and ds[split].x.dtype == np.float32
        assert ds[split].y.shape == (n,) and ds[split].y.dtype == np.int32
        assert ds[split].extras["subject"].dtype == np.int32


def test_channels_in_article_order_and_values(prepared):
    fixture, ds, _, _ = prepared
    assert ds.metadata["channels"] == tuple(ARTICLE_ORDER)
    for split in ("train", "test"):
        for c, name in enumerate(ARTICLE_ORDER):
            written = fixture.signals[split][name].astype(np.float32)
            np.testing.assert_array_equal(ds[split].x[:, :, c], written, err_msg=f"{split} {name}")


def test_labels_zero_based_with_activity_names(prepared):
    fixture, ds, _, _ = prepared
    assert ds.num_classes == 6
    assert ds.class_names == (
        "WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING",
    )  # fmt: skip
    for split in ("train", "test"):
        np.testing.assert_array_equal(ds[split].y, fixture.y[split] - 1)
    assert set(ds["train"].y.tolist()) == set(range(6))


def test_subjects_kept_in_order_and_disjoint(prepared):
    fixture, ds, _, _ = prepared
    for split in ("train", "test"):
        np.testing.assert_array_equal(ds[split].extras["subject"], fixture.subject[split])
    train = set(ds["train"].extras["subject"].tolist())
    test = set(ds["test"].extras["subject"].tolist())
    assert train == {1, 3, 5} and test == {2, 4}


def test_second_load_reuses_prepared_copy_without_archive(prepared, tmp_path):
    fixture, first, _, data_dir = prepared
    assert first.metadata["reused_cache"] is False
    empty = tmp_path / "no_archives"
    empty.mkdir()
    again = uci_har.load_uci_har(data_dir=data_dir, archives=empty, download=False)
    assert again.metadata["reused_cache"] is True
    np.testing.assert_array_equal(again["test"].x, first["test"].x)


def test_macosx_junk_is_ignored(prepared):
    fixture, _, _, _ = prepared
    names = zipfile.ZipFile(fixture.path).namelist()
    assert any(n.startswith("__MACOSX/") and n.endswith("._activity_labels.txt") for n in names)
    assert uci_har.find_root(names, fixture.path) == ROOT


def test_missing_archive_without_download(tmp_path):
    with pytest.raises(DatasetError, match="download=False") as info:
        uci_har.load_uci_har(data_dir=tmp_path / "data", archives=tmp_path, download=False)
    assert FILENAME in str(info.value) and "CONV1DX_ARCHIVES" in str(info.value)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_zip(tmp_path, damage):
    path = write_uci_har_zip(tmp_path / "archives").path
    data = path.read_bytes()
    path.write_bytes(b"not a zip at all" * 100 if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(DatasetError, match="corrupt"):
        uci_har.load_uci_har(data_dir=tmp_path / "data", archives=path.parent, download=False)


def _rewrite(path, replace):
    """Copy the zip at ``path`` with members changed by ``replace(name, data) -> data or None``."""
    with zipfile.ZipFile(path) as zf:
        members = [(info.filename, zf.read(info)) for info in zf.infolist()]
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            data = replace(name, data)
            if data is not None:
                zf.writestr(name, data)


def test_missing_member_named(tmp_path):
    path = write_uci_har_zip(tmp_path).path
    gone = ROOT + "test/Inertial Signals/body_gyro_y_test.txt"
    _rewrite(path, lambda name, data: None if name == gone else data)
    with pytest.raises(DatasetError, match="body_gyro_y_test.txt"):
        uci_har.read_archive(path)


def test_ragged_signal_row_named(tmp_path):
    path = write_uci_har_zip(tmp_path).path
    bad = ROOT + "train/Inertial Signals/body_acc_z_train.txt"

    def drop_last_value(name, data):
        if name != bad:
            return data
        lines = data.decode().splitlines()
        lines[2] = lines[2][:-16]
        return ("\n".join(lines) + "\n").encode()

    _rewrite(path, drop_last_value)
    with pytest.raises(DatasetError, match="body_acc_z_train.txt"):
        uci_har.read_archive(path)


def test_row_count_mismatch(tmp_path):
    path = write_uci_har_zip(tmp_path).path
    bad = ROOT + "test/y_test.txt"
    _rewrite(path, lambda name, data: data + b"3\n" if name == bad else data)
    with pytest.raises(DatasetError, match="rows"):
        uci_har.read_archive(path)


def test_number_format_parsed_exactly():
    text = "  2.8858451e-001 -2.0294171e-002\n -1.0000000e+000  0.0000000e+000\n"
    table = uci_har.parse_table(text, "X", columns=2)
    np.testing.assert_array_equal(table, [[0.28858451, -0.020294171], [-1.0, 0.0]])


def test_newer_uci_download_wrapping_the_zip_is_accepted(tmp_path):
    fixture = write_uci_har_zip(tmp_path / "inner")
    outer = tmp_path / "human+activity+recognition+using+smartphones.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.write(fixture.path, FILENAME)
        zf.writestr("UCI HAR Dataset.names", "Human Activity Recognition Using Smartphones\n")
    arrays = uci_har.read_archive(outer)
    np.testing.assert_array_equal(arrays["test"]["y"], fixture.y["test"] - 1)
    np.testing.assert_array_equal(
        arrays["train"]["x"][:, :, 6], fixture.signals["train"]["body_gyro_x"].astype(np.float32)
    )
