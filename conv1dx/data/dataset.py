"""In-memory NumPy datasets: ``Split`` (one split's arrays) and ``ArrayDataset`` (splits + facts).

Shapes (N examples, T steps, C channels):
  * signals: ``x`` ``(N, T, C)`` float32; token ids: ``x`` ``(N, T)`` int32;
  * ``y`` ``(N,)`` int32 class ids (classification) or float32 targets (``(N,)`` or ``(N, ...)``);
  * ``lengths`` ``(N,)`` int32 for variable-length series right-padded to ``T`` (``None`` = all
    full);
  * ``extras`` per-example side arrays with leading axis N (e.g. ``subject`` ``(N,)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TASKS = ("classification", "regression")


@dataclass
class Split:
    """Arrays of one split; see the module docstring for shapes and dtypes."""

    x: np.ndarray
    y: np.ndarray
    lengths: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.x)
        if len(self.y) != n:
            raise ValueError(f"Split: x has {n} examples but y has {len(self.y)}; they must match.")
        if self.lengths is not None:
            self.lengths = np.asarray(self.lengths, dtype=np.int32)
            if self.lengths.shape != (n,):
                raise ValueError(
                    f"Split: lengths must have shape ({n},) like x's first axis, "
                    f"got {self.lengths.shape}."
                )
            steps = self.x.shape[1] if self.x.ndim >= 2 else 0
            if n and (self.lengths.min() < 0 or self.lengths.max() > steps):
                raise ValueError(f"Split: lengths must lie in [0, {steps}] (x has {steps} steps).")
        for key, value in self.extras.items():
            if len(value) != n:
                raise ValueError(f"Split: extras[{key!r}] has {len(value)} rows, expected {n}.")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def mask(self) -> np.ndarray:
        """``(N, T)`` bool: True on real steps, False on right padding (all True if no lengths)."""
        n, steps = self.x.shape[0], self.x.shape[1]
        if self.lengths is None:
            return np.ones((n, steps), dtype=bool)
        return np.arange(steps)[None, :] < self.lengths[:, None]

    def subset(self, index: np.ndarray | slice) -> Split:
        """The examples picked by ``index`` (index array, boolean mask or slice) as a new Split."""
        return Split(
            x=self.x[index],
            y=self.y[index],
            lengths=None if self.lengths is None else self.lengths[index],
            extras={k: v[index] for k, v in self.extras.items()},
        )


@dataclass
class ArrayDataset:
    """A dataset held in memory: named splits plus the facts a model and trainer need.

    ``num_classes`` is None for regression. ``class_names[i]`` names class id ``i``. ``metadata``
    holds dataset-specific facts (e.g. ``vocab_size`` and the fitted tokenizer for text, the true
    kernel for the toy sets, the source and citation).
    """

    name: str
    splits: dict[str, Split]
    num_classes: int | None
    class_names: tuple[str, ...] = ()
    task: str = "classification"
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(
                f"ArrayDataset {self.name!r}: task must be one of {TASKS}, got {self.task!r}."
            )
        if not self.splits:
            raise ValueError(f"ArrayDataset {self.name!r}: needs at least one split.")
        shapes = {name: split.x.shape[1:] for name, split in self.splits.items()}
        if len(set(shapes.values())) > 1:
            raise ValueError(
                f"ArrayDataset {self.name!r}: splits disagree on example shape: {shapes}."
            )
        self.class_names = tuple(self.class_names)

    def __getitem__(self, split: str) -> Split:
        if split not in self.splits:
            raise KeyError(f"{self.name!r} has no split {split!r}; it has {sorted(self.splits)}.")
        return self.splits[split]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Per-example shape of ``x`` without batch axis: ``(T, C)``, or ``(T,)`` for tokens."""
        return tuple(next(iter(self.splits.values())).x.shape[1:])

    @property
    def seq_len(self) -> int:
        """Number of steps T (the padded length for variable-length data)."""
        return self.input_shape[0]

    @property
    def num_channels(self) -> int:
        """Channels C of ``(T, C)`` signals; 1 for ``(T,)`` token ids."""
        shape = self.input_shape
        return shape[1] if len(shape) >= 2 else 1

    def describe(self) -> str:
        """Multi-line summary: task, splits, shapes, dtypes, lengths and class balance per split."""
        lines = [f"dataset {self.name}: task={self.task}"]
        if self.num_classes is not None:
            lines[0] += f", {self.num_classes} classes"
        lines[0] += f", input_shape={self.input_shape}"
        for name, split in self.splits.items():
            line = (
                f"  {name}: {len(split)} examples, x {tuple(split.x.shape)} {split.x.dtype}, "
                f"y {tuple(split.y.shape)} {split.y.dtype}"
            )
            if split.lengths is not None and len(split):
                line += f", lengths {int(split.lengths.min())}..{int(split.lengths.max())}"
            lines.append(line)
            if self.task == "classification" and self.num_classes:
                counts = np.bincount(split.y.astype(np.int64).ravel(), minlength=self.num_classes)
                names = self.class_names or tuple(str(i) for i in range(self.num_classes))
                balance = ", ".join(f"{n}={c}" for n, c in zip(names, counts, strict=False))
                lines.append(f"    classes: {balance}")
            for key, value in split.extras.items():
                lines.append(f"    extras[{key}]: {tuple(value.shape)} {value.dtype}")
        for key in ("source", "citation"):
            if key in self.metadata:
                lines.append(f"  {key}: {self.metadata[key]}")
        return "\n".join(lines)
