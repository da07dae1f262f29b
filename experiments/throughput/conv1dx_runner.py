"""conv1dx's side of the benchmark: the compiled epoch `conv1dx.train.train` runs, on random data.

`Conv1dxRunner(workload)` gets its run from `conv1dx.train.session.prepare` (through
`workload.prepare_session`), the same function `train()` starts with, so the data placement, model,
optimizer, data parallelism and the compiled epoch (`replicas.compile_epoch`) are the training
run's. `run(repeats)` then calls that epoch `repeats` times as the engine's epoch loop does (keys
folded with the epoch number, all replicas active, metric sums fetched to the host after each
epoch). Validation, checkpoints and logs are left out: they are not part of the steady-state
training step. The epoch is traced once when the runner is made, so the convolution lowering's
one-time timing (when this machine has no decisions for the shapes yet) counts as setup.
"""

from __future__ import annotations

import time
from importlib.metadata import version

import jax
import jax.numpy as jnp
import numpy as np

from conv1dx.train import replicas as rep
from experiments.throughput.workload import prepare_session


class Conv1dxRunner:
    """Runs `repeats` training epochs of `workload["steps"]` batches; see the module docstring."""

    def __init__(self, workload: dict):
        self.session = prepare_session(workload["experiment"], workload["overrides"],
                                       workload["steps"])
        trainer = self.session.cfg.trainer
        self.states = self.session.states
        self.keys = [jax.random.key(seed) for seed in self.session.seeds]
        self.active = jnp.asarray(np.ones(len(self.keys), bool))
        self.examples_per_epoch = (int(trainer.steps_per_epoch) * int(trainer.batch_size)
                                   * len(self.keys))
        self.epoch = 0
        # Trace once now: the first trace on a machine times the convolution passes for
        # `trainer.conv_lowering=auto` (conv1dx.nn.conv_lowering; once per machine and shape), which
        # is setup, not the compile time the first epoch measures.
        self.session.epoch_fn.trace(self.states, self.session.data.splits["train"].data,
                                    rep.stack(self.keys), self.active)

    def run(self, repeats: int) -> int:
        """Train `repeats` epochs; returns the number of examples trained on (summed over seeds)."""
        train_data = self.session.data.splits["train"].data
        for _ in range(repeats):
            self.epoch += 1
            epoch_keys = rep.stack([jax.random.fold_in(key, self.epoch) for key in self.keys])
            self.states, sums = self.session.epoch_fn(self.states, train_data, epoch_keys,
                                                      self.active)
            jax.device_get(sums)
        jax.block_until_ready(self.states)
        return repeats * self.examples_per_epoch

    def info(self) -> dict:
        return {"version": version("conv1dx"), "jax": jax.__version__,
                "devices": [str(d) for d in jax.devices()]}


def interleaved_rates(runners: dict, rounds: int, epochs: int,
                      alternate: bool = False) -> dict[object, list[float]]:
    """examples/s of each runner per round: every round trains `epochs` epochs on each runner in turn
    (in reversed order on odd rounds when `alternate`), so slow drift of the machine hits all alike."""
    rates = {name: [] for name in runners}
    for round_index in range(rounds):
        names = list(runners)
        for name in (names[::-1] if alternate and round_index % 2 else names):
            began = time.perf_counter()
            examples = runners[name].run(epochs)
            rates[name].append(examples / (time.perf_counter() - began))
    return rates
