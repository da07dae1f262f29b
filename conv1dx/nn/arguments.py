"""Checks of the layers' constructor arguments, shared so that every layer accepts the same forms.

Each check returns the normalized value or raises a ValueError that names the layer (`who`), the
argument and what it accepts.
"""

from __future__ import annotations

import numbers

DATA_FORMATS = ("channels_last", "channels_first")


def positive_int(who: str, argument: str, value, minimum: int = 1) -> int:
    """An int `>= minimum` from an int, a NumPy integer or a 1-tuple/list (as Keras' 1D layers)."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(
            f"{who}: {argument} must be an integer >= {minimum} (or a 1-tuple of one), "
            f"got {value!r}."
        )
    return int(value)


def data_format(who: str, value) -> str:
    """'channels_last' (inputs `x_BxTxC`) or 'channels_first' (inputs `x_BxCxT`)."""
    if value not in DATA_FORMATS:
        raise ValueError(
            f"{who}: data_format must be 'channels_last' (batch, steps, features) or "
            f"'channels_first' (batch, features, steps), got {value!r}."
        )
    return value


def dropout_rate(who: str, argument: str, value) -> float:
    """A fraction of units to drop, in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(
            f"{who}: {argument} must be a float in [0, 1) (the fraction of units to drop), "
            f"got {value!r}."
        )
    return float(value)
