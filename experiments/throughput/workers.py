"""The coordinator's side of the worker protocol (see `worker.py`): start, ask, collect, stop.

Each `Worker` is a separate Python process (`python -m experiments.throughput.worker`) running from
the repository root, so frameworks never share a process, a thread pool or an allocator. Its stderr
goes to a log file; a worker that fails or dies raises `WorkerError` with the log's last lines.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from experiments.throughput.worker import PREFIX

REPO_ROOT = Path(__file__).resolve().parents[2]
# What each framework needs importable, and the environment its worker starts with.
REQUIRES = {"conv1dx": ("jax", "flax"), "keras_jax": ("keras", "jax"),
            "keras_tf": ("keras", "tensorflow"), "torch": ("torch",), "torch_compile": ("torch",)}
ENVIRONMENT = {"keras_jax": {"KERAS_BACKEND": "jax"}, "keras_tf": {"KERAS_BACKEND": "tensorflow"}}
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}


class WorkerError(RuntimeError):
    """A worker replied with an error or exited; the message carries the tail of its log."""


def missing_packages(framework: str) -> list[str]:
    """The packages `framework` needs that this Python cannot import (empty when it can run)."""
    if framework not in REQUIRES:
        raise ValueError(f"Unknown framework {framework!r}; known: {', '.join(REQUIRES)}.")
    return [name for name in REQUIRES[framework] if importlib.util.find_spec(name) is None]


class Worker:
    """One warm worker process; `request(message) -> reply dict`."""

    def __init__(self, label: str, log_path: Path, framework: str | None = None):
        self.label, self.log_path = label, Path(log_path)
        env = {**os.environ, **QUIET, **ENVIRONMENT.get(framework, {})}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen([sys.executable, "-m", "experiments.throughput.worker"],
                                        cwd=REPO_ROOT, env=env, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self._log, text=True,
                                        bufsize=1)

    def request(self, message: dict) -> dict:
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise WorkerError(self._failure("exited before the request")) from None
        for line in self.process.stdout:
            if line.startswith(PREFIX):
                reply = json.loads(line[len(PREFIX):])
                if "error" in reply:
                    raise WorkerError(self._failure(reply["error"]))
                return reply
        raise WorkerError(self._failure(f"exited with code {self.process.wait()}"))

    def _failure(self, what: str) -> str:
        self._log.flush()
        tail = self.log_path.read_text(errors="replace").splitlines()[-15:]
        return f"{self.label} worker {what}; last lines of {self.log_path}:\n" + "\n".join(tail)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
