"""`train(cfg) -> dict`: the whole training interface, used by the CLI, sweeps, notebooks and tests.

`prepare` (session.py) loads the dataset onto the device, builds R seed replicas of the model and
compiles one training epoch and one evaluation, each a single `lax.scan`. `train` then runs epochs with
validation, early stopping, reduce-on-plateau, checkpoints and logs, and evaluates the final (or best)
weights. Everything a run writes goes to `cfg.paths.output_dir` (Hydra's run directory under the CLI).
"""

from __future__ import annotations

import json
import logging
import time

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import DictConfig

from conv1dx.train import replicas as rep
from conv1dx.train.checkpoint import Checkpointer, CheckpointSchedule
from conv1dx.train.config_check import check_config
from conv1dx.train.metric_log import MetricLog
from conv1dx.train.optim import current_learning_rate, lr_scale, with_lr_scale
from conv1dx.train.plots import plot_curves
from conv1dx.train.progress import EpochProgress
from conv1dx.train.report import epoch_row, final_report
from conv1dx.train.run_files import clear_previous_run, write_atomically, write_run_files
from conv1dx.train.session import Session, prepare

log = logging.getLogger("conv1dx.train")


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN/Inf loss or gradient; the last finite state was checkpointed."""


def train(cfg: DictConfig) -> dict:
    """Train, validate and test the configured model; returns the final metrics (see `final_report`)."""
    check_config(cfg)
    session = prepare(cfg)
    run_dir, trainer = session.run_dir, cfg.trainer
    run_dir.mkdir(parents=True, exist_ok=True)
    if not trainer.resume:
        clear_previous_run(run_dir)
    write_run_files(session)
    metric_log = MetricLog(run_dir, tensorboard=cfg.logger.tensorboard)
    checkpointer = Checkpointer(run_dir / "checkpoints", max_to_keep=trainer.checkpoint.max_to_keep)
    states = session.states
    best = jax.tree.map(jnp.copy, states) if session.keep_best else None  # own buffers: states are donated
    start_epoch = 0
    if trainer.resume and checkpointer.latest_epoch() is not None:
        start_epoch, states, best = _resume(session, checkpointer, states, best)
    metric_log.resume(start_epoch)
    progress_bar = EpochProgress(cfg.logger.progress)
    progress_bar.start(trainer.epochs, start_epoch)
    try:
        epoch, states, best = _fit(session, states, best, start_epoch, metric_log, checkpointer,
                                   progress_bar)
    finally:
        progress_bar.close()
        metric_log.close()
    report = _final_evaluation(session, best if session.keep_best else states, metric_log.rows, epoch)
    write_atomically(run_dir / "report.json", json.dumps(report, indent=2))
    if cfg.logger.plots:
        plot_curves(metric_log.rows, run_dir / "curves.png")
    checkpointer.close()
    log.info("finished %s: %s", run_dir, {k: v for k, v in report.items() if isinstance(v, float)})
    return report


def _fit(session: Session, states, best, start_epoch, metric_log, checkpointer, progress_bar):
    """The epoch loop; returns (last epoch run, states, best states)."""
    trainer, seeds, data = session.cfg.trainer, session.seeds, session.data
    early, plateau = session.early, session.plateau
    train_split = data.splits["train"]
    examples = (trainer.steps_per_epoch * trainer.batch_size if trainer.steps_per_epoch is not None
                else train_split.num_examples)
    keys = [jax.random.key(seed) for seed in seeds]
    active = ~early.stopped if early is not None else np.ones(len(seeds), bool)
    saver = CheckpointSchedule(trainer.checkpoint.every, trainer.checkpoint.every_seconds)
    epoch = start_epoch
    for epoch in range(start_epoch + 1, trainer.epochs + 1):
        if not active.any():
            epoch -= 1
            break
        began = time.perf_counter()
        epoch_keys = rep.stack([jax.random.fold_in(key, epoch) for key in keys])
        states, train_sums = session.epoch_fn(states, train_split.data, epoch_keys, jnp.asarray(active))
        sums = {"train": jax.device_get(train_sums)}
        train_seconds = time.perf_counter() - began
        for name, evaluate in session.evaluators.items():
            sums[name] = jax.device_get(evaluate(states, data.splits[name].data))
        row = epoch_row(epoch, sums, data.metrics, seeds,
                        lr=np.asarray(jax.device_get(current_learning_rate(states.opt_state))),
                        seconds=time.perf_counter() - began, train_seconds=train_seconds,
                        examples=examples)
        _check_finite(states, seeds, epoch, checkpointer, session.run_dir)
        if early is not None:
            improved = early.update(epoch, _monitored(row, early.monitor, seeds)) & active
            if session.keep_best:
                best = rep.select(improved, states, best)
            active = active & ~early.stopped
        if plateau is not None:
            scale = plateau.update(_monitored(row, plateau.monitor, seeds),
                                   np.asarray(lr_scale(states.opt_state)), session.optimizer.learning_rate)
            states = states._replace(opt_state=with_lr_scale(states.opt_state, scale))
        metric_log.append(row)
        progress_bar.advance(row, trainer.epochs)
        if saver.due(epoch, last=epoch == trainer.epochs or not active.any()):
            _save(checkpointer, epoch, states, best, early, plateau)
    return epoch, states, best


def _resume(session: Session, checkpointer: Checkpointer, states, best):
    epoch = checkpointer.latest_epoch()
    saved, progress = checkpointer.restore(epoch, {"states": states, "best": best or states})
    if progress.get("nonfinite"):
        raise ValueError(f"The newest checkpoint of {session.run_dir} was saved when the loss became "
                         "non-finite; start a fresh run (trainer.resume=false) with a lower learning rate.")
    for name, callback in (("early_stopping", session.early), ("plateau", session.plateau)):
        if callback is not None:
            callback.load_state_dict(progress[name])
    log.info("resuming %s from epoch %d", session.run_dir, epoch)
    put = session.parallel.put
    return epoch, put(saved["states"]), put(saved["best"]) if session.keep_best else None


def _final_evaluation(session: Session, final, rows, epoch) -> dict:
    """Metrics of the final weights on the test split (or validation, or train when that is all)."""
    split = next(name for name in ("test", "val", "train") if name in session.data.splits)
    sums = jax.device_get(session.compile_test(split)(final, session.data.splits[split].data))
    report = final_report(split, sums, session.data, session.seeds, rows, session.early, epoch)
    report["run_dir"] = str(session.run_dir)
    return report


def _monitored(row: dict, monitor: str, seeds: list[int]) -> np.ndarray:
    if len(seeds) == 1:
        if monitor not in row:
            raise ValueError(f"monitor {monitor!r} is not a logged metric; logged: {sorted(row)}.")
        return np.asarray([row[monitor]])
    return np.asarray([row[f"seed{seed}/{monitor}"] for seed in seeds])


def _save(checkpointer, epoch, states, best, early, plateau, **extra) -> None:
    progress = {"epoch": epoch,
                "early_stopping": early.state_dict() if early is not None else None,
                "plateau": plateau.state_dict() if plateau is not None else None, **extra}
    checkpointer.save(epoch, {"states": states, "best": best if best is not None else states}, progress)


def _check_finite(states, seeds, epoch, checkpointer, run_dir) -> None:
    skipped = np.asarray(jax.device_get(states.nonfinite))
    if skipped.any():
        bad = [seed for seed, n in zip(seeds, skipped, strict=True) if n]
        _save(checkpointer, epoch, states, None, None, None, nonfinite=True)
        raise NonFiniteLossError(
            f"Non-finite loss or gradients at epoch {epoch} (seed(s) {bad}: {skipped.max()} step(s) "
            f"skipped). The last finite weights are saved in {run_dir / 'checkpoints'}. Lower "
            "optimizer.learning_rate, set optimizer.clip_norm (e.g. 1.0), or check the inputs for NaN."
        )
