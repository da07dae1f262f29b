"""Where conv1dx's Hydra configs live, and composing them from Python.

The configs are edited in the repository's top-level `conf/`; a wheel installs the same files as
`conv1dx/conf/`. `config_dir()` finds whichever this copy of conv1dx was loaded with.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

import conv1dx


def config_dir() -> Path:
    """The config directory: `conv1dx/conf` in an installed wheel, else `<checkout>/conf`."""
    package = Path(conv1dx.__file__).parent
    for candidate in (package / "conf", package.parent / "conf"):
        if (candidate / "config.yaml").exists():
            return candidate
    raise FileNotFoundError(
        f"conv1dx's configs were not found next to {package}; reinstall conv1dx (pip install .)."
    )


def compose_config(overrides: Sequence[str] = (), *, return_hydra_config: bool = False) -> DictConfig:
    """The composed config for `overrides` (the same strings the command line takes)."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=return_hydra_config)
