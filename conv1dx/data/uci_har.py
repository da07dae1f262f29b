"""UCI HAR ("Human Activity Recognition Using Smartphones"): the nine raw Inertial Signals, official split.

``load_uci_har()`` returns an :class:`~conv1dx.data.dataset.ArrayDataset` with

  * ``x`` ``(N, 128, 9)`` float32: 2.56 s windows at 50 Hz of the raw signals, channels in the order of
    Jason Brownlee's ``load_dataset_group`` used by the HAR convnet article: ``total_acc_{x,y,z}`` (g),
    ``body_acc_{x,y,z}`` (g), ``body_gyro_{x,y,z}`` (rad/s), unnormalized as in the article;
  * ``y`` ``(N,)`` int32 in 0..5: the ids 1..6 of ``activity_labels.txt`` minus one (WALKING,
    WALKING_UPSTAIRS, WALKING_DOWNSTAIRS, SITTING, STANDING, LAYING);
  * ``extras["subject"]`` ``(N,)`` int32 volunteer ids 1..30 (train and test subjects are disjoint);
  * splits ``train`` (7,352) and ``test`` (2,947), in the original row order.

The archive is read in place (no extraction); ``__MACOSX/`` entries are ignored. The parsed windows are
stored once as a TFDS ArrayRecord dataset under ``data_dir`` and reused by later calls.
"""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
import tensorflow_datasets as tfds

from conv1dx.data.archives import ArchiveSpec, DatasetError
from conv1dx.data.dataset import ArrayDataset, Split
from conv1dx.data.tfds_io import ArrayRecordBuilder, prepare, prepared_info, read_split

ARCHIVE = ArchiveSpec(
    filename="UCI HAR Dataset.zip",
    url="https://archive.ics.uci.edu/ml/machine-learning-databases/00240/UCI%20HAR%20Dataset.zip",
)
CLASS_NAMES = (
    "WALKING",
    "WALKING_UPSTAIRS",
    "WALKING_DOWNSTAIRS",
    "SITTING",
    "STANDING",
    "LAYING",
)
CHANNELS = tuple(
    f"{kind}_{axis}" for kind in ("total_acc", "body_acc", "body_gyro") for axis in "xyz"
)
STEPS = 128
SPLITS = ("train", "test")
CITATION = (
    "Davide Anguita, Alessandro Ghio, Luca Oneto, Xavier Parra and Jorge L. Reyes-Ortiz. A Public Domain "
    "Dataset for Human Activity Recognition Using Smartphones. ESANN 2013."
)


def _is_junk(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return "__MACOSX" in parts or (bool(parts) and parts[-1].startswith("._"))


def find_root(names: list[str], archive: str | os.PathLike) -> str:
    """The folder prefix (e.g. ``"UCI HAR Dataset/"``) holding ``activity_labels.txt`` in ``names``."""
    roots = [
        n[: -len("activity_labels.txt")]
        for n in names
        if n.endswith("activity_labels.txt") and not _is_junk(n)
    ]
    roots = [r for r in roots if r == "" or r.endswith("/")]
    if len(roots) != 1:
        raise DatasetError(
            f"{archive}: expected exactly one 'UCI HAR Dataset/activity_labels.txt' (outside __MACOSX), "
            f"found {len(roots)}. Fix: use the original 'UCI HAR Dataset.zip' from {ARCHIVE.url}."
        )
    return roots[0]


def parse_activity_labels(text: str, source: str) -> tuple[str, ...]:
    """Class names from ``activity_labels.txt`` lines ``"<id> <NAME>"``; ids must run 1..K in order."""
    names = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or fields[0] != str(len(names) + 1):
            raise DatasetError(
                f"{source} line {lineno}: expected '<id> <NAME>' with id {len(names) + 1}, got {line!r}. "
                "Fix: the archive is not the original UCI HAR dataset; download it again."
            )
        names.append(fields[1])
    return tuple(names)


def parse_table(
    text: str, source: str, *, columns: int | None = None, dtype=np.float64
) -> np.ndarray:
    """Whitespace-separated numbers (any leading/double spaces) -> ``(rows, columns)`` array."""
    try:
        table = np.loadtxt(io.StringIO(text), dtype=dtype, ndmin=2)
    except ValueError as err:
        raise DatasetError(
            f"{source}: not a table of numbers ({err}). Fix: the file is corrupt; download the archive again."
        ) from err
    if columns is not None and table.shape[1] != columns:
        raise DatasetError(
            f"{source}: expected {columns} numbers per line, found {table.shape[1]}. "
            "Fix: the file is corrupt; download the archive again."
        )
    return table


def read_archive(path: str | os.PathLike) -> dict[str, dict[str, np.ndarray]]:
    """Parse the zip: per split ``{"x": (N, 128, 9) float32, "y": (N,) int32 0-based, "subject": (N,)}``.

    Also accepts the newer UCI download (``human+activity+recognition+using+smartphones.zip``), which
    wraps the original ``UCI HAR Dataset.zip`` in an outer zip.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            nested = [n for n in names if PurePosixPath(n).name == ARCHIVE.filename and not _is_junk(n)]
            if nested and not any(n.endswith("activity_labels.txt") for n in names):
                with zipfile.ZipFile(io.BytesIO(zf.read(nested[0]))) as inner:
                    return _parse_zip(inner, f"{path}:{nested[0]}")
            return _parse_zip(zf, str(path))
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        raise DatasetError(
            f"{path}: corrupt or truncated zip ({type(err).__name__}: {err}). "
            f"Fix: delete it and download {ARCHIVE.url} again."
        ) from err


def _parse_zip(zf: zipfile.ZipFile, label: str) -> dict[str, dict[str, np.ndarray]]:
    root = find_root(zf.namelist(), label)

    def read(name: str) -> tuple[str, str]:
        member = root + name
        try:
            data = zf.read(member)
        except KeyError:
            raise DatasetError(
                f"{label}: missing member {member!r}. Fix: use the complete original archive "
                f"from {ARCHIVE.url}."
            ) from None
        try:
            return data.decode("ascii"), f"{label}:{member}"
        except UnicodeDecodeError as err:
            raise DatasetError(f"{label}:{member}: not ASCII text ({err}). Fix: download again.") from err

    names = parse_activity_labels(*read("activity_labels.txt"))
    if names != CLASS_NAMES:
        raise DatasetError(
            f"{label}: activity_labels.txt names {names}, expected {CLASS_NAMES}. "
            f"Fix: use the original archive from {ARCHIVE.url}."
        )
    return {split: _read_split(read, split, len(names)) for split in SPLITS}


def _read_split(read, split: str, num_classes: int) -> dict[str, np.ndarray]:
    y_text, y_source = read(f"{split}/y_{split}.txt")
    y = parse_table(y_text, y_source, columns=1, dtype=np.int64)[:, 0]
    subject = parse_table(*read(f"{split}/subject_{split}.txt"), columns=1, dtype=np.int64)[:, 0]
    if y.size and (y.min() < 1 or y.max() > num_classes):
        raise DatasetError(
            f"{y_source}: labels must lie in 1..{num_classes}, found {y.min()}..{y.max()}."
        )
    channels = []
    for channel in CHANNELS:
        text, source = read(f"{split}/Inertial Signals/{channel}_{split}.txt")
        table = parse_table(text, source, columns=STEPS)
        if len(table) != len(y):
            raise DatasetError(
                f"{source}: {len(table)} rows but y_{split}.txt has {len(y)}; every file of a split has "
                "one row per window. Fix: download the archive again."
            )
        channels.append(table.astype(np.float32))
    if len(subject) != len(y):
        raise DatasetError(
            f"{split}: subject_{split}.txt has {len(subject)} rows, y_{split}.txt {len(y)}."
        )
    return {
        "x": np.stack(channels, axis=-1),
        "y": (y - 1).astype(np.int32),
        "subject": subject.astype(np.int32),
    }


class UciHarBuilder(ArrayRecordBuilder, skip_registration=True):
    """TFDS builder: one record per window, ``{"x": (128, 9) float32, "label", "subject", "row"}``."""

    name = "conv1dx_uci_har"
    VERSION = tfds.core.Version("1.0.0")
    DESCRIPTION = __doc__
    HOMEPAGE = (
        "https://archive.ics.uci.edu/dataset/240/human+activity+recognition+using+smartphones"
    )
    CITATION = CITATION

    def _features(self) -> tfds.features.FeaturesDict:
        return tfds.features.FeaturesDict(
            {
                "x": tfds.features.Tensor(shape=(STEPS, len(CHANNELS)), dtype=np.float32),
                "label": tfds.features.ClassLabel(names=CLASS_NAMES),
                "subject": np.int32,
                "row": np.int32,
            }
        )

    def _split_generators(self, dl_manager):
        # The archive comes from conv1dx.data.archives (local copy or verified download).
        del dl_manager
        arrays = read_archive(self.resolve_archive(ARCHIVE))
        return {split: self._generate_examples(arrays[split]) for split in SPLITS}

    def _generate_examples(self, arrays):
        for row in range(len(arrays["y"])):
            yield (
                row,
                {
                    "x": arrays["x"][row],
                    "label": int(arrays["y"][row]),
                    "subject": int(arrays["subject"][row]),
                    "row": row,
                },
            )


def load_uci_har(
    *,
    data_dir: str | os.PathLike | None = None,
    archives: str | os.PathLike | None = None,
    download: bool = True,
) -> ArrayDataset:
    """UCI HAR: x (N, 128, 9) raw inertial signals, y 6 activities, official 7,352/2,947 split.

    Shapes, channel order and labels are in the module docstring.

    The first call reads ``UCI HAR Dataset.zip`` from ``archives`` (else ``$CONV1DX_ARCHIVES``), else
    downloads it when ``download`` is True, and writes the prepared copy under ``data_dir`` (else
    ``$CONV1DX_DATA_DIR``, else the TFDS default); later calls only read the prepared copy.
    """
    builder = UciHarBuilder(data_dir=data_dir, archives=archives, download=download)
    reused = prepare(builder)
    splits = {}
    for split in SPLITS:
        arrays = read_split(builder, split, keys=("x", "label", "subject", "row"))
        order = np.argsort(arrays["row"], kind="stable")
        splits[split] = Split(
            x=arrays["x"][order].astype(np.float32, copy=False),
            y=arrays["label"][order].astype(np.int32),
            extras={"subject": arrays["subject"][order].astype(np.int32)},
        )
    return ArrayDataset(
        name="uci_har",
        splits=splits,
        num_classes=len(CLASS_NAMES),
        class_names=CLASS_NAMES,
        task="classification",
        metadata={
            "channels": CHANNELS,
            "sampling_rate_hz": 50.0,
            "source": ARCHIVE.url,
            "citation": CITATION,
            "license": "CC BY 4.0",
            **prepared_info(builder, reused),
        },
    )
