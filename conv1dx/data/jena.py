"""Jena climate 2009-2016: 14 weather features every 10 minutes, for temperature forecasting.

``load_jena()`` returns a :class:`~conv1dx.data.windows.WindowedSeries` (not an ArrayDataset: the
article's ~400k overlapping windows of 240x14 would take ~5 GB on the host, so they are gathered per batch
on the accelerator from one ``(T, 14)`` array):

  * ``series`` ``(420551, 14)`` float32: the CSV's numeric columns in file order, each standardized with
    the mean and (population) std of the *training* rows, as the article does with its first 200,000;
  * ``ranges``: chronological splits, by default the article's ``train [0, 200000)``,
    ``val [200001, 300000)``, ``test [300001, end)``;
  * ``spec``: ``lookback=1440`` (10 days), ``step=6`` (one sample per hour), ``delay=144`` (24 h ahead),
    ``target_col=1`` ("T (degC)") -> windows ``(240, 14)``, target = temperature 24 h later.

``ds.common_sense_mae("val")`` is the article's baseline (~0.29 normalized, ~2.57 degC on the real data).
The raw values (float64) and timestamps are stored once with TFDS; normalization, ranges and window
settings apply at load time. Known quirks of the real data are left as in the article: a few
``-9999.0`` wind speeds, and a handful of duplicated or missing 10-minute rows.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np
import tensorflow_datasets as tfds

from conv1dx.data.archives import ArchiveSpec, DatasetError
from conv1dx.data.tfds_io import ArrayRecordBuilder, prepare, prepared_info, read_split
from conv1dx.data.windows import WindowedSeries, WindowSpec

ARCHIVE = ArchiveSpec(
    filename="jena_climate_2009_2016.csv.zip",
    url="https://s3.amazonaws.com/keras-datasets/jena_climate_2009_2016.csv.zip",
)
CSV_NAME = "jena_climate_2009_2016.csv"
COLUMNS = (
    "Date Time",
    "p (mbar)",
    "T (degC)",
    "Tpot (K)",
    "Tdew (degC)",
    "rh (%)",
    "VPmax (mbar)",
    "VPact (mbar)",
    "VPdef (mbar)",
    "sh (g/kg)",
    "H2OC (mmol/mol)",
    "rho (g/m**3)",
    "wv (m/s)",
    "max. wv (m/s)",
    "wd (deg)",
)
FEATURES = COLUMNS[1:]
CHUNK_ROWS = 10_000
SOURCE_NOTE = "Max Planck Institute for Biogeochemistry, Jena weather station (Keras copy)"


def _fail(source: str, lineno: int, problem: str) -> DatasetError:
    return DatasetError(
        f"{source} line {lineno}: {problem}. Expected 'dd.mm.yyyy HH:MM:SS' and 14 numbers separated "
        f"by commas. Fix: the file is corrupt; download {ARCHIVE.url} again."
    )


def parse_csv(text: str, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Parse the CSV text -> ``(time_T datetime64[s], values_Tx14 float64)``; checks the header."""
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DatasetError(f"{source}: empty file. Fix: download {ARCHIVE.url} again.")
    header = tuple(name.strip().strip('"') for name in lines[0].rstrip("\r").split(","))
    if header != COLUMNS:
        raise DatasetError(
            f"{source} line 1: header is {header}, expected {COLUMNS}. Fix: use the original "
            f"{CSV_NAME} from {ARCHIVE.url}."
        )
    body = lines[1:]
    try:
        values = np.loadtxt(
            body, delimiter=",", usecols=range(1, len(COLUMNS)), dtype=np.float64, ndmin=2
        )
    except ValueError:
        raise _first_bad_line(body, source) from None
    if values.shape[0] != len(body):  # loadtxt skips blank lines
        raise _first_bad_line(body, source)
    dates = [line[:19] for line in body]
    iso = [f"{d[6:10]}-{d[3:5]}-{d[0:2]}T{d[11:19]}" for d in dates]
    commas = len(COLUMNS) - 1
    try:
        times = np.array(iso, dtype="datetime64[s]")
        ok = all(
            len(line) > 19 and line[19] == "," and d[2] == d[5] == "." and line.count(",") == commas
            for line, d in zip(body, dates, strict=True)
        )
    except ValueError:
        ok = False
    if not ok:
        raise _first_bad_line(body, source)
    return times, values


def _first_bad_line(body: list[str], source: str) -> DatasetError:
    """Scan row by row (slow path, only after the fast parse failed) for the first malformed line."""
    for i, line in enumerate(body):
        fields = line.rstrip("\r").split(",")
        if len(fields) != len(COLUMNS):
            return _fail(
                source, i + 2, f"{len(fields)} fields instead of {len(COLUMNS)} in {line!r}"
            )
        d = fields[0]
        try:
            if len(d) != 19 or d[2] != "." or d[5] != ".":
                raise ValueError(d)
            np.datetime64(f"{d[6:10]}-{d[3:5]}-{d[0:2]}T{d[11:19]}", "s")
            [float(v) for v in fields[1:]]
        except ValueError:
            return _fail(source, i + 2, f"cannot parse {line!r}")
    return DatasetError(
        f"{source}: could not be parsed as the Jena climate CSV. Fix: download it again."
    )


def read_archive(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read ``jena_climate_2009_2016.csv`` from the zip (no extraction): ``(time_T, values_Tx14)``."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = [
                n
                for n in zf.namelist()
                if PurePosixPath(n).name == CSV_NAME and "__MACOSX" not in PurePosixPath(n).parts
            ]
            if len(names) != 1:
                raise DatasetError(
                    f"{path}: expected one member {CSV_NAME!r} (outside __MACOSX), found {len(names)}. "
                    f"Fix: use the original archive from {ARCHIVE.url}."
                )
            data = zf.read(names[0])
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        raise DatasetError(
            f"{path}: corrupt or truncated zip ({type(err).__name__}: {err}). "
            f"Fix: delete it and download {ARCHIVE.url} again."
        ) from err
    return parse_csv(data.decode("latin-1"), f"{path}:{names[0]}")


class JenaClimateBuilder(ArrayRecordBuilder, skip_registration=True):
    """TFDS builder: split ``full``, chunks of 10,000 rows ``{"values": (n, 14) float64, "time", "start"}``."""

    name = "conv1dx_jena_climate"
    VERSION = tfds.core.Version("1.0.0")
    DESCRIPTION = __doc__
    HOMEPAGE = "https://www.bgc-jena.mpg.de/wetter/"
    CITATION = SOURCE_NOTE

    def _features(self) -> tfds.features.FeaturesDict:
        return tfds.features.FeaturesDict(
            {
                "values": tfds.features.Tensor(
                    shape=(None, len(FEATURES)),
                    dtype=np.float64,
                    encoding=tfds.features.Encoding.ZLIB,
                ),  # raw bytes: the default Example float list would round to float32
                "time": tfds.features.Tensor(shape=(None,), dtype=np.int64),
                "start": np.int64,
            }
        )

    def _split_generators(self, dl_manager):
        # The archive comes from conv1dx.data.archives (local copy or verified download).
        del dl_manager
        times, values = read_archive(
            self.resolve_archive(ARCHIVE)
        )
        return {"full": self._generate_examples(times.astype(np.int64), values)}

    def _generate_examples(self, seconds_T, values_TxC):
        for start in range(0, len(values_TxC), CHUNK_ROWS):
            yield (
                start,
                {
                    "values": values_TxC[start : start + CHUNK_ROWS],
                    "time": seconds_T[start : start + CHUNK_ROWS],
                    "start": start,
                },
            )


def _target_index(target_col: int | str) -> int:
    if isinstance(target_col, str):
        if target_col not in FEATURES:
            raise ValueError(
                f"target_col {target_col!r} is not a feature; choose one of {FEATURES}."
            )
        return FEATURES.index(target_col)
    if not 0 <= int(target_col) < len(FEATURES):
        raise ValueError(
            f"target_col {target_col} must be in [0, {len(FEATURES)}) or a feature name."
        )
    return int(target_col)


def _range(name: str, value: Sequence[int | None]) -> tuple[int, int | None]:
    if value is None or len(value) != 2:
        raise ValueError(
            f"{name} must be [min_index, max_index] (max_index may be null), got {value!r}."
        )
    lo, hi = value
    return int(lo), None if hi is None else int(hi)


def load_jena(
    *,
    lookback: int = 1440,
    step: int = 6,
    delay: int = 144,
    target_col: int | str = 1,
    train: Sequence[int | None] = (0, 200000),
    val: Sequence[int | None] = (200001, 300000),
    test: Sequence[int | None] = (300001, None),
    data_dir: str | os.PathLike | None = None,
    archives: str | os.PathLike | None = None,
    download: bool = True,
) -> WindowedSeries:
    """Jena climate: a WindowedSeries (T, 14) with on-device (240, 14) windows, 24 h temperature target.

    Defaults follow the article; see the module docstring for shapes and the baseline.

    ``train``/``val``/``test`` are ``[min_index, max_index)`` row ranges as in the article's generator
    (``max_index`` None = up to ``T - delay - 1``). Mean/std come from the ``train`` rows
    ``[min_index, max_index)``. ``target_col`` is a column index of the 14 features or its name.
    Archive lookup and caching as in :func:`conv1dx.data.uci_har.load_uci_har`.
    """
    spec = WindowSpec(int(lookback), int(step), int(delay), _target_index(target_col))
    ranges = {
        "train": _range("train", train),
        "val": _range("val", val),
        "test": _range("test", test),
    }
    builder = JenaClimateBuilder(data_dir=data_dir, archives=archives, download=download)
    reused = prepare(builder)
    chunks = read_split(builder, "full", keys=("values", "time", "start"))
    order = np.argsort(np.asarray(chunks["start"]), kind="stable")
    raw_TxC = np.concatenate([np.asarray(chunks["values"][i]) for i in order])
    seconds_T = np.concatenate([np.asarray(chunks["time"][i]) for i in order])
    lo, hi = ranges["train"]
    fit = raw_TxC[lo : len(raw_TxC) if hi is None else hi]
    if len(fit) < 2:
        raise ValueError(
            f"train range {ranges['train']} holds {len(fit)} rows; need at least 2 for std."
        )
    mean_C = fit.mean(axis=0)
    std_C = fit.std(axis=0)
    if np.any(std_C == 0):
        constant = [FEATURES[i] for i in np.flatnonzero(std_C == 0)]
        raise DatasetError(
            f"jena: columns {constant} are constant over the train rows; cannot standardize."
        )
    series_TxC = ((raw_TxC - mean_C) / std_C).astype(np.float32)
    return WindowedSeries(
        name="jena_climate",
        series=series_TxC,
        ranges=ranges,
        spec=spec,
        mean=mean_C,
        std=std_C,
        feature_names=FEATURES,
        metadata={
            "time": seconds_T.astype("datetime64[s]"),
            "target": FEATURES[spec.target_col],
            "rows_per_hour": 6,
            "source": ARCHIVE.url,
            "citation": SOURCE_NOTE,
            **prepared_info(builder, reused),
        },
    )
