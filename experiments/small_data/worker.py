"""One measurement of `experiments.small_data.bench`, in a process of its own.

    python -m experiments.small_data.worker '<json: overrides, epochs, min_tuned_bytes>'

Builds the run as `python -m conv1dx.train <overrides>` would (`conv1dx.train.session.prepare`, no
compilation cache), then times the first call of the compiled epoch (tracing, compiling and one
epoch) and `epochs` more calls one by one; prints one JSON line: first_s, epoch_s (every epoch), the
batch sizes the epoch's train steps were traced with, and from them whether the last batch got a
step of its own and how many examples an epoch computes.
"""

from __future__ import annotations

import json
import math
import sys
import time


def measure(spec: dict) -> dict:
    import jax
    import jax.numpy as jnp

    from conv1dx.nn import conv_lowering
    from conv1dx.train import compose_config, steps
    from conv1dx.train import replicas as rep
    from conv1dx.train.session import prepare

    if spec["min_tuned_bytes"] is not None:
        conv_lowering.MIN_TUNED_BYTES = float(spec["min_tuned_bytes"])
    traced_sizes = set()
    train_step = steps.train_step

    def recording_train_step(config, state, batch, valid_B, key):
        traced_sizes.add(int(valid_B.shape[0]))
        return train_step(config, state, batch, valid_B, key)

    steps.train_step = recording_train_step  # what train_epoch calls when it is traced
    cfg = compose_config([*spec["overrides"], "paths.compilation_cache_dir=null"])
    session = prepare(cfg)
    split = session.data.splits["train"]
    trainer = cfg.trainer
    keys = rep.stack([jax.random.key(seed) for seed in session.seeds])
    active = jnp.ones(len(session.seeds), bool)
    states = session.states

    def epoch():
        nonlocal states
        began = time.perf_counter()
        states, sums = session.epoch_fn(states, split.data, keys, active)
        jax.block_until_ready((states, sums))
        return time.perf_counter() - began

    first = epoch()
    seconds = [epoch() for _ in range(spec["epochs"])]
    rest = split.num_examples % trainer.batch_size
    own = rest != 0 and rest in traced_sizes  # a filled-up last batch has the whole batch's size
    computed = (split.num_examples if own
                else math.ceil(split.num_examples / trainer.batch_size) * trainer.batch_size)
    return {"first_s": first, "epoch_s": seconds, "train_examples": split.num_examples,
            "batch_size": int(trainer.batch_size), "traced_batch_sizes": sorted(traced_sizes),
            "examples_computed": computed, "own_last_step": own}


if __name__ == "__main__":
    print(json.dumps(measure(json.loads(sys.argv[1]))))
