"""Write a small ``jena_climate_2009_2016.csv.zip`` in the original CSV format.

The real file (Max Planck Institute for Biogeochemistry, Jena, 2009-2016) has a quoted header of 15
columns, then one unquoted row every 10 minutes: a ``dd.mm.yyyy HH:MM:SS`` date and 14 numbers with two
decimals, ``\\n`` line endings and no newline after the last row; e.g.
``01.01.2009 00:10:00,996.52,-8.02,265.40,-8.90,93.30,3.33,3.11,0.22,1.94,3.12,1307.75,1.03,1.75,152.30``.
The zip holds ``jena_climate_2009_2016.csv`` and a ``__MACOSX/`` AppleDouble entry. The real data also
has a few ``-9999.00`` wind speeds; one is written here too.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILENAME = "jena_climate_2009_2016.csv.zip"
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
HEADER = ",".join(f'"{name}"' for name in COLUMNS)


@dataclass
class JenaFixture:
    """What was written: ``values`` ``(T, 14)`` float64 (the numbers of the text) and the date strings."""

    path: Path
    values: np.ndarray
    dates: list[str]


def weather_like(num_rows: int, seed: int = 0) -> np.ndarray:
    """``(num_rows, 14)`` synthetic weather: daily/yearly temperature cycles plus noise, 2 decimals."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_rows)
    day = 2 * np.pi * t / 144.0
    temp = 9.0 + 8.0 * np.sin(day) + 0.3 * np.cumsum(rng.normal(0, 0.1, num_rows))
    pressure = 989.0 + np.cumsum(rng.normal(0, 0.05, num_rows))
    rh = np.clip(75 - 15 * np.sin(day) + rng.normal(0, 3, num_rows), 10, 100)
    dew = temp - (100 - rh) / 5
    wind = np.abs(rng.normal(2.0, 1.2, num_rows))
    columns = [
        pressure,
        temp,
        temp + 273.15 + (1000 - pressure) * 0.08,
        dew,
        rh,
        6.1 * np.exp(0.07 * temp),
        6.1 * np.exp(0.07 * dew),
        np.abs(temp - dew) * 0.5,
        np.abs(dew) * 0.2 + 2,
        np.abs(dew) * 0.3 + 3,
        1250 - 4 * temp,
        wind,
        wind * 1.6,
        rng.uniform(0, 360, num_rows),
    ]
    return np.round(np.stack(columns, axis=1), 2)


def write_jena_zip(
    folder: str | Path,
    *,
    num_rows: int = 3000,
    seed: int = 0,
    values: np.ndarray | None = None,
    filename: str = FILENAME,
) -> JenaFixture:
    """Write ``folder/jena_climate_2009_2016.csv.zip`` with ``num_rows`` rows (or the given ``values``)."""
    if values is None:
        values = weather_like(num_rows, seed)
        values[min(17, num_rows - 1), 11] = -9999.0  # the real file's invalid wind speed marker
    values = np.asarray(values, dtype=np.float64)
    start = dt.datetime(2009, 1, 1, 0, 10)
    dates = [
        (start + dt.timedelta(minutes=10 * i)).strftime("%d.%m.%Y %H:%M:%S")
        for i in range(len(values))
    ]
    rows = [
        date + "," + ",".join(f"{v:.2f}" for v in row)
        for date, row in zip(dates, values, strict=True)
    ]
    text = HEADER + "\n" + "\n".join(rows)  # no newline after the last row, as in the original
    written = np.array([[float(v) for v in row.split(",")[1:]] for row in rows], dtype=np.float64)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(CSV_NAME, text.encode())
        zf.writestr("__MACOSX/", b"")
        zf.writestr(f"__MACOSX/._{CSV_NAME}", b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
    return JenaFixture(path=path, values=written, dates=dates)
