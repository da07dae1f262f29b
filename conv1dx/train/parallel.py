"""Data parallelism over all local devices with `jax.sharding`: batches split on the batch axis.

Datasets and weights are replicated on every device; inside the compiled step each batch is constrained
to be sharded along its batch axis, and XLA partitions the computation (gradients are all-reduced).
Multi-host runs call `jax.distributed.initialize()` first when the environment describes a cluster.
The same code runs unchanged on one device (CPU, GPU or TPU).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import jax
from jax.sharding import AxisType, NamedSharding, PartitionSpec

log = logging.getLogger("conv1dx.train")

_CLUSTER_VARIABLES = ("JAX_COORDINATOR_ADDRESS", "SLURM_JOB_ID", "TPU_WORKER_HOSTNAMES")


def maybe_initialize_distributed() -> None:
    """Join a multi-host job when the environment describes one (idempotent, no-op otherwise)."""
    if any(os.environ.get(name) for name in _CLUSTER_VARIABLES) and jax.process_count() == 1:
        try:
            jax.distributed.initialize()
        except (RuntimeError, ValueError) as error:  # single-process SLURM jobs have nothing to join
            log.debug("jax.distributed.initialize skipped: %s", error)


@dataclass(frozen=True)
class DataParallel:
    """Placement of data and state: `put` replicates; `batch_sharding` splits a batch (or None)."""

    mesh: object = None
    batch_sharding: object = None

    @classmethod
    def create(cls, enabled: bool, batch_size: int) -> DataParallel:
        devices = jax.devices()
        if not enabled or len(devices) == 1:
            return cls()
        if batch_size % len(devices):
            log.warning("batch_size %d is not divisible by %d devices: data parallelism disabled",
                        batch_size, len(devices))
            return cls()
        mesh = jax.make_mesh((len(devices),), ("data",), axis_types=(AxisType.Auto,))
        return cls(mesh, NamedSharding(mesh, PartitionSpec("data")))

    def put(self, tree):
        """Place `tree` on the device(s): replicated across the mesh, or on the default device."""
        if self.mesh is None:
            return jax.device_put(tree)
        return jax.device_put(tree, NamedSharding(self.mesh, PartitionSpec()))
