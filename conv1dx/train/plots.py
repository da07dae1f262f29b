"""Training-curve plots (PNG) from the metric rows of a run."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_curves(rows: list[dict], path: Path) -> Path | None:
    """One panel per metric (loss first) with train and validation curves; returns the PNG path."""
    if not rows:
        return None
    names = sorted({key[len("train_"):] for row in rows for key in row if key.startswith("train_")},
                   key=lambda name: (name != "loss", name))
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), squeeze=False)
    epochs = [row["epoch"] for row in rows]
    for ax, name in zip(axes[0], names, strict=True):
        for prefix, style in (("train_", "o-"), ("val_", "s-")):
            values = [row.get(prefix + name) for row in rows]
            if any(v is not None for v in values):
                ax.plot(epochs, values, style, markersize=3, label=prefix.rstrip("_"))
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
