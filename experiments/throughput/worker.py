"""A benchmark worker process: one framework, one workload, kept warm across the interleaved rounds.

    python -m experiments.throughput.worker      # started by bench.py; JSON requests on stdin

Requests (one JSON object a line) and replies (a line `@@bench {json}` on the protocol stream;
anything the frameworks print goes to stderr):

  * {"cmd": "setup", "framework": F, "workload": {...}, "block_seconds": s}: build the model and
    data (`setup_s`), run one epoch (`first_epoch_s`: tracing, compilation, first run), run one more
    (`steady_epoch_s`) and choose `repeats`, the number of epochs per timed block, so a block lasts
    at least `block_seconds`. `compile_s` = first_epoch_s - steady_epoch_s.
  * {"cmd": "measure"}: one timed block -> {"seconds", "examples"}.
  * {"cmd": "peak", "n": n, "repeats": r}: the float32 matmul peak (`peak.measure_peak`).
  * {"cmd": "finish"}: {"peak_rss_mib", framework versions and threads}; then the process exits.

Errors are replied as {"error": message} and end the worker.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import time
import traceback

PREFIX = "@@bench "
FRAMEWORKS = ("conv1dx", "keras_jax", "keras_tf", "torch", "torch_compile")


def make_runner(framework: str, workload: dict):
    """The runner of `framework` (imports only that framework)."""
    if framework == "conv1dx":
        from experiments.throughput.conv1dx_runner import Conv1dxRunner

        return Conv1dxRunner(workload)
    if framework in ("keras_jax", "keras_tf"):
        from experiments.throughput.keras_models import KerasRunner

        return KerasRunner(workload)
    if framework in ("torch", "torch_compile"):
        from experiments.throughput.torch_models import TorchRunner

        return TorchRunner(workload, compiled=framework == "torch_compile")
    raise ValueError(f"Unknown framework {framework!r}; known: {', '.join(FRAMEWORKS)}.")


def _timed(fn):
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


class Session:
    """The worker's state between requests."""

    def __init__(self):
        self.runner, self.repeats = None, 1

    def setup(self, framework: str, workload: dict, block_seconds: float) -> dict:
        setup_s, self.runner = _timed(lambda: make_runner(framework, workload))
        first_s, examples = _timed(lambda: self.runner.run(1))
        steady_s, _ = _timed(lambda: self.runner.run(1))
        self.repeats = max(1, math.ceil(block_seconds / max(steady_s, 1e-9)))
        return {"setup_s": setup_s, "first_epoch_s": first_s, "steady_epoch_s": steady_s,
                "compile_s": max(first_s - steady_s, 0.0), "repeats": self.repeats,
                "examples_per_epoch": examples}

    def measure(self) -> dict:
        seconds, examples = _timed(lambda: self.runner.run(self.repeats))
        return {"seconds": seconds, "examples": examples}

    def finish(self) -> dict:
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return {"peak_rss_mib": peak_kib / 1024.0, **(self.runner.info() if self.runner else {})}

    def handle(self, request: dict) -> dict:
        command = request.get("cmd")
        if command == "setup":
            return self.setup(request["framework"], request["workload"],
                              float(request.get("block_seconds", 0.0)))
        if command == "measure":
            return self.measure()
        if command == "peak":
            from experiments.throughput.peak import measure_peak

            return measure_peak(int(request.get("n", 2048)), int(request.get("repeats", 5)))
        if command == "finish":
            return self.finish()
        raise ValueError(f"Unknown worker command {command!r}.")


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever the frameworks print (even from C) goes to stderr, not the protocol
    sys.stdout = sys.stderr
    session = Session()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = session.handle(request)
        except Exception as error:  # reported to the coordinator, which stops with the message
            traceback.print_exc()
            reply = {"error": f"{type(error).__name__}: {error}"}
            protocol.write(PREFIX + json.dumps(reply) + "\n")
            return
        protocol.write(PREFIX + json.dumps(reply) + "\n")
        if request.get("cmd") == "finish":
            return


if __name__ == "__main__":
    main()
