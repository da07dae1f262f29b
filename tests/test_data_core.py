"""Tests of the data core: archive checksums/downloads/extraction, Split/ArrayDataset, TFDS glue."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from conv1dx.data import archives, tfds_io
from conv1dx.data.archives import ArchiveSpec, DatasetError, resolve_archive, safe_extract
from conv1dx.data.dataset import ArrayDataset, Split

PAYLOAD = b"conv1dx archive payload\n" * 100


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("CONV1DX_ARCHIVES", raising=False)
    monkeypatch.setenv("CONV1DX_DATA_DIR", str(tmp_path / "default_data"))


def _spec(tmp_path, payload=PAYLOAD, **overrides):
    source = tmp_path / "remote" / "thing.bin"
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(payload)
    fields = dict(
        filename="thing.bin",
        url=source.as_uri(),
        sha256=hashlib.sha256(payload).hexdigest(),
        size=len(payload),
    )
    fields.update(overrides)
    return ArchiveSpec(**fields)


# ---------------------------------------------------------------- checksums and resolve_archive


def test_sha256sum_matches_hashlib(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(PAYLOAD * 50_000)  # > 1 MiB: several chunks
    assert archives.sha256sum(path) == hashlib.sha256(PAYLOAD * 50_000).hexdigest()


def test_local_archive_verified_without_network(tmp_path, monkeypatch):
    spec = _spec(tmp_path, url="https://example.invalid/thing.bin")
    local = tmp_path / "arch"
    local.mkdir()
    (local / "thing.bin").write_bytes(PAYLOAD)
    monkeypatch.setattr(archives.urllib.request, "urlopen", _no_network)
    assert resolve_archive(spec, local) == local / "thing.bin"


def _no_network(*args, **kwargs):
    raise AssertionError("the network must not be touched")


def test_local_archive_checksum_mismatch(tmp_path):
    spec = _spec(tmp_path)
    local = tmp_path / "arch"
    local.mkdir()
    (local / "thing.bin").write_bytes(PAYLOAD[:-1] + b"X")  # same size, other content
    with pytest.raises(DatasetError, match="checksum mismatch") as info:
        resolve_archive(spec, local)
    message = str(info.value)
    assert "thing.bin" in message and spec.sha256 in message and "CONV1DX_ARCHIVES" in message


def test_local_archive_truncated(tmp_path):
    spec = _spec(tmp_path)
    local = tmp_path / "arch"
    local.mkdir()
    (local / "thing.bin").write_bytes(PAYLOAD[:10])
    with pytest.raises(DatasetError, match="truncated"):
        resolve_archive(spec, local)


def test_also_accept_second_checksum(tmp_path):
    other = b"a repack of the same data"
    spec = _spec(tmp_path, also_accept=((len(other), hashlib.sha256(other).hexdigest()),))
    local = tmp_path / "arch"
    local.mkdir()
    (local / "thing.bin").write_bytes(other)
    assert resolve_archive(spec, local) == local / "thing.bin"


def test_missing_archive_with_download_false(tmp_path):
    spec = _spec(tmp_path)
    with pytest.raises(DatasetError, match="download=False") as info:
        resolve_archive(spec, tmp_path / "empty", download=False)
    assert "thing.bin" in str(info.value) and "CONV1DX_ARCHIVES" in str(info.value)


def test_download_file_url_into_archives_dir(tmp_path):
    spec = _spec(tmp_path)
    target_dir = tmp_path / "arch"
    path = resolve_archive(spec, target_dir)
    assert path == target_dir / "thing.bin" and path.read_bytes() == PAYLOAD
    assert os.listdir(target_dir) == ["thing.bin"]  # no temp file left


def test_download_defaults_to_data_dir_downloads(tmp_path):
    spec = _spec(tmp_path)
    path = resolve_archive(spec)
    assert path == tmp_path / "default_data" / "downloads" / "thing.bin"
    # A second call finds it there (no download: the source is gone).
    (tmp_path / "remote" / "thing.bin").unlink()
    assert resolve_archive(spec) == path


def test_download_checksum_mismatch_leaves_nothing(tmp_path):
    spec = _spec(tmp_path, sha256="0" * 64)
    target_dir = tmp_path / "arch"
    with pytest.raises(DatasetError, match="checksum mismatch") as info:
        resolve_archive(spec, target_dir)
    assert "0" * 64 in str(info.value) and spec.url in str(info.value)
    assert os.listdir(target_dir) == []


class _FakeResponse(io.BytesIO):
    def __init__(self, data: bytes, announced: int):
        super().__init__(data)
        self.headers = {"Content-Length": str(announced)}


def test_download_truncated_by_server(tmp_path, monkeypatch):
    spec = _spec(tmp_path, sha256=None, size=None, url="https://example.invalid/thing.bin")
    fake = _FakeResponse(PAYLOAD[:100], announced=len(PAYLOAD))
    monkeypatch.setattr(archives.urllib.request, "urlopen", lambda url, timeout: fake)
    with pytest.raises(DatasetError, match="truncated"):
        resolve_archive(spec, tmp_path / "arch")
    assert os.listdir(tmp_path / "arch") == []


def test_download_without_network(tmp_path, monkeypatch):
    def offline(url, timeout):
        raise urllib.error.URLError("Name or service not known")

    spec = _spec(tmp_path, url="https://example.invalid/thing.bin")
    monkeypatch.setattr(archives.urllib.request, "urlopen", offline)
    with pytest.raises(DatasetError, match="place thing.bin in \\$CONV1DX_ARCHIVES") as info:
        resolve_archive(spec, tmp_path / "arch")
    assert spec.sha256 in str(info.value)


def test_env_vars_and_overrides(tmp_path, monkeypatch):
    assert archives.archives_dir() is None
    monkeypatch.setenv("CONV1DX_ARCHIVES", str(tmp_path / "env_arch"))
    assert archives.archives_dir() == tmp_path / "env_arch"
    assert archives.archives_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert archives.data_dir() == tmp_path / "default_data"
    assert archives.data_dir(tmp_path / "d") == tmp_path / "d"
    monkeypatch.delenv("CONV1DX_DATA_DIR")
    from tensorflow_datasets.core import constants

    assert archives.data_dir() == archives.Path(constants.DATA_DIR).expanduser()


def test_env_archives_used_by_resolve(tmp_path, monkeypatch):
    spec = _spec(tmp_path)
    (tmp_path / "env_arch").mkdir()
    (tmp_path / "env_arch" / "thing.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("CONV1DX_ARCHIVES", str(tmp_path / "env_arch"))
    assert resolve_archive(spec, download=False) == tmp_path / "env_arch" / "thing.bin"


# ---------------------------------------------------------------- safe_extract


def _zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _tar(path, members: dict[str, bytes], symlinks: dict[str, str] | None = None):
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return path


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_safe_extract_roundtrip(tmp_path, kind):
    members = {"d/a.txt": b"alpha", "d/sub/b.txt": b"beta"}
    archive = tmp_path / f"a.{kind}"
    (_zip if kind == "zip" else _tar)(archive, members)
    dest = safe_extract(archive, tmp_path / "out")
    assert dest == tmp_path / "out"
    for name, data in members.items():
        assert (dest / name).read_bytes() == data


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
@pytest.mark.parametrize("evil", ["../evil.txt", "d/../../evil.txt", "/tmp/conv1dx_evil_abs.txt"])
def test_safe_extract_refuses_escaping_members(tmp_path, kind, evil):
    archive = tmp_path / f"a.{kind}"
    (_zip if kind == "zip" else _tar)(archive, {"ok.txt": b"ok", evil: b"evil"})
    with pytest.raises(DatasetError, match="refusing"):
        safe_extract(archive, tmp_path / "x" / "out")
    assert not (tmp_path / "x" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "x" / "out").exists()  # nothing half-extracted
    assert os.listdir(tmp_path / "x") == []


def test_safe_extract_refuses_symlink_outside(tmp_path):
    archive = _tar(tmp_path / "a.tar.gz", {"ok.txt": b"ok"}, symlinks={"link": "../../etc/passwd"})
    with pytest.raises(DatasetError, match="refusing"):
        safe_extract(archive, tmp_path / "out")


def test_safe_extract_allows_symlink_inside(tmp_path):
    archive = _tar(tmp_path / "a.tar.gz", {"d/ok.txt": b"ok"}, symlinks={"d/link": "ok.txt"})
    dest = safe_extract(archive, tmp_path / "out")
    assert (dest / "d" / "link").read_bytes() == b"ok"


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_safe_extract_truncated_archive(tmp_path, kind):
    archive = tmp_path / f"a.{kind}"
    members = {f"f{i}.bin": os.urandom(20_000) for i in range(5)}
    (_zip if kind == "zip" else _tar)(archive, members)
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="corrupt or truncated") as info:
        safe_extract(archive, tmp_path / "out")
    assert str(archive) in str(info.value)
    assert not (tmp_path / "out").exists()


def test_safe_extract_garbage_zip(tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(b"this is not a zip file at all")
    with pytest.raises(DatasetError, match="corrupt or truncated"):
        safe_extract(archive, tmp_path / "out")


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
