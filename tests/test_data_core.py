"""Data core: Split/ArrayDataset and the TFDS glue (archives are in test_data_archives.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from conv1dx.data import tfds_io
from conv1dx.data.archives import DatasetError
from conv1dx.data.dataset import ArrayDataset, Split


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("CONV1DX_ARCHIVES", raising=False)
    monkeypatch.setenv("CONV1DX_DATA_DIR", str(tmp_path / "default_data"))


# ---------------------------------------------------------------- Split and ArrayDataset


def test_split_mask_from_lengths():
    split = Split(x=np.zeros((3, 5, 2), np.float32), y=np.zeros(3, np.int32), lengths=[5, 2, 0])
    expected = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(split.mask, expected)
    assert split.lengths.dtype == np.int32 and len(split) == 3
    assert Split(x=np.zeros((2, 4, 1)), y=np.zeros(2)).mask.all()


def test_split_validation():
    with pytest.raises(ValueError, match="y has 2"):
        Split(x=np.zeros((3, 4, 1)), y=np.zeros(2))
    with pytest.raises(ValueError, match="lengths must lie"):
        Split(x=np.zeros((2, 4, 1)), y=np.zeros(2), lengths=[5, 1])
    with pytest.raises(ValueError, match="extras"):
        Split(x=np.zeros((2, 4, 1)), y=np.zeros(2), extras={"subject": np.zeros(3)})


def test_split_subset_keeps_rows_aligned():
    split = Split(
        x=np.arange(12.0).reshape(4, 3, 1),
        y=np.arange(4),
        lengths=[3, 2, 1, 3],
        extras={"subject": np.array([10, 11, 12, 13])},
    )
    sub = split.subset(np.array([3, 1]))
    np.testing.assert_array_equal(sub.y, [3, 1])
    np.testing.assert_array_equal(sub.lengths, [3, 2])
    np.testing.assert_array_equal(sub.extras["subject"], [13, 11])
    np.testing.assert_array_equal(sub.x[:, :, 0], [[9, 10, 11], [3, 4, 5]])


def test_array_dataset_properties_and_describe():
    train = Split(x=np.zeros((6, 20, 3), np.float32), y=np.array([0, 1, 1, 2, 2, 2], np.int32))
    test = Split(x=np.zeros((2, 20, 3), np.float32), y=np.array([2, 2], np.int32))
    ds = ArrayDataset(
        "demo", {"train": train, "test": test}, num_classes=3, class_names=("a", "b", "c")
    )
    assert ds.input_shape == (20, 3) and ds.seq_len == 20 and ds.num_channels == 3
    text = ds.describe()
    assert "train: 6 examples" in text and "a=1, b=2, c=3" in text and "a=0, b=0, c=2" in text
    tokens = ArrayDataset("tok", {"train": Split(np.zeros((2, 7), np.int32), np.zeros(2))}, 2)
    assert tokens.input_shape == (7,) and tokens.num_channels == 1
    with pytest.raises(ValueError, match="disagree"):
        ArrayDataset("bad", {"a": train, "b": Split(np.zeros((1, 9, 3)), np.zeros(1))}, 3)
    with pytest.raises(ValueError, match="task"):
        ArrayDataset("bad", {"a": train}, 3, task="ranking")
    with pytest.raises(KeyError, match="no split 'valid'"):
        ds["valid"]


# ---------------------------------------------------------------- TFDS glue (no TensorFlow)


def test_tensorflow_is_not_needed():
    import importlib.util

    assert importlib.util.find_spec("tensorflow") is None, "these tests prove TF-free operation"


class _FixedBuilder(tfds_io.ArrayRecordBuilder, skip_registration=True):
    name = "conv1dx_test_fixed"
    generated = []  # test-only counter of generation runs

    def _features(self):
        return tfds.features.FeaturesDict(
            {
                "x": tfds.features.Tensor(shape=(4, 2), dtype=np.float32),
                "ids": tfds.features.Tensor(shape=(3,), dtype=np.int32),
                "label": tfds.features.ClassLabel(names=["a", "b", "c"]),
                "weight": tfds.features.Scalar(dtype=np.float64),
            }
        )

    def _split_generators(self, dl_manager):
        type(self).generated.append(1)
        self.info.metadata["note"] = "made in _split_generators"
        return {"train": self._generate_examples(7), "test": self._generate_examples(2)}

    def _generate_examples(self, n):
        rng = np.random.default_rng(n)
        for i in range(n):
            yield (
                i,
                {
                    "x": rng.normal(size=(4, 2)).astype(np.float32),
                    "ids": rng.integers(-5, 10**6, size=3).astype(np.int32),
                    "label": i % 3,
                    "weight": float(rng.normal()),
                },
            )


def test_prepare_once_then_reuse_and_fast_read_matches_tfds_decode(tmp_path):
    _FixedBuilder.generated.clear()
    builder = tfds_io.make_builder(_FixedBuilder, data_dir=tmp_path)
    assert tfds_io.prepare(builder) is False and _FixedBuilder.generated == [1]
    files = sorted(Path(builder.data_path).glob("*.array_record*"))
    assert len(files) == 2
    mtimes = [f.stat().st_mtime_ns for f in files]
    again = tfds_io.make_builder(_FixedBuilder, data_dir=tmp_path)
    assert tfds_io.prepare(again) is True and _FixedBuilder.generated == [1]
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    assert again.info.metadata["note"] == "made in _split_generators"
    assert tfds_io._fixed_numeric_features(again) is not None
    fast = tfds_io.read_split(again, "train")
    examples = list(again.as_data_source("train"))  # TFDS' own per-example decoding
    assert len(examples) == 7
    for key in ("x", "ids", "label", "weight"):
        reference = np.stack([np.asarray(ex[key]) for ex in examples])
        np.testing.assert_array_equal(fast[key], reference, err_msg=key)
    assert fast["x"].dtype == np.float32 and fast["ids"].dtype == np.int32
    np.testing.assert_array_equal(fast["label"], np.arange(7) % 3)  # generation order kept


def test_prepare_race_reuses_the_copy_another_process_finished(tmp_path, monkeypatch):
    builder = tfds_io.make_builder(_FixedBuilder, data_dir=tmp_path)
    other = tfds_io.make_builder(_FixedBuilder, data_dir=tmp_path)

    def lose_the_race(**kwargs):
        other.download_and_prepare(**kwargs)  # the other process renames its folder first
        raise OSError(39, "Directory not empty")  # what our final rename then hits

    monkeypatch.setattr(builder, "download_and_prepare", lose_the_race)
    assert tfds_io.prepare(builder) is True
    np.testing.assert_array_equal(tfds_io.read_split(builder, "test")["label"], [0, 1])


class _RaggedBuilder(tfds_io.ArrayRecordBuilder, skip_registration=True):
    name = "conv1dx_test_ragged"

    def _features(self):
        return tfds.features.FeaturesDict(
            {
                "x": tfds.features.Tensor(
                    shape=(None, None), dtype=np.float32, encoding=tfds.features.Encoding.BYTES
                ),
                "y": tfds.features.Scalar(dtype=np.int32),
            }
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for i in range(4):
            yield i, {"x": np.full((i + 1, 2), i, np.float32), "y": i}


def test_read_split_variable_shapes_fall_back_to_lists(tmp_path):
    builder = tfds_io.make_builder(_RaggedBuilder, data_dir=tmp_path)
    tfds_io.prepare(builder)
    out = tfds_io.read_split(builder, "train")
    assert isinstance(out["x"], list) and [a.shape for a in out["x"]] == [
        (1, 2),
        (2, 2),
        (3, 2),
        (4, 2),
    ]
    np.testing.assert_array_equal(out["y"], [0, 1, 2, 3])


class _FailingBuilder(_RaggedBuilder, skip_registration=True):
    name = "conv1dx_test_failing"

    def _split_generators(self, dl_manager):
        raise DatasetError("source missing")


def test_failed_prepare_leaves_no_folders(tmp_path):
    builder = tfds_io.make_builder(_FailingBuilder, data_dir=tmp_path)
    with pytest.raises(DatasetError, match="source missing"):
        tfds_io.prepare(builder)
    assert not (tmp_path / "conv1dx_test_failing").exists()
