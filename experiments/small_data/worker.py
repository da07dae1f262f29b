"""One measurement of `experiments.small_data.bench`, in a process of its own.

    python -m experiments.small_data.worker '<json: overrides, epochs, min_tuned_bytes>'

Builds the run as `python -m conv1dx.train <overrides>` would (`conv1dx.train.session.prepare`, no
compilation cache), then times the first call of the compiled epoch (tracing, compiling and one
epoch) and `epochs` more calls one by one; prints one JSON line: first_s, epoch_s (every epoch),
examples computed per epoch and whether the last batch got a step of its own.
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
    own = steps.own_last_step(split.num_examples, trainer.batch_size, trainer.last_batch)
    computed = (split.num_examples if own
                else math.ceil(split.num_examples / trainer.batch_size) * trainer.batch_size)
    return {"first_s": first, "epoch_s": seconds, "train_examples": split.num_examples,
            "batch_size": int(trainer.batch_size), "examples_computed": computed, "own_last_step": own}


if __name__ == "__main__":
    print(json.dumps(measure(json.loads(sys.argv[1]))))
