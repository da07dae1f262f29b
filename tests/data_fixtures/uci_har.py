"""Write a tiny ``UCI HAR Dataset.zip`` in the original layout and number format.

Layout of the real archive (Anguita et al. 2013), reproduced here with a handful of windows::

    UCI HAR Dataset/activity_labels.txt      "1 WALKING" ... "6 LAYING"
    UCI HAR Dataset/features.txt             "1 tBodyAcc-mean()-X" ... (561 lines)
    UCI HAR Dataset/README.txt, features_info.txt
    UCI HAR Dataset/{train,test}/X_<split>.txt, y_<split>.txt, subject_<split>.txt
    UCI HAR Dataset/{train,test}/Inertial Signals/{body_acc,body_gyro,total_acc}_{x,y,z}_<split>.txt
    __MACOSX/UCI HAR Dataset/...             AppleDouble junk ("._name") that a loader must ignore

Numbers are written like the original MATLAB export: each value is one space plus ``%15.7e`` with a
three-digit exponent, e.g. ``"  2.8858451e-001 -2.0294171e-002"`` (positives get two leading spaces).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILENAME = "UCI HAR Dataset.zip"
ROOT = "UCI HAR Dataset/"
ACTIVITIES = (
    "WALKING",
    "WALKING_UPSTAIRS",
    "WALKING_DOWNSTAIRS",
    "SITTING",
    "STANDING",
    "LAYING",
)
SIGNALS = tuple(
    f"{kind}_{axis}" for kind in ("body_acc", "body_gyro", "total_acc") for axis in "xyz"
)
STEPS = 128
NUM_FEATURES = 561


@dataclass
class UciHarFixture:
    """What was written: per split, ``signals[name]`` ``(N, 128)``, ``y`` ``(N,)`` 1-based ids, ``subject``."""

    path: Path
    signals: dict[str, dict[str, np.ndarray]]
    y: dict[str, np.ndarray]
    subject: dict[str, np.ndarray]


def matlab_e(value: float) -> str:
    """One value as in the original files: a space, then ``%15.7e`` with a 3-digit exponent."""
    mantissa, exponent = f"{value:.7e}".split("e")
    text = f"{mantissa}e{exponent[0]}{abs(int(exponent)):03d}"
    return " " + text.rjust(15)


def format_rows(values_NxK: np.ndarray) -> tuple[str, np.ndarray]:
    """File text (one line per row, ``\\n`` endings) and the float values that text holds."""
    lines = ["".join(matlab_e(float(v)) for v in row) for row in values_NxK]
    written = np.array([[float(tok) for tok in line.split()] for line in lines], dtype=np.float64)
    return "".join(line + "\n" for line in lines), written


def _split_rows(rng, subjects, windows_per_subject):
    subject = np.repeat(np.asarray(subjects, dtype=np.int64), windows_per_subject)
    y = (np.arange(len(subject)) % len(ACTIVITIES)) + 1  # every class appears
    rng.shuffle(y)
    return subject, y


def write_uci_har_zip(
    folder: str | Path,
    *,
    train_subjects=(1, 3, 5),
    test_subjects=(2, 4),
    windows_per_subject: int = 4,
    seed: int = 0,
    filename: str = FILENAME,
) -> UciHarFixture:
    """Write ``folder/UCI HAR Dataset.zip`` with the given subjects and return the values written."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    fixture = UciHarFixture(path=path, signals={}, y={}, subject={})
    files: dict[str, bytes] = {
        "activity_labels.txt": "".join(
            f"{i} {name}\n" for i, name in enumerate(ACTIVITIES, 1)
        ).encode(),
        "features.txt": "".join(
            f"{i} feature{i}-mean()-X\n" for i in range(1, NUM_FEATURES + 1)
        ).encode(),
        "README.txt": b"Human Activity Recognition Using Smartphones Dataset\r\nVersion 1.0\r\n",
        "features_info.txt": b"Feature Selection \r\n=================\r\n",
    }
    for split, subjects in (("train", train_subjects), ("test", test_subjects)):
        subject, y = _split_rows(rng, subjects, windows_per_subject)
        n = len(subject)
        fixture.subject[split], fixture.y[split] = subject, y
        files[f"{split}/y_{split}.txt"] = "".join(f"{v}\n" for v in y).encode()
        files[f"{split}/subject_{split}.txt"] = "".join(f"{v}\n" for v in subject).encode()
        features_text, _ = format_rows(rng.uniform(-1, 1, size=(n, NUM_FEATURES)))
        files[f"{split}/X_{split}.txt"] = features_text.encode()
        fixture.signals[split] = {}
        for name in SIGNALS:
            scale = 1.5 if name.startswith("total") else 0.5
            values = rng.normal(0.0, scale, size=(n, STEPS))
            values[0, :3] = (0.0, -1e-5, 3.0)  # zero, tiny and exactly representable values
            text, written = format_rows(values)
            files[f"{split}/Inertial Signals/{name}_{split}.txt"] = text.encode()
            fixture.signals[split][name] = written
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(ROOT, b"")
        for directory in ("train/", "test/", "train/Inertial Signals/", "test/Inertial Signals/"):
            zf.writestr(ROOT + directory, b"")
        for name, data in files.items():
            zf.writestr(ROOT + name, data)
        junk = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        "
        zf.writestr("__MACOSX/", b"")
        for name in (
            "activity_labels.txt",
            "train/y_train.txt",
            "train/Inertial Signals/total_acc_x_train.txt",
        ):
            directory, _, base = (ROOT + name).rpartition("/")
            zf.writestr(f"__MACOSX/{directory}/._{base}", junk)
    return fixture
