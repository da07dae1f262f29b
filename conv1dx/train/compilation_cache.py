"""JAX's persistent compilation cache, pointed at `paths.compilation_cache_dir` for each run.

A run's compiled programs (the training epoch, the evaluations, the weight initializers) are written
to that folder, and a later run of the same program (a re-run, a resumed run, another seed of a
sweep, a restarted notebook) loads them instead of compiling. Every program is cached, however
quickly it compiled: each weight initializer compiles in well under JAX's default threshold of one
second, but together they are a good part of a short run's start-up (README.md, "Every run writes
to its own directory", has the measurement). What a cached executable computes is what a fresh
compile gives (JAX keys the cache by the program, the jaxlib version, the XLA flags and the
devices), so the cache changes start-up time only, never the numbers.

The folder grows without limit (delete it at any time) and is trusted code: JAX loads executables
from it, so keep it private to the user. Parallel jobs may share it; JAX writes entries without a
lock, and an entry read while another process writes it costs a warning and a recompile.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
from jax.experimental.compilation_cache import compilation_cache as jax_cache

_OFF = ("", "null", "none")  # what an environment variable can say for "no folder"
_active: Path | None = None  # the folder this module pointed JAX at (None: it has not, or undid it)
_jax_own: dict | None = None  # JAX's settings before this module first changed them


def use_compilation_cache(directory: str | os.PathLike | None) -> Path | None:
    """Cache every compiled program in `directory` (created if missing); returns the folder.

    None (or "", "null" from an environment variable) hands the cache back to JAX's own settings:
    off, unless the user configured one through JAX (`JAX_COMPILATION_CACHE_DIR`); returns None.
    Raises ValueError naming the setting when the folder cannot be created.
    """
    global _active, _jax_own
    if directory is not None and str(directory).strip().lower() in _OFF:
        directory = None
    path = None if directory is None else Path(directory).expanduser().resolve()
    if path == _active:
        return path
    if _jax_own is None:
        _jax_own = {name: getattr(jax.config, name) for name in (
            "jax_enable_compilation_cache", "jax_compilation_cache_dir",
            "jax_persistent_cache_min_compile_time_secs")}
    if path is None:
        for name, value in _jax_own.items():
            jax.config.update(name, value)
    else:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ValueError(
                f"paths.compilation_cache_dir={directory!s} cannot be created ({error}); set it to "
                "a writable folder, or to null to compile every run from scratch."
            ) from error
        jax.config.update("jax_enable_compilation_cache", True)
        jax.config.update("jax_compilation_cache_dir", str(path))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax_cache.reset_cache()  # JAX opens its cache once per process; make it see the new folder
    _active = path
    return path
