"""Where conv1dx keeps what it builds or measures once per machine (oneDNN's handlers, lowering decisions)."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_path(variable: str, name: str) -> Path:
    """`$variable` when set, else `name` under `$XDG_CACHE_HOME/conv1dx` (default `~/.cache/conv1dx`)."""
    configured = os.environ.get(variable)
    if configured:
        return Path(configured)
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home, "conv1dx", name)
