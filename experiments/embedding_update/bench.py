"""What does the dense embedding update cost in IMDB training, and could a sparse one win?

JAX differentiates an embedding lookup into a scatter-add of the output gradient into a zero table
of the full vocabulary, and optax's Adam then updates every row. A sparse update would touch only
the rows a batch uses. This script measures, on this machine:

1. how many distinct rows a training batch of the IMDB experiment touches (real data, when the
   prepared archive is available; random ids otherwise);
2. the time per step of the dense path alone (scatter-add + Adam over the table), inside a jitted
   `lax.scan` like the training epoch, with the experiment's shapes;
3. the time per step of the whole IMDB training step (experiments/throughput's runner);

    python -m experiments.embedding_update.bench [--archives ../shared/datasets]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.throughput import report

VOCAB, DIM, BATCH, LENGTH, STEPS = 10_000, 128, 128, 500, 20


def distinct_rows_per_batch(archives: str | None, batches: int = 20) -> tuple[str, list[int]]:
    """Distinct token ids in `batches` random training batches of IMDB (or of uniform ids)."""
    rng = np.random.default_rng(0)
    if archives:
        from conv1dx.data.imdb import load_imdb

        x = np.asarray(load_imdb(num_words=VOCAB, maxlen=LENGTH, archives=archives)
                       .splits["train"].x)
        source = "IMDB train split"
    else:
        x = rng.integers(1, VOCAB, size=(25_000, LENGTH))
        source = "uniform random ids"
    return source, [len(np.unique(x[rng.choice(len(x), BATCH, replace=False)]))
                    for _ in range(batches)]


def dense_update_ms(rounds: int) -> list[float]:
    """ms per step of scatter-add gradient + Adam on the (VOCAB, DIM) table, per round."""
    ids_SxBxT = jax.random.randint(jax.random.key(0), (STEPS, BATCH, LENGTH), 1, VOCAB)
    dy_BxTxD = jax.random.normal(jax.random.key(2), (BATCH, LENGTH, DIM))
    tx = optax.adam(1e-3)

    @jax.jit
    def epoch(table, opt_state):
        def step(carry, ids_BxT):
            table, opt_state = carry
            grad = jnp.zeros((VOCAB, DIM)).at[ids_BxT].add(dy_BxTxD)
            updates, opt_state = tx.update(grad, opt_state, table)
            return (optax.apply_updates(table, updates), opt_state), None

        return jax.lax.scan(step, (table, opt_state), ids_SxBxT)[0]

    table = jax.random.normal(jax.random.key(1), (VOCAB, DIM))
    carry = jax.block_until_ready(epoch(table, tx.init(table)))
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        carry = jax.block_until_ready(epoch(*carry))
        times.append((time.perf_counter() - start) / STEPS * 1e3)
    return times


def imdb_step_ms(rounds: int) -> list[float]:
    """ms per step of the IMDB experiment's compiled training epoch, per round."""
    from experiments.throughput.conv1dx_runner import Conv1dxRunner

    runner = Conv1dxRunner({"experiment": "imdb", "overrides": [], "steps": STEPS})
    runner.run(1)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        runner.run(1)
        times.append((time.perf_counter() - start) / STEPS * 1e3)
    return times


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archives", default=None,
                        help="folder with aclImdb_v1.tar.gz (default: random ids)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    context = report.run_context("python -m experiments.embedding_update.bench "
                                 f"--archives {args.archives} --rounds {args.rounds}",
                                 Path(__file__).resolve().parents[2])
    print(report.context_line(context))
    source, distinct = distinct_rows_per_batch(args.archives)
    print(f"distinct rows per batch of {BATCH} ({source}, 20 batches): min {min(distinct)}, "
          f"median {statistics.median(distinct):.0f}, max {max(distinct)} of {VOCAB}")
    dense = dense_update_ms(args.rounds)
    step = imdb_step_ms(args.rounds)
    print(f"dense scatter-add + Adam over the table: {min(dense):.2f} ms/step (best of "
          f"{args.rounds}; median {statistics.median(dense):.2f})")
    print(f"IMDB training step: {min(step):.2f} ms (best; median {statistics.median(step):.2f}); "
          f"the dense update is {100 * min(dense) / min(step):.1f}% of it")
    print(f"load average {report.load_average()} at end")


if __name__ == "__main__":
    main()
