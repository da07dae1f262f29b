"""Epoch progress: a rich progress bar on a terminal, one plain log line per epoch otherwise."""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("conv1dx.train")


def format_metrics(row: dict, keys=None) -> str:
    keys = keys or [k for k in row if k not in ("epoch",) and not k.startswith("seed")]
    parts = []
    for key in keys:
        value = row.get(key)
        if isinstance(value, float):
            parts.append(f"{key}={value:.4g}")
        elif isinstance(value, int):
            parts.append(f"{key}={value}")
    return " ".join(parts)


class EpochProgress:
    """`start(total, done)`, `advance(row)` after each epoch, `close()`."""

    def __init__(self, enabled: bool | None = None):
        self.interactive = sys.stdout.isatty() if enabled is None else enabled
        self._progress = None
        self._task = None

    def start(self, total: int, done: int = 0) -> None:
        if self.interactive:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("epoch"), MofNCompleteColumn(), BarColumn(),
                                      TimeElapsedColumn(), TextColumn("{task.description}"))
            self._progress.start()
            self._task = self._progress.add_task("", total=total, completed=done)

    def advance(self, row: dict, total: int) -> None:
        text = format_metrics(row, [k for k in row if k.startswith(("train_", "val_", "lr", "seconds"))
                                    and not k.endswith("_physical")])
        if self._progress is not None:
            self._progress.update(self._task, advance=1, description=text)
        else:
            log.info("epoch %d/%d %s", row["epoch"], total, text)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
