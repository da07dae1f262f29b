"""Lookback windows over one long multivariate series, gathered on the accelerator.

This is the windowing of the Jena temperature-forecasting example (Chollet, *Deep Learning with Python*,
section 6.3), written as index arithmetic so that a batch of windows is gathered inside a jitted step from
one device-resident ``(T, C)`` array instead of materializing every window on the host.

For a target row ``r`` (the article's ``rows[j]``):

  * ``x[n] = series[r - lookback : r : step]``  -> ``(L, C)`` with ``L = ceil(lookback / step)``;
  * ``y[n] = series[r + delay, target_col]``    -> scalar.

Valid rows of a split ``[min_index, max_index)`` are ``min_index + lookback <= r < max_index``, with
``max_index=None`` meaning ``num_rows - delay - 1`` (exactly the article's generator).

:func:`window_starts` and :func:`gather_windows` are the pure functions; :class:`WindowedSeries` bundles
a normalized series with its split ranges, :class:`WindowSpec` and statistics, and is what
``conv1dx.data.jena.load_jena`` returns.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np


def window_length(lookback: int, step: int) -> int:
    """Number of sampled steps ``L`` in a window: ``len(range(-lookback, 0, step))``."""
    _check_spec(lookback, step, 0)
    return -(-lookback // step)


def _check_spec(lookback: int, step: int, delay: int) -> None:
    if int(lookback) != lookback or lookback < 1:
        raise ValueError(f"lookback must be a positive integer number of rows, got {lookback!r}.")
    if int(step) != step or step < 1:
        raise ValueError(f"step must be a positive integer number of rows, got {step!r}.")
    if int(delay) != delay or delay < 0:
        raise ValueError(f"delay must be a non-negative integer number of rows, got {delay!r}.")


def window_starts(
    min_index: int,
    max_index: int | None,
    lookback: int,
    delay: int,
    *,
    num_rows: int | None = None,
) -> np.ndarray:
    """Valid target rows ``(N,)`` int32 of the split ``[min_index, max_index)``, in time order.

    Row ``r`` is valid when its whole lookback lies in the split (``r - lookback >= min_index``) and
    ``r < max_index``; this is the article's ``range(min_index + lookback, max_index)``. ``max_index=None``
    means ``num_rows - delay - 1`` (the article's default) and then needs ``num_rows``. With ``num_rows``
    given, rows whose target ``r + delay`` would fall past the series end are an error.
    """
    _check_spec(lookback, 1, delay)
    if max_index is None:
        if num_rows is None:
            raise ValueError("window_starts: max_index=None needs num_rows (the series length).")
        max_index = num_rows - delay - 1
    if min_index < 0 or max_index < 0:
        raise ValueError(f"window_starts: indices must be >= 0, got [{min_index}, {max_index}).")
    if num_rows is not None and max_index - 1 + delay >= num_rows:
        raise ValueError(
            f"window_starts: the last row {max_index - 1} + delay {delay} is past the series end "
            f"({num_rows} rows); lower max_index to at most {num_rows - delay}."
        )
    first = min_index + lookback
    if first >= max_index:
        raise ValueError(
            f"window_starts: split [{min_index}, {max_index}) holds no window with lookback {lookback}; "
            "it needs more than lookback rows."
        )
    return np.arange(first, max_index, dtype=np.int32)


@functools.partial(jax.jit, static_argnames=("lookback", "step", "delay", "target_col"))
def gather_windows(
    series_TxC: jax.Array,
    rows_N: jax.Array,
    lookback: int,
    step: int,
    delay: int,
    target_col: int,
) -> tuple[jax.Array, jax.Array]:
    """Gather windows and targets for the target rows ``rows_N`` from ``series_TxC``.

    Returns ``x_NxLxC = series[rows - lookback : rows : step]`` and ``y_N = series[rows + delay,
    target_col]`` with ``L = ceil(lookback / step)``. Jitted with the window settings static; call it with
    a device-resident series and a ``(N,)`` int32 batch of rows (from :func:`window_starts`). Rows whose
    window or target leaves the series give NaN there (``jnp.take`` fill mode) rather than wrapping.
    """
    _check_spec(lookback, step, delay)
    offsets_L = jnp.arange(-lookback, 0, step, dtype=jnp.int32)
    rows_N = jnp.asarray(rows_N, dtype=jnp.int32)
    num_rows = series_TxC.shape[0]
    index_NxL = _no_wrap(rows_N[:, None] + offsets_L[None, :], num_rows)
    x_NxLxC = jnp.take(series_TxC, index_NxL, axis=0, mode="fill", fill_value=jnp.nan)
    target_T = series_TxC[:, target_col]
    y_N = jnp.take(
        target_T, _no_wrap(rows_N + delay, num_rows), axis=0, mode="fill", fill_value=jnp.nan
    )
    return x_NxLxC, y_N


def _no_wrap(index: jax.Array, num_rows: int) -> jax.Array:
    """Map negative indices past the end, so ``take``'s fill mode yields NaN instead of wrapping."""
    return jnp.where(index < 0, num_rows, index)


def last_step_rows(rows_N: np.ndarray, lookback: int, step: int) -> np.ndarray:
    """Row of the last sampled step of each window, ``rows - lookback + (L - 1) * step``, ``(N,)``.

    The article's common-sense forecast is ``samples[:, -1, target_col]``, i.e. the series at these rows.
    """
    return np.asarray(rows_N) - lookback + (window_length(lookback, step) - 1) * step


@dataclass(frozen=True)
class WindowSpec:
    """How windows are cut: ``lookback``/``step``/``delay`` in rows, ``target_col`` the predicted column."""

    lookback: int
    step: int
    delay: int
    target_col: int

    def __post_init__(self) -> None:
        _check_spec(self.lookback, self.step, self.delay)
        if int(self.target_col) != self.target_col or self.target_col < 0:
            raise ValueError(f"target_col must be a column index >= 0, got {self.target_col!r}.")

    @property
    def length(self) -> int:
        """Sampled steps per window, ``L = ceil(lookback / step)``."""
        return window_length(self.lookback, self.step)


@dataclass(eq=False)
class WindowedSeries:
    """One normalized long series plus split ranges and a window spec; windows are gathered on demand.

    * ``series`` ``(T, C)`` float32, already normalized with ``mean``/``std`` ``(C,)`` (train rows only);
    * ``ranges[split] = (min_index, max_index)`` in the article's sense (``max_index`` None = to the end);
    * ``rows(split)`` ``(N,)`` int32 valid target rows; ``gather(series, rows)`` -> ``x`` ``(N, L, C)``,
      ``y`` ``(N,)`` (jit-able; pass the device copy from ``device_series()``).

    Typical trainer use: ``s = ds.device_series()`` once, then per batch of rows (shuffled on the host or
    device) ``x, y = ds.gather(s, rows_B)`` inside the jitted step. Regression target units: multiply an
    error by ``std[target_col]`` (see :meth:`to_physical`) to report it in the column's units.
    """

    name: str
    series: np.ndarray
    ranges: dict[str, tuple[int, int | None]]
    spec: WindowSpec
    mean: np.ndarray
    std: np.ndarray
    feature_names: tuple[str, ...] = ()
    metadata: dict = field(default_factory=dict)
    task: str = "regression"
    num_classes: None = None

    def __post_init__(self) -> None:
        if self.series.ndim != 2:
            raise ValueError(
                f"WindowedSeries {self.name!r}: series must be (T, C), got {self.series.shape}."
            )
        if self.spec.target_col >= self.series.shape[1]:
            raise ValueError(
                f"WindowedSeries {self.name!r}: target_col {self.spec.target_col} is out of range for "
                f"{self.series.shape[1]} columns."
            )
        for split in self.ranges:
            self.rows(split)  # validates every range now rather than in the training loop

    @property
    def num_rows(self) -> int:
        return int(self.series.shape[0])

    @property
    def num_features(self) -> int:
        return int(self.series.shape[1])

    @property
    def window_shape(self) -> tuple[int, int]:
        """Per-example input shape ``(L, C)`` (no batch axis); also available as ``input_shape``."""
        return (self.spec.length, self.num_features)

    input_shape = window_shape

    def rows(self, split: str) -> np.ndarray:
        """Valid target rows ``(N,)`` int32 of ``split`` in time order (see :func:`window_starts`)."""
        if split not in self.ranges:
            raise KeyError(f"{self.name!r} has no split {split!r}; it has {sorted(self.ranges)}.")
        lo, hi = self.ranges[split]
        return window_starts(lo, hi, self.spec.lookback, self.spec.delay, num_rows=self.num_rows)

    def device_series(self, device=None) -> jax.Array:
        """The ``(T, C)`` series on the accelerator (one transfer; keep it and reuse it every step)."""
        return jax.device_put(self.series, device)

    def gather(self, series_TxC: jax.Array, rows_N: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``x`` ``(N, L, C)`` and ``y`` ``(N,)`` for target rows ``rows_N`` (:func:`gather_windows`)."""
        spec = self.spec
        return gather_windows(
            series_TxC, rows_N, spec.lookback, spec.step, spec.delay, spec.target_col
        )

    def to_physical(self, values: np.ndarray) -> np.ndarray:
        """Normalized target values -> the target column's units (``v * std + mean``)."""
        col = self.spec.target_col
        return np.asarray(values) * self.std[col] + self.mean[col]

    def common_sense_mae(self, split: str) -> dict[str, float]:
        """MAE of the "tomorrow = last observed value" forecast over all rows of ``split``.

        The article's baseline: ``preds = samples[:, -1, target_col]`` (the last *sampled* step of each
        window, row ``r - lookback + (L - 1) * step``) against ``y``. Returns the normalized MAE and the
        MAE in the target column's units (normalized MAE times ``std[target_col]``). The article averages
        over whole batches of 128 only, so it leaves out up to 127 final rows; this uses every row.
        """
        rows_N = self.rows(split)
        col = self.spec.target_col
        target_T = self.series[:, col].astype(np.float64)
        preds_N = target_T[last_step_rows(rows_N, self.spec.lookback, self.spec.step)]
        mae = float(np.mean(np.abs(preds_N - target_T[rows_N + self.spec.delay])))
        return {
            "mae": mae,
            "mae_physical": mae * float(self.std[col]),
            "num_rows": int(len(rows_N)),
        }

    def describe(self) -> str:
        """Multi-line summary: series shape, window spec, rows per split, target and its units."""
        spec = self.spec
        target = self.feature_names[spec.target_col] if self.feature_names else str(spec.target_col)
        lines = [
            f"dataset {self.name}: task=regression, series {self.series.shape} {self.series.dtype}, "
            f"window_shape={self.window_shape}",
            f"  windows: lookback={spec.lookback}, step={spec.step}, delay={spec.delay}, target={target!r}",
        ]
        for split, (lo, hi) in self.ranges.items():
            lines.append(f"  {split}: rows [{lo}, {hi}) -> {len(self.rows(split))} windows")
        for key in ("source", "citation"):
            if key in self.metadata:
                lines.append(f"  {key}: {self.metadata[key]}")
        return "\n".join(lines)
