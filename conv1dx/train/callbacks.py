"""Epoch-end decisions made on the host: early stopping (with restore-best) and reduce-on-plateau.

Both follow Keras' semantics and keep one counter per seed replica (arrays of shape (S,)), so replicas
trained together behave exactly like separate runs. Their state is plain data, saved in checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _improved(value, best, mode, min_delta):
    if mode == "min":
        return value < best - min_delta
    return value > best + min_delta


def _check(monitor: str, mode: str) -> None:
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}.")
    if not monitor:
        raise ValueError("monitor must name a logged metric, e.g. 'val_loss' or 'val_accuracy'.")


@dataclass
class EarlyStopping:
    """Stop a replica after `patience` epochs without improving `monitor` by more than `min_delta`."""

    monitor: str = "val_loss"
    mode: str = "min"
    patience: int = 5
    min_delta: float = 0.0
    restore_best_weights: bool = True
    best: np.ndarray | None = field(default=None, repr=False)
    best_epoch: np.ndarray | None = field(default=None, repr=False)
    wait: np.ndarray | None = field(default=None, repr=False)
    stopped: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        _check(self.monitor, self.mode)
        if self.patience < 0:
            raise ValueError(f"early_stopping.patience must be >= 0, got {self.patience}.")

    def start(self, replicas: int) -> None:
        self.best = np.full(replicas, np.inf if self.mode == "min" else -np.inf)
        self.best_epoch = np.full(replicas, -1)
        self.wait = np.zeros(replicas, int)
        self.stopped = np.zeros(replicas, bool)

    def update(self, epoch: int, values: np.ndarray) -> np.ndarray:
        """Record this epoch's monitored values; returns which replicas improved (their best changed)."""
        improved = np.array([_improved(v, b, self.mode, self.min_delta)
                             for v, b in zip(values, self.best, strict=True)]) & ~self.stopped
        self.best = np.where(improved, values, self.best)
        self.best_epoch = np.where(improved, epoch, self.best_epoch)
        self.wait = np.where(improved, 0, self.wait + (~self.stopped))
        self.stopped = self.stopped | (self.wait > self.patience - 1) & (self.wait >= max(self.patience, 1))
        return improved

    def state_dict(self) -> dict:
        return {k: np.asarray(getattr(self, k)).tolist() for k in ("best", "best_epoch", "wait", "stopped")}

    def load_state_dict(self, state: dict) -> None:
        for key, dtype in (("best", float), ("best_epoch", int), ("wait", int), ("stopped", bool)):
            setattr(self, key, np.asarray(state[key], dtype))


@dataclass
class ReduceLROnPlateau:
    """Multiply a replica's learning rate by `factor` after `patience` epochs without improvement."""

    monitor: str = "val_loss"
    mode: str = "min"
    factor: float = 0.1
    patience: int = 10
    min_delta: float = 1e-4
    cooldown: int = 0
    min_lr: float = 0.0
    best: np.ndarray | None = field(default=None, repr=False)
    wait: np.ndarray | None = field(default=None, repr=False)
    cooldown_left: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        _check(self.monitor, self.mode)
        if not 0 < self.factor < 1:
            raise ValueError(f"reduce_lr_on_plateau.factor must be in (0, 1), got {self.factor}.")

    def start(self, replicas: int) -> None:
        self.best = np.full(replicas, np.inf if self.mode == "min" else -np.inf)
        self.wait = np.zeros(replicas, int)
        self.cooldown_left = np.zeros(replicas, int)

    def update(self, values: np.ndarray, scale: np.ndarray, base_lr: float) -> np.ndarray:
        """New learning-rate scale per replica after this epoch's monitored `values`."""
        scale = np.array(scale, np.float64, copy=True)
        for i, value in enumerate(values):
            if self.cooldown_left[i] > 0:
                self.cooldown_left[i] -= 1
                self.wait[i] = 0
            if _improved(value, self.best[i], self.mode, self.min_delta):
                self.best[i], self.wait[i] = value, 0
            elif self.cooldown_left[i] <= 0:
                self.wait[i] += 1
                if self.wait[i] >= self.patience:
                    floor = self.min_lr / base_lr if base_lr > 0 else 0.0
                    scale[i] = max(scale[i] * self.factor, floor)
                    self.cooldown_left[i], self.wait[i] = self.cooldown, 0
        return scale

    def state_dict(self) -> dict:
        return {k: np.asarray(getattr(self, k)).tolist() for k in ("best", "wait", "cooldown_left")}

    def load_state_dict(self, state: dict) -> None:
        self.best = np.asarray(state["best"], float)
        self.wait = np.asarray(state["wait"], int)
        self.cooldown_left = np.asarray(state["cooldown_left"], int)
