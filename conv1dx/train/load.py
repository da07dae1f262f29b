"""Load a trained model back from a run directory (for inference, inspection or notebooks)."""

from __future__ import annotations

import json
from pathlib import Path

import hydra.utils
from omegaconf import OmegaConf

from conv1dx import nn
from conv1dx.train import replicas as rep
from conv1dx.train.checkpoint import Checkpointer
from conv1dx.train.state import merge_model


def load_model(run_dir: str | Path, *, seed_index: int = 0, epoch: int | None = None) -> nn.Sequential:
    """The trained model of replica `seed_index` from `run_dir`'s latest (or `epoch`'s) checkpoint.

    When the run restored its best weights (early stopping), those are returned; otherwise the weights
    of the last epoch. The architecture comes from the run's `model.json`.
    """
    run_dir = Path(run_dir)
    spec = json.loads((run_dir / "model.json").read_text())
    cfg = OmegaConf.load(run_dir / "config.yaml")
    seeds = spec["seeds"]
    if not 0 <= seed_index < len(seeds):
        raise ValueError(f"seed_index must be in [0, {len(seeds)}) for this run of seeds {seeds}.")
    tx = hydra.utils.instantiate(cfg.optimizer, _convert_="all").build()
    input_shape = tuple(spec["input_shape"])
    graphdef, like = rep.init_replicas(
        lambda seed: nn.build_model(spec["layers"], input_shape, seed=seed), seeds, tx)
    checkpointer = Checkpointer(run_dir / "checkpoints")
    epoch = epoch if epoch is not None else checkpointer.latest_epoch()
    if epoch is None:
        raise FileNotFoundError(f"{run_dir / 'checkpoints'} holds no checkpoint.")
    saved, _ = checkpointer.restore(epoch, {"states": like, "best": like})
    checkpointer.close()
    states = saved["best"] if spec["restores_best"] else saved["states"]
    return merge_model(graphdef, rep.unstack(states, seed_index))
