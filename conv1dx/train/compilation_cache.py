"""JAX's persistent compilation cache, pointed at `paths.compilation_cache_dir` for each run.

A run's compiled programs (the training epoch, the evaluations, the weight initializers) are written
to that folder, and a later run of the same program (a re-run, a resumed run, another seed of a
sweep, a restarted notebook) loads them instead of compiling. Every program is cached, however
quickly it compiled: each of the default run's initializers compiles in well under JAX's default
threshold of one second, yet a re-run of the default config (5 epochs, this 2-core CPU) took 5.5-5.8
s with that threshold, 3.9-4.3 s with none, 6.3-7.4 s without a cache. What a cached executable
computes is what a fresh compile gives (JAX keys the cache by the program, the jaxlib version, the
XLA flags and the devices), so the cache changes start-up time only, never the numbers.

The folder is trusted code (JAX loads executables from it): keep it private to the user.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
from jax.experimental.compilation_cache import compilation_cache as jax_cache

_active: Path | None = None  # the folder this module pointed JAX at (None: it has not, or undid it)


def use_compilation_cache(directory: str | os.PathLike | None) -> Path | None:
    """Cache every compiled program in `directory` (created if missing); None turns this off.

    Returns the resolved folder, or None. With None, a cache this function enabled earlier in the
    process is switched off; a cache the user configured through JAX itself
    (`JAX_COMPILATION_CACHE_DIR`) is left as it is. Raises ValueError naming the setting when the
    folder cannot be created.
    """
    global _active
    path = None if directory is None else Path(directory).expanduser().resolve()
    if path == _active:
        return path
    if path is None:
        jax.config.update("jax_compilation_cache_dir", None)
    else:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ValueError(
                f"paths.compilation_cache_dir={directory!s} cannot be created ({error}); set it to "
                "a writable folder, or to null to compile every run from scratch."
            ) from error
        jax.config.update("jax_compilation_cache_dir", str(path))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax_cache.reset_cache()  # JAX opens its cache once per process; make it see the new folder
    _active = path
    return path
