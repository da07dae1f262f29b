"""Everything a run needs before its first epoch, built from the config in one place.

`prepare(cfg)` loads the data onto the device, builds and validates the model for every seed, the
optimizer, the compiled epoch and evaluations, and the callbacks. Nothing here trains.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import hydra.utils
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from conv1dx import nn
from conv1dx.nn.conv_lowering import set_conv_lowering
from conv1dx.nn.embedding_conv import set_embedding_conv_fusion
from conv1dx.train import precision
from conv1dx.train import replicas as rep
from conv1dx.train.compilation_cache import use_compilation_cache
from conv1dx.train.data_source import TrainingData
from conv1dx.train.facts import dataset_facts
from conv1dx.train.parallel import DataParallel
from conv1dx.train.state import merge_model
from conv1dx.train.steps import StepConfig

log = logging.getLogger("conv1dx.train")


def instantiate(node):
    """A `_target_` node as an object (None stays None); containers arrive as plain Python."""
    return hydra.utils.instantiate(node, _convert_="all") if node is not None else None


@dataclass
class Session:
    cfg: DictConfig
    resolved: dict
    run_dir: Path
    seeds: list
    data: TrainingData
    parallel: DataParallel
    layers: list
    summary: str
    optimizer: object
    step_config: StepConfig
    states: object
    epoch_fn: object
    evaluators: dict
    early: object
    plateau: object

    @property
    def keep_best(self) -> bool:
        return self.early is not None and self.early.restore_best_weights

    def compile_test(self, split_name: str):
        """The final evaluation (with confusion matrix) over `split_name`."""
        split = self.data.splits[split_name]
        return rep.compile_evaluate(self.step_config, len(self.seeds), num_examples=split.num_examples,
                                    batch_size=min(self.cfg.trainer.eval_batch_size, split.num_examples),
                                    confusion=True, strategy=self.cfg.trainer.replica_strategy)


def output_dir(cfg) -> Path:
    """`paths.output_dir` (Hydra's run directory under the CLI); outside Hydra, when it cannot be
    resolved, a new timestamped directory under `paths.log_dir`."""
    try:
        chosen = cfg.paths.output_dir
    except InterpolationResolutionError:
        chosen = None
    if chosen is None:
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
        chosen = Path(cfg.paths.get("log_dir", "outputs")) / cfg.get("task_name", "train") / "runs" / stamp
        log.info("paths.output_dir is only set by the Hydra CLI; writing this run to %s", chosen)
    return Path(chosen).absolute()


def class_weights(class_weight, data: TrainingData) -> tuple[float, ...] | None:
    """`trainer.class_weight` ({class id: weight}) as one weight per class (1.0 when not given)."""
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


def _start_callbacks(resolved: dict, replicas: int, data: TrainingData):
    early = instantiate(resolved["trainer"]["early_stopping"])
    plateau = instantiate(resolved["trainer"]["reduce_lr_on_plateau"])
    for callback in (early, plateau):
        if callback is None:
            continue
        callback.start(replicas)
        if not callback.monitor.startswith("train_") and "val" not in data.splits:
            raise ValueError(
                f"{type(callback).__name__} monitors {callback.monitor!r} but there is no validation "
                "split; set trainer.validation_split (e.g. 0.2) or monitor a train_ metric.")
    return early, plateau


def prepare(cfg: DictConfig) -> Session:
    """Load, build and compile everything a run needs; raises on bad configuration before compiling."""
    use_compilation_cache(cfg.paths.get("compilation_cache_dir"))
    trainer = cfg.trainer
    set_conv_lowering(trainer.get("conv_lowering", "auto"))
    set_embedding_conv_fusion(trainer.get("embedding_conv_fusion", "auto"))
    seeds = [int(cfg.seed) + i for i in range(int(trainer.seeds))]
    parallel = DataParallel.create(trainer.data_parallel, trainer.batch_size)
    data = TrainingData.from_dataset(instantiate(cfg.dataset), validation_split=trainer.validation_split,
                                     put=parallel.put)
    with dataset_facts(data.facts):
        resolved = OmegaConf.to_container(cfg, resolve=True)
    layers = resolved["model"]["layers"]
    first = nn.build_model(layers, data.input_shape, seed=seeds[0])  # validates before compiling
    summary = nn.summary(first, data.input_shape, print_fn=None)
    optimizer = instantiate(resolved["optimizer"])
    tx = optimizer.build()
    graphdef, states = rep.init_replicas(
        lambda seed: first if seed == seeds[0] else nn.build_model(layers, data.input_shape, seed=seed),
        seeds, tx)
    states = parallel.put(states)
    step_config = StepConfig(graphdef=graphdef, tx=tx, loss=instantiate(resolved["model"]["loss"]),
                             metrics=data.metrics, fetch=data.fetch,
                             class_weights=class_weights(trainer.class_weight, data),
                             constrained=nn.has_constraints(merge_model(graphdef, rep.unstack(states, 0))),
                             batch_sharding=parallel.batch_sharding,
                             compute_dtype=precision.compute_dtype(trainer.compute_dtype))
    train_split = data.splits["train"]
    epoch_fn = rep.compile_epoch(step_config, len(seeds), num_examples=train_split.num_examples,
                                 batch_size=trainer.batch_size, steps_per_epoch=trainer.steps_per_epoch,
                                 strategy=trainer.replica_strategy,
                                 last_batch=trainer.get("last_batch", "auto"))
    evaluators = {name: rep.compile_evaluate(step_config, len(seeds), num_examples=split.num_examples,
                                             batch_size=min(trainer.eval_batch_size, split.num_examples),
                                             strategy=trainer.replica_strategy)
                  for name, split in data.splits.items() if name == "val"}
    early, plateau = _start_callbacks(resolved, len(seeds), data)
    return Session(cfg=cfg, resolved=resolved, run_dir=output_dir(cfg), seeds=seeds, data=data,
                   parallel=parallel, layers=layers, summary=summary, optimizer=optimizer,
                   step_config=step_config, states=states, epoch_fn=epoch_fn, evaluators=evaluators,
                   early=early, plateau=plateau)
