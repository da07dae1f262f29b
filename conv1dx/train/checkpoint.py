"""Orbax checkpoints of a run: the TrainState(s) plus JSON bookkeeping, one per saved epoch.

A run directory's `checkpoints/<epoch>/` holds `state` (the replicas' TrainState, and the best weights
when early stopping restores them) and `progress` (epoch, callback counters, metric history length), so
an interrupted run resumes exactly where its last checkpoint left it.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import orbax.checkpoint as ocp


class Checkpointer:
    """Save and restore `{"state": pytree, "progress": json}` under `directory`, keeping `max_to_keep`."""

    def __init__(self, directory: str | Path, max_to_keep: int = 2):
        self.directory = Path(directory).absolute()
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
        )

    def latest_epoch(self) -> int | None:
        """The newest saved epoch (1-based), or None when nothing was saved."""
        return self._manager.latest_step()

    def save(self, epoch: int, state, progress: dict) -> None:
        self._manager.save(
            epoch,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                    progress=ocp.args.JsonSave(progress)),
            force=True,
        )
        self._manager.wait_until_finished()

    def restore(self, epoch: int, like) -> tuple[object, dict]:
        """(state, progress) of `epoch`; `like` is a pytree of the same structure (values are ignored)."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        restored = self._manager.restore(
            epoch,
            args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                    progress=ocp.args.JsonRestore()),
        )
        return restored["state"], dict(restored["progress"])

    def close(self) -> None:
        self._manager.close()


class CheckpointSchedule:
    """When to save: every `every` epochs, and/or once `every_seconds` have passed since the last save,
    and always after the last epoch (so an interrupted run loses at most that much work)."""

    def __init__(self, every: int | None, every_seconds: float | None):
        self.every, self.every_seconds = every, every_seconds
        self._last = time.monotonic()

    def due(self, epoch: int, *, last: bool) -> bool:
        now = time.monotonic()
        due = last or (self.every is not None and epoch % self.every == 0) or (
            self.every_seconds is not None and now - self._last >= self.every_seconds)
        if due:
            self._last = now
        return due
