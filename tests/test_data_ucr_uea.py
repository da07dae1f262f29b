"""Tests of the .ts parser and UCR/UEA loader (hand-written files, packaged and shared sets)."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conv1dx.data import ucr_uea
from conv1dx.data.archives import DatasetError
from conv1dx.data.ts_format import pad_series, parse_ts
from conv1dx.data.ucr_uea import load_ucr_uea

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"

UNIVARIATE = """# a comment
@problemName Uni
@timeStamps false
@missing false
@univariate true
@equalLength true
@seriesLength 4
@classLabel true b a
@data
1,2,3,4:a
5,6,7,8:b
0.5,-1e-3,2.5E2,7:a
"""

MULTIVARIATE = """@problemName Multi
@univariate false
@dimensions 2
@equalLength true
@seriesLength 3
@classLabel true x y
@data
1,2,3:4,5,6:y
7,8,9:10,11,12:x
"""

VARIABLE = """@problemName Var
@univariate false
@dimensions 2
@equalLength false
@missing true
@classLabel true 1 2 3
@data
1,2:3,4:3
1,?,3,4:5,6,7,NaN:1
9:9:2
"""


def test_parse_univariate_with_header_label_order():
    data = parse_ts(UNIVARIATE)
    assert data.header.problem_name == "Uni" and data.header.class_labels == ("b", "a")
    assert data.header.series_length == 4 and data.header.equal_length is True
    # Label ids follow the header's order: b -> 0, a -> 1.
    np.testing.assert_array_equal(data.labels, [1, 0, 1])
    assert [s.shape for s in data.series] == [(4, 1)] * 3
    np.testing.assert_allclose(data.series[2][:, 0], [0.5, -0.001, 250.0, 7.0])
    assert data.series[0].dtype == np.float32


def test_parse_multivariate_dims_become_channels():
    data = parse_ts(MULTIVARIATE)
    np.testing.assert_array_equal(data.series[0], [[1, 4], [2, 5], [3, 6]])
    np.testing.assert_array_equal(data.series[1], [[7, 10], [8, 11], [9, 12]])
    np.testing.assert_array_equal(data.labels, [1, 0])


def test_parse_variable_length_and_missing_values():
    data = parse_ts(VARIABLE)
    assert [s.shape for s in data.series] == [(2, 2), (4, 2), (1, 2)]
    assert np.isnan(data.series[1][1, 0]) and np.isnan(data.series[1][3, 1])
    np.testing.assert_array_equal(data.labels, [2, 0, 1])
    x, lengths = pad_series(data.series)
    assert x.shape == (3, 4, 2)
    np.testing.assert_array_equal(lengths, [2, 4, 1])
    np.testing.assert_array_equal(x[0], [[1, 3], [2, 4], [0, 0], [0, 0]])
    np.testing.assert_array_equal(x[2], [[9, 9], [0, 0], [0, 0], [0, 0]])


def _line_of(text: str, needle: str) -> int:
    """1-based number of the line equal to needle (independent of the parser)."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if line == needle)


@pytest.mark.parametrize(
    "bad_line, problem",
    [
        ("1,2,x,4:a", "not a number"),
        ("1,2,3,4:c", "class label 'c'"),
        ("9,9,9,9", "no ':'"),
        ("1,2,3:4,5,6:a", "2 dimensions"),
        ("1,2,3:a", "@seriesLength 4"),
        ("@@:a", "not a number"),
        (":a", "no values"),
    ],
)
def test_malformed_line_names_file_and_line(bad_line, problem):
    text = UNIVARIATE.replace("5,6,7,8:b", bad_line)
    with pytest.raises(DatasetError, match=problem) as info:
        parse_ts(text, source="bad.ts")
    assert f"bad.ts, line {_line_of(text, bad_line)}" in str(info.value)


def test_header_problems():
    with pytest.raises(DatasetError, match="no @data"):
        parse_ts("@problemName X\n@classLabel true a\n")
    with pytest.raises(DatasetError, match="classLabel"):
        parse_ts("@problemName X\n@data\n1,2:a\n")
    with pytest.raises(DatasetError, match="timeStamps"):
        parse_ts("@timeStamps true\n@classLabel true a\n@data\n(0,1):a\n")
    with pytest.raises(DatasetError, match="line 1"):
        parse_ts("1,2:a\n")
    with pytest.raises(DatasetError, match="no cases"):
        parse_ts("@classLabel true a\n@data\n")


def test_pad_series_rejects_too_short_length():
    with pytest.raises(ValueError, match="more than length"):
        pad_series([np.zeros((5, 1), np.float32)], 3)


# ---------------------------------------------------------------- loader on hand-written files


def _write_pair(folder: Path, name: str, train: str, test: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}_TRAIN.ts").write_text(train)
    (folder / f"{name}_TEST.ts").write_text(test)


def test_load_variable_length_with_missing(tmp_path):
    test_text = VARIABLE.replace("@classLabel true 1 2 3", "@classLabel true 3 2 1")
    _write_pair(tmp_path / "arch", "Var", VARIABLE, test_text)
    ds = load_ucr_uea("Var", data_dir=tmp_path / "data", archives=tmp_path / "arch")
    train, test = ds["train"], ds["test"]
    assert ds.input_shape == (4, 2) and ds.num_classes == 3 and ds.class_names == ("1", "2", "3")
    np.testing.assert_array_equal(train.lengths, [2, 4, 1])
    np.testing.assert_array_equal(train.mask.sum(1), [2, 4, 1])
    # Labels are the train header's ids; the test file's different header order is remapped by name.
    np.testing.assert_array_equal(train.y, [2, 0, 1])
    np.testing.assert_array_equal(test.y, [2, 0, 1])
    assert ds.metadata["num_missing"] == {"train": 2, "test": 2}
    assert not np.isnan(train.x).any() and train.x[1, 1, 0] == 0.0
    kept = load_ucr_uea(
        "Var", fill_missing=None, data_dir=tmp_path / "data", archives=tmp_path / "arch"
    )
    assert np.isnan(kept["train"].x[1, 1, 0]) and kept.metadata["reused_cache"]


def test_load_equal_length_has_no_lengths_and_reuses_cache(tmp_path, monkeypatch):
    _write_pair(tmp_path / "arch" / "Uni", "Uni", UNIVARIATE, UNIVARIATE)
    first = load_ucr_uea("Uni", data_dir=tmp_path / "data", archives=tmp_path / "arch")
    assert first["train"].lengths is None and first["train"].x.shape == (3, 4, 1)
    assert first.metadata["reused_cache"] is False

    def must_not_run(self, *args):
        raise AssertionError("a prepared dataset must not be regenerated")

    monkeypatch.setattr(ucr_uea.UcrUeaBuilder, "_split_generators", must_not_run)
    second = load_ucr_uea("Uni", data_dir=tmp_path / "data", archives=tmp_path / "arch")
    assert second.metadata["reused_cache"] is True
    np.testing.assert_array_equal(second["test"].x, first["test"].x)


def test_load_from_zip_and_file_url_download(tmp_path, monkeypatch):
    remote = tmp_path / "remote"
    remote.mkdir()
    with zipfile.ZipFile(remote / "Multi.zip", "w") as zf:
        zf.writestr("Multi/Multi_TRAIN.ts", MULTIVARIATE)
        zf.writestr("Multi/Multi_TEST.ts", MULTIVARIATE)
    monkeypatch.setattr(ucr_uea, "URL", remote.as_uri() + "/{name}.zip")
    with pytest.raises(DatasetError, match="download=False"):
        load_ucr_uea(
            "Multi", data_dir=tmp_path / "data", archives=tmp_path / "arch", download=False
        )
    ds = load_ucr_uea("Multi", data_dir=tmp_path / "data", archives=tmp_path / "arch")
    assert (tmp_path / "arch" / "Multi.zip").is_file()
    np.testing.assert_array_equal(ds["train"].x[0], [[1, 4], [2, 5], [3, 6]])


def test_bad_names_and_missing_dataset(tmp_path):
    with pytest.raises(ValueError, match="dataset name"):
        load_ucr_uea("../etc", data_dir=tmp_path)
    with pytest.raises(DatasetError, match="Nope_TRAIN.ts"):
        load_ucr_uea("Nope", data_dir=tmp_path / "d", archives=tmp_path / "a", download=False)
    assert not (tmp_path / "d" / "conv1dx_ucr_uea" / "Nope").exists()


def test_packaged_basic_motions_works_offline(tmp_path, monkeypatch):
    monkeypatch.delenv("CONV1DX_ARCHIVES", raising=False)
    ds = load_ucr_uea("BasicMotions", data_dir=tmp_path, download=False)
    assert ds.metadata["source"].endswith("resources/BasicMotions")
    assert ds.input_shape == (100, 6) and ds.class_names == (
        "Standing",
        "Running",
        "Walking",
        "Badminton",
    )
    assert len(ds["train"]) == 40 and len(ds["test"]) == 40
    readme = Path(ucr_uea.RESOURCES, "BasicMotions", "README.md").read_text()
    assert "arXiv:1811.00075" in readme
    # The shipped files are byte-identical to the MANIFEST's checksums.
    for split, digest in (
        ("TRAIN", "8dc43cc6306cb679c888c01e26f91772ac4441a916da43bac8b79734a538b9d6"),
        ("TEST", "79213102bc6fca1a398ad98ce1185dff0208fa3d1465e687f48288946b0ff8dc"),
    ):
        data = Path(ucr_uea.RESOURCES, "BasicMotions", f"BasicMotions_{split}.ts").read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest


# ------------------------------------------------------- the shared UCR/UEA sets (MANIFEST.md)

# name: (train cases, test cases, dims, length or None if variable, classes), from MANIFEST.md.
MANIFEST = {
    "ACSF1": (100, 100, 1, 1460, 10),
    "ArrowHead": (36, 175, 1, 251, 3),
    "BasicMotions": (40, 40, 6, 100, 4),
    "GunPoint": (50, 150, 1, 150, 2),
    "ItalyPowerDemand": (67, 1029, 1, 24, 2),
    "JapaneseVowels": (270, 370, 12, None, 9),
    "OSULeaf": (200, 242, 1, 427, 6),
    "PickupGestureWiimoteZ": (50, 50, 1, None, 10),
}


@pytest.mark.real_data
@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_shared_ucr_uea_sets_match_manifest(name, tmp_path_factory):
    folder = SHARED / "ucr_uea"
    if not folder.is_dir():
        pytest.skip(f"shared datasets folder {folder} is absent")
    n_train, n_test, dims, length, classes = MANIFEST[name]
    data_dir = tmp_path_factory.getbasetemp() / "ucr_shared_data"
    ds = load_ucr_uea(name, data_dir=data_dir, archives=folder, download=False)
    assert (len(ds["train"]), len(ds["test"])) == (n_train, n_test)
    assert ds.num_channels == dims and ds.num_classes == classes
    for split in ds.splits.values():
        assert split.x.dtype == np.float32 and split.y.dtype == np.int32
        assert set(np.unique(split.y)) <= set(range(classes))
        assert np.isfinite(split.x).all()
    if length is not None:
        assert ds.seq_len == length and ds["train"].lengths is None
    else:
        lengths = np.concatenate([ds["train"].lengths, ds["test"].lengths])
        assert lengths.max() == ds.seq_len and lengths.min() < lengths.max()
        # Padding really is zero beyond each length.
        assert not ds["train"].x[~ds["train"].mask].any()
