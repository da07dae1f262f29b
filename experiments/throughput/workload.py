"""One benchmark workload: an experiment prepared by conv1dx's own `prepare`, described as JSON.

`prepare_session(experiment, overrides, steps)` composes `+experiment=<name>` like the CLI, swaps
the dataset node for seed-shaped synthetic data (`synthetic.as_dataset_node`) and calls
`conv1dx.train.session.prepare`, the function `train()` starts with: it puts the data on the device,
builds the model and optimizer and the compiled epoch. The benchmark changes only
`trainer.steps_per_epoch` (the timed epoch is `steps` batches), `trainer.validation_split` (0) and
the callbacks that need a validation split (`early_stopping`, `reduce_lr_on_plateau`: null), since
no validation is timed, `paths.output_dir` (nothing is written there) and
`paths.compilation_cache_dir` (null; `prepare_session` also switches JAX's cache off, so compile
times are measured, not cache loads).

`describe(...)` returns what the other frameworks rebuild the same model from:

    {"experiment", "overrides", "steps", "batch_size", "num_examples", "input_shape", "x_dtype",
     "vocab_size", "task", "num_classes", "layers" (resolved layer specs), "loss", "optimizer",
     "seed", "flops_per_example", "forward_flops_per_example", "params"}
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence

import jax
from omegaconf import open_dict

from conv1dx import nn
from conv1dx.train import compose_config
from conv1dx.train import replicas as rep
from conv1dx.train.config_check import check_config
from conv1dx.train.session import Session, prepare
from conv1dx.train.state import merge_model
from experiments.throughput import flops, synthetic


def compose(experiment: str, overrides: Sequence[str], steps: int):
    """The experiment's config with the benchmark's changes (see the module docstring)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1 batches per timed epoch, got {steps}.")
    output_dir = tempfile.gettempdir() + "/conv1dx-throughput"
    cfg = compose_config([f"+experiment={experiment}", *overrides,
                          f"trainer.steps_per_epoch={int(steps)}", "trainer.validation_split=0.0",
                          "trainer.early_stopping=null", "trainer.reduce_lr_on_plateau=null",
                          f"paths.output_dir={output_dir}", "paths.compilation_cache_dir=null"])
    num_examples = int(steps) * int(cfg.trainer.batch_size)
    with open_dict(cfg):
        cfg.dataset = synthetic.as_dataset_node(cfg.dataset, num_examples, seed=int(cfg.seed))
    return cfg


def prepare_session(experiment: str, overrides: Sequence[str] = (), steps: int = 20) -> Session:
    """conv1dx's prepared run (data on the device, model, compiled epoch) on synthetic data.

    JAX's persistent compilation cache is switched off for the process (also one the user set up
    through `JAX_COMPILATION_CACHE_DIR`), so compile times are compile times."""
    cfg = compose(experiment, overrides, steps)
    check_config(cfg)
    jax.config.update("jax_enable_compilation_cache", False)
    return prepare(cfg)


def describe(experiment: str, overrides: Sequence[str] = (), steps: int = 20) -> dict:
    """The JSON description of `experiment`'s training workload (see the module docstring)."""
    session = prepare_session(experiment, overrides, steps)
    data, resolved = session.data, session.resolved
    input_shape = tuple(int(d) for d in data.input_shape)
    model = merge_model(session.step_config.graphdef, rep.unstack(session.states, 0))
    forward = flops.model_forward_flops(model, input_shape)
    return {
        "experiment": experiment, "overrides": list(overrides), "steps": int(steps),
        "batch_size": int(session.cfg.trainer.batch_size),
        "num_examples": int(data.splits["train"].num_examples),
        "input_shape": list(input_shape),
        "x_dtype": "int32" if data.facts.get("vocab_size") else "float32",
        "vocab_size": data.facts.get("vocab_size"),
        "task": "classification" if data.facts.get("num_classes") else "regression",
        "num_classes": data.facts.get("num_classes"),
        "layers": resolved["model"]["layers"], "loss": resolved["model"]["loss"],
        "optimizer": resolved["optimizer"], "seed": int(session.cfg.seed),
        "forward_flops_per_example": int(forward),
        "flops_per_example": int(flops.TRAINING_MULTIPLIER * forward),
        "params": int(nn.count_params(model)),
    }
