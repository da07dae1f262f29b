"""Write a tiny ``WISDM_ar_latest.tar.gz`` (WISDM Activity Prediction v1.1) with the raw file's quirks.

The real archive holds ``WISDM_ar_v1.1/WISDM_ar_v1.1_raw.txt`` plus readme/about/arff files. Raw records
are ``user,activity,timestamp,x,y,z;`` at 20 Hz, and the real file has these quirks, all reproduced here:

  * several records on one line, separated by ``;``;
  * a trailing ``,`` before the ``;`` (``...,z,;``);
  * a record with an empty field (``...,x,y,;``) that a loader drops and counts;
  * records with timestamp 0 (``u,Activity,0,0,0,0.0;``), kept by default;
  * spaces after the commas, values in Java's scientific notation (``9.5E-4``);
  * a final empty line.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FILENAME = "WISDM_ar_latest.tar.gz"
FOLDER = "WISDM_ar_v1.1/"
RAW = FOLDER + "WISDM_ar_v1.1_raw.txt"
ACTIVITIES = ("Walking", "Jogging", "Upstairs", "Downstairs", "Sitting", "Standing")

# (user, activity, number of records): contiguous runs in file order. Users <= 28 are train by default.
DEFAULT_RUNS = (
    (33, "Jogging", 130),
    (33, "Walking", 95),
    (1, "Walking", 170),
    (1, "Upstairs", 85),
    (1, "Sitting", 60),  # shorter than one 80-step window: yields no window
    (2, "Downstairs", 121),
    (2, "Standing", 200),
    (2, "Jogging", 100),
    (7, "Sitting", 160),
    (29, "Walking", 150),
    (29, "Standing", 90),
    (36, "Upstairs", 81),
    (36, "Downstairs", 99),
    (33, "Sitting", 100),  # user 33 again, after other users: a new run
)


@dataclass
class WisdmFixture:
    """What was written, for the records a loader keeps (file order): user, activity, timestamp, xyz."""

    path: Path
    user: np.ndarray
    activity: list[str]
    timestamp: np.ndarray
    acc: np.ndarray  # (N, 3) float64, the values of the written strings
    dropped_empty_field: int = 0
    run_bounds: list[tuple[int, int]] = field(default_factory=list)  # [start, end) per run
    bad_line: int | None = None  # 1-based line number of the malformed line, if one was written


def _value_text(rng: np.random.Generator, scale: float) -> str:
    value = np.float32(rng.normal(0.0, scale))
    return np.format_float_positional(value, unique=True, trim="-")


def write_wisdm_tar(
    folder: str | Path,
    *,
    runs=DEFAULT_RUNS,
    seed: int = 0,
    malformed: str | None = None,
    filename: str = FILENAME,
) -> WisdmFixture:
    """Write ``folder/WISDM_ar_latest.tar.gz`` and return the kept records.

    ``malformed`` (e.g. ``"33,Jogging,abc;"``) is written as an extra line in the middle of the file; its
    line number is returned as ``bad_line``.
    """
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    records: list[str] = []  # one text per record, without ';'
    users, activities, stamps, values, bounds = [], [], [], [], []
    dropped = 0
    for run_index, (user, activity, count) in enumerate(runs):
        start = len(users)
        t0 = int(rng.integers(10**12, 10**14)) // 1000 * 1000
        for i in range(count):
            xyz = [_value_text(rng, 5.0) for _ in range(3)]
            if run_index == 0 and i == 7:
                xyz[1] = "9.5E-4"  # Java Float.toString style
            if run_index == 0 and i == 9:
                xyz[2] = "0.0"
            stamp = t0 + i * 50_000_000
            if run_index == 2 and i == 20:
                stamp, xyz = 0, ["0", "0", "0.0"]  # a timestamp-0 record, kept
            text = f"{user},{activity},{stamp},{xyz[0]},{xyz[1]},{xyz[2]}"
            if run_index == 0 and i == 11:
                text += ","  # trailing comma before ';'
            if run_index == 3 and i == 4:
                text = ", ".join(text.split(","))  # spaces after commas
            records.append(text)
            users.append(user)
            activities.append(activity)
            stamps.append(stamp)
            values.append([float(v) for v in xyz])
            if run_index == 2 and i == 30:
                records.append(f"{user},{activity},{stamp + 25_000_000},{xyz[0]},{xyz[1]},")
                dropped += 1  # empty z: dropped by the loader
        bounds.append((start, len(users)))
    lines: list[str] = []
    i = 0
    while i < len(records):
        if i in (3, 40):  # two records on one line
            lines.append(records[i] + ";" + records[i + 1] + ";")
            i += 2
        elif i == 100:  # three records on one line
            lines.append(";".join(records[i : i + 3]) + ";")
            i += 3
        else:
            lines.append(records[i] + ";")
            i += 1
    bad_line = None
    if malformed is not None:
        at = len(lines) // 2
        lines.insert(at, malformed)
        bad_line = at + 1
    raw = "\n".join(lines) + "\n\n"  # final empty line
    members = {
        RAW: raw.encode(),
        FOLDER + "readme.txt": b"WISDM's Activity Prediction Dataset v1.1\n",
        FOLDER + "WISDM_ar_v1.1_raw_about.txt": b"Sampling rate:\n20Hz (1 sample every 50ms)\n",
        FOLDER + "WISDM_ar_v1.1_trans_about.txt": b"transformed examples\n",
        FOLDER + "WISDM_ar_v1.1_transformed.arff": b"@relation person_activities_labeled\n",
    }
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo(FOLDER.rstrip("/"))
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tf.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return WisdmFixture(
        path=path,
        user=np.asarray(users, dtype=np.int64),
        activity=activities,
        timestamp=np.asarray(stamps, dtype=np.int64),
        acc=np.asarray(values, dtype=np.float64),
        dropped_empty_field=dropped,
        run_bounds=bounds,
        bad_line=bad_line,
    )
