"""How should R seed replicas share one compiled program: `vmap` or `lax.map`?

Times one steady-state epoch of the HAR convnet (synthetic data of the UCI HAR shape, batch 32) for a
single replica and for R replicas under each strategy, interleaved, and prints the cost of R replicas
relative to R single-replica epochs (1.0 = no gain, < 1 = replicas are cheaper together).

    python experiments/replicas/bench.py [--replicas 10] [--examples 1024] [--rounds 3]
"""

import argparse
import platform
import subprocess
import time

import hydra
import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import OmegaConf

from conv1dx import nn
from conv1dx.train import compose_config, dataset_facts, steps
from conv1dx.train import replicas as rep
from conv1dx.train.metrics import ClassificationMetrics


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--examples", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cfg = compose_config(["+experiment=har"])
    with dataset_facts({"num_classes": 6}):
        layers = OmegaConf.to_container(cfg.model.layers, resolve=True)
    tx = hydra.utils.instantiate(cfg.optimizer, _convert_="all").build()
    loss = hydra.utils.instantiate(cfg.model.loss)
    rng = np.random.default_rng(0)
    n = args.examples
    data = {"x": jnp.asarray(rng.normal(size=(n, 128, 9)).astype(np.float32)),
            "y": jnp.asarray(rng.integers(0, 6, n))}
    setups = {}
    for name, r, strategy in (("single", 1, "map"), ("vmap", args.replicas, "vmap"),
                              ("map", args.replicas, "map")):
        graphdef, states = rep.init_replicas(lambda s: nn.build_model(layers, (128, 9), seed=s),
                                             list(range(r)), tx)
        fn = rep.compile_epoch(steps.StepConfig(graphdef, tx, loss, ClassificationMetrics(6)), r,
                               num_examples=n, batch_size=32, strategy=strategy)
        keys = rep.stack([jax.random.key(i) for i in range(r)])
        states, sums = fn(states, data, keys, jnp.ones(r, bool))
        jax.block_until_ready(sums)
        setups[name] = [fn, states, keys, r]
    times = {name: [] for name in setups}
    for _ in range(args.rounds):
        for name, (fn, states, keys, r) in setups.items():
            began = time.perf_counter()
            states, sums = fn(states, data, keys, jnp.ones(r, bool))
            jax.block_until_ready(sums)
            times[name].append(time.perf_counter() - began)
            setups[name][1] = states
    single = float(np.median(times["single"]))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"| strategy | replicas | s/epoch (median of {args.rounds}) | cost vs {args.replicas} single epochs |")
    print("|---|---|---|---|")
    print(f"| single | 1 | {single:.3f} | - |")
    for name in ("vmap", "map"):
        median = float(np.median(times[name]))
        print(f"| {name} | {args.replicas} | {median:.3f} | {median / (args.replicas * single):.2f} |")
    print(f"\n{platform.processor() or platform.machine()}, {jax.device_count()} {jax.devices()[0].device_kind} "
          f"device(s), jax {jax.__version__}, commit {commit}, {n} examples per epoch")


if __name__ == "__main__":
    main()
