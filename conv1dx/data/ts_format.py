"""Parser of the UCR/UEA ``.ts`` text format (univariate/multivariate, equal/variable length).

Format: ``#`` comment lines, then header lines ``@problemName``, ``@timeStamps``, ``@missing``,
``@univariate``, ``@dimensions``, ``@equalLength``, ``@seriesLength``,
``@classLabel true <labels...>``, then ``@data`` and one case per line: each dimension's values
comma-separated, dimensions separated by ``:``, the class label last. ``?`` (or ``NaN``) marks a
missing value. Header keys are case-insensitive.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from conv1dx.data.archives import DatasetError

_BOOL = {"true": True, "false": False}


@dataclass(frozen=True)
class TsHeader:
    """The ``@`` header of a ``.ts`` file; ``None`` where the header is silent."""

    problem_name: str | None = None
    timestamps: bool = False
    missing: bool | None = None
    univariate: bool | None = None
    dimensions: int | None = None
    equal_length: bool | None = None
    series_length: int | None = None
    class_labels: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TsData:
    """A parsed ``.ts`` file: ``series[i]`` is ``(T_i, C)`` float32 (NaN = missing), ``labels``
    ``(N,)`` int32 ids indexing ``header.class_labels``."""

    header: TsHeader
    series: tuple[np.ndarray, ...]
    labels: np.ndarray

    @property
    def num_channels(self) -> int:
        return self.series[0].shape[1] if self.series else (self.header.dimensions or 1)


def _fail(source: str, line_no: int, problem: str, fix: str = "") -> DatasetError:
    where = f"{source}, line {line_no}" if line_no else source
    return DatasetError(f"{where}: {problem}." + (f" Fix: {fix}." if fix else ""))


def _parse_header_line(fields: dict, line: str, source: str, line_no: int) -> None:
    key, _, rest = line[1:].partition(" ")
    key = key.lower()
    value = rest.strip()
    if key in ("timestamps", "missing", "univariate", "equallength", "classlabel", "targetlabel"):
        flag, _, tail = value.partition(" ")
        if flag.lower() not in _BOOL:
            raise _fail(source, line_no, f"@{key} expects true or false, got {value!r}")
        if key == "classlabel":
            labels = tuple(tail.split())
            if _BOOL[flag.lower()] and not labels:
                raise _fail(source, line_no, "@classLabel true lists no labels")
            fields["class_labels"] = labels if _BOOL[flag.lower()] else None
        elif key == "targetlabel":
            if _BOOL[flag.lower()]:
                raise _fail(
                    source, line_no, "regression files (@targetLabel true) are not supported"
                )
        else:
            name = {
                "timestamps": "timestamps",
                "missing": "missing",
                "univariate": "univariate",
                "equallength": "equal_length",
            }[key]
            fields[name] = _BOOL[flag.lower()]
    elif key in ("dimensions", "serieslength"):
        if not value.isdigit() or int(value) < 1:
            raise _fail(source, line_no, f"@{key} expects a positive integer, got {value!r}")
        fields["dimensions" if key == "dimensions" else "series_length"] = int(value)
    elif key == "problemname":
        fields["problem_name"] = value
    # Other keys (@dimension-specific metadata some files carry) are ignored.


def _parse_case(
    line: str, header: TsHeader, label_ids: dict[str, int], source: str, line_no: int
) -> tuple[np.ndarray, int]:
    parts = line.split(":")
    if len(parts) < 2:
        raise _fail(
            source,
            line_no,
            "expected '<values>:<label>' (no ':' found)",
            "each case must end with ':' and its class label",
        )
    *dims, label = parts
    label = label.strip()
    if label not in label_ids:
        raise _fail(
            source,
            line_no,
            f"class label {label!r} is not among the header's @classLabel values {list(label_ids)}",
        )
    expected_dims = header.dimensions or (1 if header.univariate else None)
    if expected_dims is not None and len(dims) != expected_dims:
        raise _fail(
            source, line_no, f"found {len(dims)} dimensions, the header says {expected_dims}"
        )
    columns = []
    for d, text in enumerate(dims):
        tokens = [t.strip() for t in text.split(",")]
        if tokens == [""]:
            raise _fail(source, line_no, f"dimension {d} has no values")
        try:
            values = np.array(["nan" if t == "?" else t for t in tokens], dtype=np.float64)
        except ValueError as err:
            raise _fail(
                source,
                line_no,
                f"dimension {d} holds a value that is not a number ({err})",
                "values must be numbers or '?'",
            ) from None
        columns.append(values)
    steps = max(len(c) for c in columns)
    case_TxC = np.zeros((steps, len(columns)), dtype=np.float32)
    for d, values in enumerate(columns):
        case_TxC[: len(values), d] = values
    return case_TxC, label_ids[label]


def parse_ts(text: str, source: str = "<string>") -> TsData:
    """Parse the contents of a ``.ts`` file; ``source`` names it in error messages.

    Returns series as ``(T_i, C)`` float32 arrays (dimensions of unequal length within one case are
    right-padded with 0 to the longest). Raises :class:`DatasetError` naming the line for malformed
    input.
    """
    fields: dict = {}
    header: TsHeader | None = None
    label_ids: dict[str, int] = {}
    series: list[np.ndarray] = []
    labels: list[int] = []
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if header is None:
            if not line.startswith("@"):
                raise _fail(
                    source, line_no, "data before the @data line", "add the @ header and @data"
                )
            if line.lower() == "@data":
                header = TsHeader(**fields)
                if header.timestamps:
                    raise _fail(
                        source,
                        line_no,
                        "@timeStamps true files are not supported",
                        "convert the series to plain comma-separated values",
                    )
                if header.class_labels is None:
                    raise _fail(
                        source,
                        line_no,
                        "no '@classLabel true <labels>' header line",
                        "only labelled classification files are supported",
                    )
                label_ids = {name: i for i, name in enumerate(header.class_labels)}
            else:
                _parse_header_line(fields, line, source, line_no)
            continue
        case_TxC, label = _parse_case(line, header, label_ids, source, line_no)
        if series and case_TxC.shape[1] != series[0].shape[1]:
            raise _fail(
                source,
                line_no,
                f"case has {case_TxC.shape[1]} dimensions, earlier cases have {series[0].shape[1]}",
            )
        if header.equal_length and header.series_length and len(case_TxC) != header.series_length:
            raise _fail(
                source,
                line_no,
                f"series has {len(case_TxC)} values, the header says "
                f"@seriesLength {header.series_length}",
            )
        series.append(case_TxC)
        labels.append(label)
    if header is None:
        raise _fail(source, 0, "no @data line found", "is this really a .ts file?")
    if not series:
        raise _fail(source, 0, "no cases after @data")
    return TsData(header=header, series=tuple(series), labels=np.asarray(labels, dtype=np.int32))


def read_ts(path: str | os.PathLike) -> TsData:
    """Parse the ``.ts`` file at ``path`` (UTF-8)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise DatasetError(f"{path}: cannot read ({err}). Fix: check the path.") from err
    return parse_ts(text, source=str(path))


def pad_series(series: tuple[np.ndarray, ...] | list[np.ndarray], length: int | None = None):
    """Right-pad ``(T_i, C)`` series with zeros to ``(N, T, C)``; return ``(x_NxTxC, lengths_N)``.

    ``length`` defaults to the longest series; a longer series raises ValueError.
    """
    lengths_N = np.asarray([len(s) for s in series], dtype=np.int32)
    steps = int(lengths_N.max()) if length is None else int(length)
    if len(series) and lengths_N.max() > steps:
        raise ValueError(
            f"pad_series: a series has {lengths_N.max()} steps, more than length={steps}."
        )
    channels = series[0].shape[1] if len(series) else 1
    x_NxTxC = np.zeros((len(series), steps, channels), dtype=np.float32)
    for i, s in enumerate(series):
        x_NxTxC[i, : len(s)] = s
    return x_NxTxC, lengths_N
