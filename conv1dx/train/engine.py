"""`train(cfg) -> dict`: the whole training interface, used by the CLI, sweeps, notebooks and tests.

It loads the dataset onto the device, builds R seed replicas of the model, compiles one training epoch
and one evaluation (each a single `lax.scan`, vmapped over replicas), and runs epochs with validation,
early stopping, reduce-on-plateau, checkpoints and logs. Everything a run writes goes to
`cfg.paths.output_dir` (Hydra's run directory under the CLI).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import hydra.utils
import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import DictConfig, OmegaConf

from conv1dx import nn
from conv1dx.train import replicas as rep
from conv1dx.train.checkpoint import Checkpointer, CheckpointSchedule
from conv1dx.train.config_check import check_config
from conv1dx.train.data_source import TrainingData
from conv1dx.train.facts import dataset_facts
from conv1dx.train.metric_log import MetricLog
from conv1dx.train.optim import lr_scale, with_lr_scale
from conv1dx.train.parallel import DataParallel
from conv1dx.train.plots import plot_curves
from conv1dx.train.progress import EpochProgress
from conv1dx.train.report import epoch_row, final_report
from conv1dx.train.run_info import run_info
from conv1dx.train.steps import StepConfig

log = logging.getLogger("conv1dx.train")


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN/Inf loss or gradient; the last finite state was checkpointed."""


def _instantiate(node):
    return hydra.utils.instantiate(node, _convert_="all") if node is not None else None


def train(cfg: DictConfig) -> dict:
    """Train, validate and test the configured model; returns the final metrics (see `final_report`)."""
    check_config(cfg)
    trainer = cfg.trainer
    run_dir = _output_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    seeds = [int(cfg.seed) + i for i in range(int(trainer.seeds))]
    parallel = DataParallel.create(trainer.data_parallel, trainer.batch_size)

    dataset = _instantiate(cfg.dataset)
    data = TrainingData.from_dataset(dataset, validation_split=trainer.validation_split,
                                     put=parallel.put)
    with dataset_facts(data.facts):
        resolved = OmegaConf.to_container(cfg, resolve=True)
    layers = resolved["model"]["layers"]
    models = {}

    def make_model(seed):
        models.setdefault(seed, nn.build_model(layers, data.input_shape, seed=seed))
        return models.pop(seed)

    models[seeds[0]] = make_model(seeds[0])  # builds (and validates) before anything compiles
    summary_text = nn.summary(models[seeds[0]], data.input_shape, print_fn=None)
    loss = _instantiate(resolved["model"]["loss"])
    optimizer = _instantiate(resolved["optimizer"])
    tx = optimizer.build()
    graphdef, states = rep.init_replicas(make_model, seeds, tx)
    states = parallel.put(states)

    config = StepConfig(graphdef=graphdef, tx=tx, loss=loss, metrics=data.metrics, fetch=data.fetch,
                        class_weights=_class_weights(trainer.class_weight, data),
                        constrained=nn.has_constraints(graphdef_model(graphdef, states)),
                        batch_sharding=parallel.batch_sharding)
    train_split = data.splits["train"]
    epoch_fn = rep.compile_epoch(config, len(seeds), num_examples=train_split.num_examples,
                                 batch_size=trainer.batch_size, steps_per_epoch=trainer.steps_per_epoch,
                                 strategy=trainer.replica_strategy)
    evaluators = {name: rep.compile_evaluate(config, len(seeds), num_examples=split.num_examples,
                                             batch_size=min(trainer.eval_batch_size, split.num_examples),
                                             strategy=trainer.replica_strategy)
                  for name, split in data.splits.items() if name != "train"}

    early = _instantiate(resolved["trainer"]["early_stopping"])
    plateau = _instantiate(resolved["trainer"]["reduce_lr_on_plateau"])
    for callback in (early, plateau):
        if callback is not None:
            callback.start(len(seeds))
            if not callback.monitor.startswith("train_") and "val" not in data.splits:
                raise ValueError(
                    f"{type(callback).__name__} monitors {callback.monitor!r} but there is no validation "
                    "split; set trainer.validation_split (e.g. 0.2) or monitor a train_ metric.")
    keep_best = early is not None and early.restore_best_weights
    best = jax.tree.map(jnp.copy, states) if keep_best else None  # its own buffers: states are donated

    if not trainer.resume:
        _clear_previous_run(run_dir)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(resolved)))
    (run_dir / "run_info.json").write_text(json.dumps(run_info(seeds), indent=2))
    (run_dir / "summary.txt").write_text(summary_text + "\n")
    (run_dir / "model.json").write_text(json.dumps(
        {"layers": layers, "input_shape": list(data.input_shape), "seeds": seeds,
         "restores_best": keep_best}, indent=2))
    metric_log = MetricLog(run_dir, tensorboard=cfg.logger.tensorboard)
    checkpointer = Checkpointer(run_dir / "checkpoints", max_to_keep=trainer.checkpoint.max_to_keep)
    start_epoch = 0
    if trainer.resume and checkpointer.latest_epoch() is not None:
        start_epoch = checkpointer.latest_epoch()
        saved, progress = checkpointer.restore(start_epoch, {"states": states, "best": best or states})
        states, best = parallel.put(saved["states"]), parallel.put(saved["best"]) if keep_best else None
        for name, callback in (("early_stopping", early), ("plateau", plateau)):
            if callback is not None:
                callback.load_state_dict(progress[name])
        log.info("resuming %s from epoch %d", run_dir, start_epoch)
    metric_log.resume(start_epoch)

    saver = CheckpointSchedule(trainer.checkpoint.every, trainer.checkpoint.every_seconds)
    keys = [jax.random.key(seed) for seed in seeds]
    active = ~early.stopped if early is not None else np.ones(len(seeds), bool)
    progress_bar = EpochProgress(cfg.logger.progress)
    progress_bar.start(trainer.epochs, start_epoch)
    epoch = start_epoch
    try:
        for epoch in range(start_epoch + 1, trainer.epochs + 1):
            if not active.any():
                break
            began = time.perf_counter()
            epoch_keys = rep.stack([jax.random.fold_in(key, epoch) for key in keys])
            states, train_sums = epoch_fn(states, train_split.data, epoch_keys, jnp.asarray(active))
            sums = {"train": jax.device_get(train_sums)}
            for name, evaluate in evaluators.items():
                if name == "val":
                    sums[name] = jax.device_get(evaluate(states, data.splits[name].data))
            seconds = time.perf_counter() - began
            row = epoch_row(epoch, sums, data.metrics, seeds, lr=_learning_rates(states, optimizer),
                            seconds=seconds, examples=_examples(trainer, train_split))
            _check_finite(states, sums, seeds, epoch, checkpointer, run_dir)
            if early is not None:
                improved = early.update(epoch, _monitored(row, early.monitor, seeds)) & active
                if keep_best:
                    best = rep.select(improved, states, best)
                active = active & ~early.stopped
            if plateau is not None:
                scale = plateau.update(_monitored(row, plateau.monitor, seeds),
                                       np.asarray(lr_scale(states.opt_state)), optimizer.learning_rate)
                states = states._replace(opt_state=with_lr_scale(states.opt_state, scale))
            metric_log.append(row)
            progress_bar.advance(row, trainer.epochs)
            if saver.due(epoch, last=epoch == trainer.epochs or not active.any()):
                _save(checkpointer, epoch, states, best, early, plateau)
    finally:
        progress_bar.close()
        metric_log.close()

    final = best if keep_best else states
    test_name = next(name for name in ("test", "val", "train") if name in data.splits)
    test_split = data.splits[test_name]
    evaluate = rep.compile_evaluate(config, len(seeds), num_examples=test_split.num_examples,
                                    batch_size=min(trainer.eval_batch_size, test_split.num_examples),
                                    confusion=True, strategy=trainer.replica_strategy)
    test_sums = jax.device_get(evaluate(final, test_split.data))
    report = final_report(test_name, test_sums, data, seeds, metric_log.rows, early, epoch)
    report["run_dir"] = str(run_dir)
    _write_atomically(run_dir / "report.json", json.dumps(report, indent=2))
    if cfg.logger.plots:
        plot_curves(metric_log.rows, run_dir / "curves.png")
    checkpointer.close()
    log.info("finished %s: %s", run_dir, {k: v for k, v in report.items() if isinstance(v, float)})
    return report


def _output_dir(cfg) -> Path:
    """`paths.output_dir` (Hydra's run directory under the CLI); outside Hydra, when it cannot be
    resolved, a new timestamped directory under `paths.log_dir`."""
    from omegaconf.errors import InterpolationResolutionError

    try:
        chosen = cfg.paths.output_dir
    except InterpolationResolutionError:
        chosen = None
    if chosen is None:
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
        chosen = Path(cfg.paths.get("log_dir", "outputs")) / cfg.get("task_name", "train") / "runs" / stamp
        log.info("paths.output_dir is only set by the Hydra CLI; writing this run to %s", chosen)
    return Path(chosen).absolute()


def graphdef_model(graphdef, states):
    """A live model of replica 0 (for inspection: constraints, summaries)."""
    from flax import nnx

    first = rep.unstack(states, 0)
    return nnx.merge(graphdef, first.params, first.rest)


def _class_weights(class_weight, data: TrainingData):
    if class_weight is None:
        return None
    if data.facts.get("num_classes") is None:
        raise ValueError("trainer.class_weight applies to classification datasets only.")
    weights = [1.0] * int(data.facts["num_classes"])
    for key, value in dict(class_weight).items():
        index = int(key)
        if not 0 <= index < len(weights):
            raise ValueError(f"trainer.class_weight has class {key}, but classes are 0..{len(weights) - 1}.")
        weights[index] = float(value)
    return tuple(weights)


def _learning_rates(states, optimizer) -> np.ndarray:
    from conv1dx.train.optim import current_learning_rate

    return np.asarray(jax.device_get(current_learning_rate(states.opt_state)))


def _examples(trainer, split) -> int:
    if trainer.steps_per_epoch is not None:
        return trainer.steps_per_epoch * trainer.batch_size
    return split.num_examples


def _monitored(row: dict, monitor: str, seeds: list[int]) -> np.ndarray:
    if len(seeds) == 1:
        if monitor not in row:
            raise ValueError(f"monitor {monitor!r} is not a logged metric; logged: {sorted(row)}.")
        return np.asarray([row[monitor]])
    return np.asarray([row[f"seed{seed}/{monitor}"] for seed in seeds])


def _save(checkpointer, epoch, states, best, early, plateau) -> None:
    progress = {"epoch": epoch,
                "early_stopping": early.state_dict() if early is not None else None,
                "plateau": plateau.state_dict() if plateau is not None else None}
    checkpointer.save(epoch, {"states": states, "best": best if best is not None else states}, progress)


def _check_finite(states, sums, seeds, epoch, checkpointer, run_dir) -> None:
    skipped = np.asarray(jax.device_get(states.nonfinite))
    if skipped.any():
        bad = [seed for seed, n in zip(seeds, skipped, strict=True) if n]
        checkpointer.save(epoch, {"states": states, "best": states}, {"epoch": epoch, "nonfinite": True,
                                                                       "early_stopping": None,
                                                                       "plateau": None})
        raise NonFiniteLossError(
            f"Non-finite loss or gradients at epoch {epoch} (seed(s) {bad}: {skipped.max()} step(s) "
            f"skipped). The last finite weights are saved in {run_dir / 'checkpoints'}. Lower "
            "optimizer.learning_rate, set optimizer.clip_norm (e.g. 1.0), or check the inputs for NaN."
        )


_RUN_OUTPUTS = ("checkpoints", "tensorboard", "metrics.jsonl", "metrics.csv", "report.json", "curves.png")


def _clear_previous_run(run_dir: Path) -> None:
    """A fresh (not resumed) run into a used directory replaces that run's outputs, never mixes them."""
    for name in _RUN_OUTPUTS:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(text)
    os.replace(partial, path)
