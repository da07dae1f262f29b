"""A process-wide choice that functions read when they are traced (e.g. how convolutions are lowered).

`TraceSetting(name, modes, environment, default, kind)` holds one: `get()` returns the mode set by
`set(mode)` (or by `using(mode)` for a block), else the environment variable's, else the default. A
compiled function keeps the mode it was traced with: change it before `jax.jit` traces, not between
calls of a compiled function.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


class TraceSetting:
    """One named mode out of `modes`: set explicitly, else from `$environment`, else `default`."""

    def __init__(self, name: str, modes: tuple[str, ...], environment: str, default: str, kind: str):
        self.name, self.modes, self.environment, self.default, self.kind = name, modes, environment, default, kind
        self.mode: str | None = None  # set explicitly; None: the environment's, else the default

    def _checked(self, mode: str, source: str) -> str:
        if mode not in self.modes:
            raise ValueError(f"{source}={mode!r} is not {self.kind}; use one of {self.modes}.")
        return mode

    def get(self) -> str:
        """The mode in force: set by `set`, else `$environment`, else the default."""
        if self.mode is not None:
            return self.mode
        return self._checked(os.environ.get(self.environment) or self.default, self.environment)

    def set(self, mode: str | None) -> str | None:
        """Sets the mode for functions traced from now on (None: back to the environment's); returns the old one."""
        previous = self.mode
        self.mode = None if mode is None else self._checked(mode, self.name)
        return previous

    @contextlib.contextmanager
    def using(self, mode: str) -> Iterator[None]:
        """Traces the block's functions with `mode`, then restores the previous setting."""
        previous = self.set(mode)
        try:
            yield
        finally:
            self.set(previous)
