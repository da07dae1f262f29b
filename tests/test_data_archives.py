"""Raw archives: checksums, local lookup, downloads (file:// URLs, no network), safe extraction."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import urllib.error
import zipfile

import pytest

from conv1dx.data import archives
from conv1dx.data.archives import ArchiveSpec, DatasetError, resolve_archive, safe_extract

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
