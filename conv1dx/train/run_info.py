"""What a run records about itself: seed, library versions, device and the git revision of the code."""

from __future__ import annotations

import datetime
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import jax

import conv1dx

_PACKAGES = ("jax", "jaxlib", "flax", "optax", "numpy", "hydra-core", "tensorflow-datasets",
             "orbax-checkpoint", "onednn-cpu-gomp")


def git_revision(path: str | Path | None = None) -> str | None:
    """The commit of the conv1dx source tree (with "-dirty" when modified), or None outside git."""
    root = Path(path or Path(conv1dx.__file__).parent)
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("-dirty" if dirty else "")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "conv1dx": conv1dx.__version__}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def run_info(seeds: list[int]) -> dict:
    """Seeds, versions, devices, host and revision: everything needed to say where numbers came from."""
    devices = jax.devices()
    return {
        "seeds": seeds,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "git_revision": git_revision(),
        "versions": versions(),
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "host": platform.node(),
        "platform": platform.platform(),
    }
