"""Find, download (checksum-verified) and safely extract the raw archives datasets come from.

Where things live:
  * archives (raw downloads such as ``aclImdb_v1.tar.gz``): ``archives_dir()`` = the explicit
    argument, else ``$CONV1DX_ARCHIVES``, else ``None`` (then downloads go to
    ``data_dir()/downloads``);
  * prepared datasets (TFDS ArrayRecord files): ``data_dir()`` = the explicit argument, else
    ``$CONV1DX_DATA_DIR``, else the TFDS default (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).

Every problem raises :class:`DatasetError` with one message naming the file, what was expected and
how to fix it. Nothing here touches the network unless an archive is missing and ``download=True``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

ARCHIVES_ENV = "CONV1DX_ARCHIVES"
DATA_DIR_ENV = "CONV1DX_DATA_DIR"
_CHUNK = 1 << 20


class DatasetError(RuntimeError):
    """A dataset file is missing, corrupt, unsafe or malformed; the message says how to fix it."""


@dataclass(frozen=True)
class ArchiveSpec:
    """One raw archive: its file name, where to download it, and its expected size and SHA-256.

    ``sha256``/``size`` of ``None`` mean "unknown, not checked". ``also_accept`` lists further valid
    ``(size, sha256)`` pairs, e.g. a repack of the same data with a different checksum.
    """

    filename: str
    url: str
    sha256: str | None = None
    size: int | None = None
    also_accept: tuple[tuple[int | None, str], ...] = ()

    def accepted(self) -> tuple[tuple[int | None, str | None], ...]:
        """All valid ``(size, sha256)`` pairs, the primary one first."""
        return ((self.size, self.sha256),) + tuple(self.also_accept)

    def expectation(self) -> str:
        """Human-readable description of the accepted sizes/checksums, for error messages."""
        parts = []
        for size, digest in self.accepted():
            if size is None and digest is None:
                return "any content (no checksum is known)"
            size_text = f"{size:,} bytes" if size is not None else "any size"
            parts.append(f"{size_text}, sha256 {digest or 'unknown'}")
        return " or ".join(parts)


def archives_dir(override: str | os.PathLike | None = None) -> Path | None:
    """Folder of downloaded archives: ``override``, else ``$CONV1DX_ARCHIVES``, else None."""
    if override is not None and str(override) != "":
        return Path(override).expanduser()
    env = os.environ.get(ARCHIVES_ENV)
    return Path(env).expanduser() if env else None


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """Prepared datasets folder: ``override``, else ``$CONV1DX_DATA_DIR``, else the TFDS default."""
    if override is not None and str(override) != "":
        return Path(override).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    from tensorflow_datasets.core import constants  # light import; honours $TFDS_DATA_DIR

    return Path(constants.DATA_DIR).expanduser()


def sha256sum(path: str | os.PathLike) -> str:
    """Hex SHA-256 of the file at ``path`` (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fix_hint(spec: ArchiveSpec) -> str:
    return (
        f"download {spec.url} yourself and place {spec.filename} in ${ARCHIVES_ENV} "
        f"(or pass archives=<folder>)"
    )


def _expected(spec: ArchiveSpec) -> str:
    if all(size is None and digest is None for size, digest in spec.accepted()):
        return ""
    return f" (expected {spec.expectation()})"


def verify_archive(path: Path, spec: ArchiveSpec) -> Path:
    """Check ``path`` against ``spec``'s sizes/checksums; return it or raise DatasetError."""
    actual_size = path.stat().st_size
    candidates = [(s, d) for s, d in spec.accepted() if s is None or s == actual_size]
    if not candidates:
        raise DatasetError(
            f"{path}: size is {actual_size:,} bytes but expected {spec.expectation()} "
            f"(truncated or wrong file). Fix: delete it and {_fix_hint(spec)}."
        )
    if all(d is None for _, d in candidates):
        return path
    actual = sha256sum(path)
    if any(d is None or d.lower() == actual for _, d in candidates):
        return path
    raise DatasetError(
        f"{path}: checksum mismatch, sha256 is {actual} but expected {spec.expectation()}. "
        f"Fix: delete it and {_fix_hint(spec)}."
    )


def _download(spec: ArchiveSpec, target: Path) -> Path:
    """Stream ``spec.url`` to a temp file beside ``target``, verify, then rename onto ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{spec.filename}.", suffix=".partial", dir=target.parent
    )
    tmp = Path(tmp_name)
    try:
        try:
            with (
                os.fdopen(fd, "wb") as out,
                urllib.request.urlopen(spec.url, timeout=60) as response,
            ):
                announced = response.headers.get("Content-Length") if response.headers else None
                received = 0
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    received += len(chunk)
        except (urllib.error.URLError, OSError, ValueError) as err:
            raise DatasetError(
                f"{spec.filename}: download from {spec.url} failed ({err}){_expected(spec)}. "
                f"Fix: check the network, or {_fix_hint(spec)}."
            ) from err
        if announced is not None and announced.isdigit() and int(announced) != received:
            raise DatasetError(
                f"{spec.filename}: download from {spec.url} was truncated ({received:,} of "
                f"{int(announced):,} bytes). Fix: retry, or {_fix_hint(spec)}."
            )
        try:
            verify_archive(tmp, spec)
        except DatasetError as err:
            raise DatasetError(
                f"{spec.filename}: downloaded from {spec.url} but {str(err).split(': ', 1)[1]}"
            ) from None
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def resolve_archive(
    spec: ArchiveSpec,
    archives: str | os.PathLike | None = None,
    *,
    download: bool = True,
    data_dir_override: str | os.PathLike | None = None,
) -> Path:
    """Path of a verified copy of ``spec.filename``, downloading it only when no local copy exists.

    Looks in ``archives_dir(archives)`` first (no network). Otherwise downloads ``spec.url`` into
    that folder, or into ``data_dir(data_dir_override)/downloads`` when no archives folder is
    configured. ``download=False`` raises :class:`DatasetError` instead of downloading.
    """
    folder = archives_dir(archives)
    if folder is not None and (folder / spec.filename).is_file():
        return verify_archive(folder / spec.filename, spec)
    fallback = data_dir(data_dir_override) / "downloads"
    if folder is None and (fallback / spec.filename).is_file():
        return verify_archive(fallback / spec.filename, spec)
    where = folder if folder is not None else fallback
    if not download:
        raise DatasetError(
            f"{spec.filename}: not found in {where} and download=False{_expected(spec)}. "
            f"Fix: {_fix_hint(spec)}, or allow download=True."
        )
    return _download(spec, where / spec.filename)


def _check_member_path(name: str, dest: Path, archive: Path) -> Path:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise DatasetError(
            f"{archive}: member {name!r} has an absolute path; refusing to extract. "
            "Fix: the archive is unsafe or corrupt, obtain a clean copy."
        )
    resolved = (dest / name).resolve()
    if resolved != dest and dest not in resolved.parents:
        raise DatasetError(
            f"{archive}: member {name!r} would be written outside {dest}; refusing to extract. "
            "Fix: the archive is unsafe or corrupt, obtain a clean copy."
        )
    return resolved


def _extract_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = _check_member_path(info.filename, dest, archive)
            if stat.S_ISLNK(info.external_attr >> 16):
                link = zf.read(info).decode("utf-8", "replace")
                _check_member_path(str(Path(info.filename).parent / link), dest, archive)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(link, target)
                continue
            zf.extract(info, dest)


def _extract_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive, "r:*") as tf:
        for member in tf:
            _check_member_path(member.name, dest, archive)
            if member.issym() or member.islnk():
                base = Path(member.name).parent if member.issym() else Path()
                _check_member_path(str(base / member.linkname), dest, archive)
            if member.isdev():
                raise DatasetError(f"{archive}: member {member.name!r} is a device file; refusing.")
        tf.extractall(dest, filter="data")


def safe_extract(archive_path: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract a ``.zip`` or ``.tar(.gz|.bz2|.xz)`` into ``dest``; return ``dest``.

    Refuses absolute member paths, members or symlinks that would land outside ``dest``, and device
    files. Extraction happens in a temporary sibling folder that is moved into place only when the
    whole archive was read, so a corrupt or truncated archive raises :class:`DatasetError` and
    leaves ``dest`` untouched.
    """
    archive = Path(archive_path)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(
        tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
    ).resolve()
    try:
        try:
            if zipfile.is_zipfile(archive):
                _extract_zip(archive, tmp)
            elif archive.name.endswith(".zip"):
                raise zipfile.BadZipFile("not a zip file (no central directory)")
            else:
                _extract_tar(archive, tmp)
        except DatasetError:
            raise
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError) as err:
            raise DatasetError(
                f"{archive}: corrupt or truncated archive ({type(err).__name__}: {err}). "
                "Fix: delete it and download or copy it again."
            ) from err
        dest.mkdir(parents=True, exist_ok=True)
        for entry in tmp.iterdir():
            target = dest / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(entry, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
