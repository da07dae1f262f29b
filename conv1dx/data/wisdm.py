"""WISDM Activity Prediction v1.1: raw 20 Hz phone accelerometer, windowed per (user, activity) run.

``load_wisdm()`` returns an :class:`~conv1dx.data.dataset.ArrayDataset` with

  * ``x`` ``(N, window, 3)`` float32: x/y/z acceleration (m/s^2), standardized per axis with the mean and
    standard deviation of the *train* windows (``metadata["mean"]``/``["std"]``, ``(3,)``);
  * ``y`` ``(N,)`` int32: class ids in alphabetical order (Downstairs, Jogging, Sitting, Standing,
    Upstairs, Walking), the order of scikit-learn's ``LabelEncoder`` used by the WISDM convnet article;
  * ``extras["user"]`` ``(N,)`` int32 user ids 1..36; splits ``train`` (users in ``train_users``, by
    default 1..28) and ``test`` (all other users), so no user is in both.

Records are grouped into *runs*: maximal stretches of consecutive records (file order) with the same user
and activity. Windows of ``window`` records start every ``step`` records from each run's first record
and never cross a run boundary; a window's label is its run's activity.

Raw-file quirks handled (``WISDM_ar_v1.1_raw.txt``, ``user,activity,timestamp,x,y,z;``): several records
on one line, a trailing ``,`` before ``;``, spaces around fields, empty lines; records with an empty
field are dropped and counted (``metadata["dropped_records"]``); records with timestamp 0 are kept
unless ``drop_zero_timestamps``. Anything else that cannot be parsed raises DatasetError naming the line.

The parsed stream (per run) is stored once with TFDS; ``window``/``step``/``train_users`` apply at load
time, so changing them needs no re-prepare.
"""

from __future__ import annotations

import os
import tarfile
import zlib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np
import tensorflow_datasets as tfds
from numpy.lib.stride_tricks import sliding_window_view

from conv1dx.data.archives import ArchiveSpec, DatasetError
from conv1dx.data.dataset import ArrayDataset, Split
from conv1dx.data.tfds_io import (
    ArrayRecordBuilder,
    metadata_value,
    prepare,
    prepared_info,
    read_split,
)

ARCHIVE = ArchiveSpec(
    filename="WISDM_ar_latest.tar.gz",
    url="https://www.cis.fordham.edu/wisdm/includes/datasets/latest/WISDM_ar_latest.tar.gz",
)
RAW_MEMBER = "WISDM_ar_v1.1_raw.txt"
CLASS_NAMES = ("Downstairs", "Jogging", "Sitting", "Standing", "Upstairs", "Walking")
SAMPLING_RATE_HZ = 20.0
CITATION = (
    "Jennifer R. Kwapisz, Gary M. Weiss and Samuel A. Moore. Activity Recognition using Cell Phone "
    "Accelerometers. SIGKDD Explorations 12(2), 2010."
)


def parse_raw(text: str, source: str) -> dict[str, np.ndarray | int]:
    """Parse the raw file's text into a record stream (file order).

    Returns ``user`` ``(N,)`` int32, ``activity`` ``(N,)`` int32 (index into CLASS_NAMES), ``timestamp``
    ``(N,)`` int64, ``acc`` ``(N, 3)`` float32 and ``dropped_empty_field`` (records skipped because a
    field was empty). Raises DatasetError naming ``source`` and the 1-based line for anything else.
    """
    class_index = {name: i for i, name in enumerate(CLASS_NAMES)}
    users, activities, stamps, values = [], [], [], []
    dropped = 0
    for lineno, line in enumerate(text.split("\n"), 1):
        for record in line.split(";"):
            fields = record.split(",")
            if len(fields) == 1 and not fields[0].strip():
                continue  # empty line, or the empty text after the last ';'
            if len(fields) == 7 and not fields[6].strip():
                fields.pop()  # trailing ',' before ';'
            if len(fields) != 6:
                raise _bad(
                    source, lineno, record, f"expected 6 comma-separated fields, got {len(fields)}"
                )
            fields = [f.strip() for f in fields]
            if not all(fields):
                dropped += 1
                continue
            activity = class_index.get(fields[1])
            if activity is None:
                raise _bad(
                    source, lineno, record, f"unknown activity {fields[1]!r} (known: {CLASS_NAMES})"
                )
            try:
                user, stamp = int(fields[0]), int(fields[2])
                xyz = (float(fields[3]), float(fields[4]), float(fields[5]))
            except ValueError as err:
                raise _bad(source, lineno, record, f"not a number ({err})") from None
            users.append(user)
            activities.append(activity)
            stamps.append(stamp)
            values.append(xyz)
    return {
        "user": np.asarray(users, dtype=np.int32),
        "activity": np.asarray(activities, dtype=np.int32),
        "timestamp": np.asarray(stamps, dtype=np.int64),
        "acc": np.asarray(values, dtype=np.float32).reshape(-1, 3),
        "dropped_empty_field": dropped,
    }


def _bad(source: str, lineno: int, record: str, problem: str) -> DatasetError:
    return DatasetError(
        f"{source} line {lineno}: {problem} in record {record.strip()!r}; expected "
        "'user,activity,timestamp,x,y,z;'. Fix: the file is corrupt or not WISDM v1.1; download "
        f"{ARCHIVE.url} again."
    )


def read_raw_text(path: str | os.PathLike) -> tuple[str, str]:
    """Text of ``WISDM_ar_v1.1_raw.txt`` inside the tar.gz, and a ``source`` name for error messages."""
    path = Path(path)
    try:
        with tarfile.open(path, "r:*") as tf:
            members = [
                m
                for m in tf.getmembers()
                if m.isfile()
                and PurePosixPath(m.name).name == RAW_MEMBER
                and "__MACOSX" not in m.name
            ]
            if len(members) != 1:
                raise DatasetError(
                    f"{path}: expected one member named {RAW_MEMBER!r}, found {len(members)}. "
                    f"Fix: use the original archive from {ARCHIVE.url}."
                )
            data = tf.extractfile(members[0]).read()
            source = f"{path}:{members[0].name}"
    except (tarfile.TarError, zlib.error, EOFError, OSError) as err:
        raise DatasetError(
            f"{path}: corrupt or truncated archive ({type(err).__name__}: {err}). "
            f"Fix: delete it and download {ARCHIVE.url} again."
        ) from err
    return data.decode("latin-1"), source


def run_boundaries(user_N: np.ndarray, activity_N: np.ndarray) -> np.ndarray:
    """Start indices ``(R + 1,)`` of the runs (maximal equal (user, activity) stretches), ending with N."""
    n = len(user_N)
    change = np.flatnonzero((np.diff(user_N) != 0) | (np.diff(activity_N) != 0)) + 1
    return np.concatenate([[0], change, [n]]).astype(np.int64) if n else np.zeros(1, np.int64)


def segment_starts(run_id_N: np.ndarray, window: int, step: int) -> np.ndarray:
    """Window start indices ``(W,)`` into the stream: every ``step`` from each run's start, inside the run.

    ``run_id_N`` must be non-decreasing (runs contiguous). Vectorized: a start ``s`` is kept when
    ``run_id[s] == run_id[s + window - 1]`` and ``(s - first index of its run) % step == 0``.
    """
    if window < 1 or step < 1:
        raise ValueError(
            f"window and step must be positive integers, got window={window}, step={step}."
        )
    n = len(run_id_N)
    if n < window:
        return np.zeros(0, dtype=np.int64)
    s = np.arange(n - window + 1)
    first_N = np.searchsorted(run_id_N, run_id_N, side="left")
    keep = (run_id_N[s] == run_id_N[s + window - 1]) & ((s - first_N[s]) % step == 0)
    return s[keep]


def _train_user_set(train_users: int | Sequence[int]) -> set[int]:
    if isinstance(train_users, int | np.integer):
        if train_users < 1:
            raise ValueError(
                f"train_users={train_users}: give a positive max user id or a list of ids."
            )
        return set(range(1, int(train_users) + 1))
    users = {int(u) for u in train_users}
    if not users:
        raise ValueError(
            "train_users is empty: give a max user id (e.g. 28) or a non-empty list of ids."
        )
    return users


class WisdmBuilder(ArrayRecordBuilder, skip_registration=True):
    """TFDS builder: split ``full``, one record per run ``{"acc": (T, 3), "timestamp": (T,), ...}``."""

    name = "conv1dx_wisdm"
    VERSION = tfds.core.Version("1.0.0")
    DESCRIPTION = __doc__
    HOMEPAGE = "https://www.cis.fordham.edu/wisdm/dataset.php"
    CITATION = CITATION

    def _features(self) -> tfds.features.FeaturesDict:
        return tfds.features.FeaturesDict(
            {
                "acc": tfds.features.Tensor(shape=(None, 3), dtype=np.float32),
                "timestamp": tfds.features.Tensor(shape=(None,), dtype=np.int64),
                "user": np.int32,
                "activity": tfds.features.ClassLabel(names=CLASS_NAMES),
                "run": np.int32,
            }
        )

    def _split_generators(self, dl_manager):
        # The archive comes from conv1dx.data.archives (local copy or verified download).
        del dl_manager
        stream = parse_raw(
            *read_raw_text(self.resolve_archive(ARCHIVE))
        )
        self.info.metadata["dropped_empty_field"] = int(stream["dropped_empty_field"])
        self.info.metadata["num_records"] = int(len(stream["user"]))
        return {"full": self._generate_examples(stream)}

    def _generate_examples(self, stream):
        bounds = run_boundaries(stream["user"], stream["activity"])
        for run, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            yield (
                run,
                {
                    "acc": stream["acc"][lo:hi],
                    "timestamp": stream["timestamp"][lo:hi],
                    "user": int(stream["user"][lo]),
                    "activity": int(stream["activity"][lo]),
                    "run": run,
                },
            )


def load_wisdm(
    *,
    window: int = 80,
    step: int = 40,
    train_users: int | Sequence[int] = 28,
    standardize: bool = True,
    drop_zero_timestamps: bool = False,
    data_dir: str | os.PathLike | None = None,
    archives: str | os.PathLike | None = None,
    download: bool = True,
) -> ArrayDataset:
    """WISDM v1.1: x (N, window, 3) accelerometer windows, y 6 activities, split by user.

    Shapes, runs, labels and quirks are in the module docstring.

    ``window``/``step`` are in records (20 Hz: 80 = 4 s). ``train_users`` is a max user id (users
    1..N train) or a list of ids. ``standardize`` applies the train-window per-axis mean/std to every
    split. Archive lookup and caching as in :func:`conv1dx.data.uci_har.load_uci_har`.
    """
    if int(window) != window or int(step) != step or window < 1 or step < 1:
        raise ValueError(
            f"window and step must be positive integers, got window={window}, step={step}."
        )
    train_set = _train_user_set(train_users)
    builder = WisdmBuilder(data_dir=data_dir, archives=archives, download=download)
    reused = prepare(builder)
    runs = read_split(builder, "full", keys=("acc", "timestamp", "user", "activity", "run"))
    order = np.argsort(np.asarray(runs["run"]), kind="stable")
    acc_list = [np.asarray(runs["acc"][i], dtype=np.float32) for i in order]
    acc_Tx3 = np.concatenate(acc_list)
    stamp_T = np.concatenate([np.asarray(runs["timestamp"][i]) for i in order])
    run_id_T = np.repeat(np.arange(len(acc_list)), [len(a) for a in acc_list])
    zero_stamp = stamp_T == 0
    if drop_zero_timestamps:
        acc_Tx3, run_id_T = acc_Tx3[~zero_stamp], run_id_T[~zero_stamp]
    starts = segment_starts(run_id_T, int(window), int(step))
    x_NxWx3 = sliding_window_view(acc_Tx3, int(window), axis=0)[starts].transpose(0, 2, 1)
    x_NxWx3 = np.ascontiguousarray(x_NxWx3)
    run_of_window = run_id_T[starts]
    user_N = np.asarray(runs["user"])[order][run_of_window].astype(np.int32)
    y_N = np.asarray(runs["activity"])[order][run_of_window].astype(np.int32)
    is_train = np.isin(user_N, sorted(train_set))
    if not is_train.any() or is_train.all():
        raise ValueError(
            f"train_users={train_users!r} leaves the {'train' if not is_train.any() else 'test'} split "
            f"without windows (users with windows: {sorted(set(user_N.tolist()))})."
        )
    mean_C = x_NxWx3[is_train].mean(axis=(0, 1), dtype=np.float64)
    std_C = x_NxWx3[is_train].std(axis=(0, 1), dtype=np.float64)
    if standardize:
        if np.any(std_C == 0):
            raise DatasetError(f"wisdm: an axis is constant over the train windows (std {std_C}).")
        x_NxWx3 = ((x_NxWx3 - mean_C) / std_C).astype(np.float32)
    splits = {
        name: Split(x=x_NxWx3[mask], y=y_N[mask], extras={"user": user_N[mask]})
        for name, mask in (("train", is_train), ("test", ~is_train))
    }
    return ArrayDataset(
        name="wisdm",
        splits=splits,
        num_classes=len(CLASS_NAMES),
        class_names=CLASS_NAMES,
        task="classification",
        metadata={
            "window": int(window),
            "step": int(step),
            "sampling_rate_hz": SAMPLING_RATE_HZ,
            "channels": ("x_accel", "y_accel", "z_accel"),
            "train_users": tuple(sorted(set(user_N[is_train].tolist()))),
            "test_users": tuple(sorted(set(user_N[~is_train].tolist()))),
            "standardized": bool(standardize),
            "mean": mean_C,
            "std": std_C,
            "num_records": int(len(zero_stamp)),
            "num_runs": int(len(acc_list)),
            "dropped_records": {
                "empty_field": int(metadata_value(builder, "dropped_empty_field")),
                "zero_timestamp": int(zero_stamp.sum()) if drop_zero_timestamps else 0,
            },
            "zero_timestamp_records": int(zero_stamp.sum()),
            "source": ARCHIVE.url,
            "citation": CITATION,
            **prepared_info(builder, reused),
        },
    )

