"""Per-epoch metric logs of a run: `metrics.jsonl`, `metrics.csv` and TensorBoard event files.

Rows are flat dicts of numbers (one per epoch; `seed<i>/...` keys for replicas). On resume the log is cut
back to the checkpointed epoch so a resumed run's files equal an uninterrupted run's.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path


class MetricLog:
    def __init__(self, run_dir: Path, *, tensorboard: bool = True):
        self.jsonl = run_dir / "metrics.jsonl"
        self.csv = run_dir / "metrics.csv"
        self.rows: list[dict] = []
        self._columns: list[str] | None = None
        self._writer = None
        if tensorboard:  # imported only when used: tensorboardX imports torch when torch is installed
            from tensorboardX import SummaryWriter

            self._writer = SummaryWriter(str(run_dir / "tensorboard"))

    def resume(self, epochs_done: int) -> None:
        """Reload the rows of epochs 1..epochs_done, dropping any written after the checkpoint."""
        if self.jsonl.exists():
            rows = [json.loads(line) for line in self.jsonl.read_text().splitlines() if line.strip()]
            self.rows = [row for row in rows if row["epoch"] <= epochs_done]
        self._rewrite()

    def append(self, row: dict) -> None:
        self.rows.append(row)
        with self.jsonl.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if self._columns is not None and list(row) == self._columns:
            with self.csv.open("a", newline="") as f:
                csv.DictWriter(f, fieldnames=self._columns).writerow(row)
        else:
            self._write_csv()  # new columns: rewrite with the full header
        if self._writer is not None:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    self._writer.add_scalar(key, value, row["epoch"])
            self._writer.flush()

    def _rewrite(self) -> None:
        self.jsonl.write_text("".join(json.dumps(row) + "\n" for row in self.rows))
        self._write_csv()

    def _write_csv(self) -> None:
        columns = list(dict.fromkeys(key for row in self.rows for key in row))
        self._columns = columns
        with self.csv.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.rows)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
