"""Which implementation computes each convolution pass, chosen by measurement on this machine.

Every pass of a convolution (the forward, the input gradient, the kernel gradient) can run as XLA's
own convolution (`conv_ops`' formulation) or, on CPU, as oneDNN's (`conv1dx.nn.onednn`, channels-last
or in oneDNN's blocked layouts), or as conv1dx's own AVX-512 loops ("direct", on CPUs with AVX-512F: the
kernel gradient with `onednn.kernel_gradient_direct`, the forward pass and input gradient with stride 1
with `onednn.forward_direct` and `onednn.input_gradient_direct`). Which is fastest depends on the shapes: on the
seed models oneDNN's forward takes up to 43% less time than XLA's (Jena's first layer) and its
channels-last input gradient is 1.4x slower on IMDB's first layer (experiments/conv_lowering/README.md,
"oneDNN in conv_ops"). So:

- ``"auto"`` (the default): on CPU, a float32, single-group convolution pass worth timing (at least
  `MIN_TUNED_FLOPS`, or at least `MIN_TUNED_BYTES` of operands and result: `worth_timing`) is timed
  once per machine with each candidate, inside a short compiled loop, and the fastest is used; another
  candidate must beat XLA by `MARGIN` to be chosen. Decisions are written to `tuning_file()` and read
  back by later runs, so one machine keeps its choices and a re-run gives the same numbers.
  Smaller passes, other dtypes, grouped convolutions and other backends use XLA.
- ``"xla"``: XLA's convolution for every pass.
- ``"onednn"``: oneDNN's channels-last kernels for every pass they support (to compare or test them).

The mode comes from `set_conv_lowering` / the `conv_lowering` context manager (the trainer applies
``trainer.conv_lowering``), else ``$CONV1DX_CONV_LOWERING``, else ``"auto"``. It is read when a function is
traced: change it before `jax.jit` traces, not between calls of a compiled function.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import json
import os
import platform
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp

from conv1dx.nn.trace_setting import TraceSetting
from conv1dx.nn.user_cache import user_cache_path

MODES = ("auto", "xla", "onednn")
CANDIDATES = ("xla", "onednn", "onednn_blocked", "direct")
# Passes of fewer FLOPs (2 B O C F K; ~0.25 ms at this machine's peak) stay on XLA untimed: timing costs
# more than they can gain. Another candidate (oneDNN's, conv1dx's direct loops) must take at most 95%
# of XLA's time, beyond the timing noise. These were 1 GFLOP and 10% while oneDNN ran on its own OpenMP
# threads, which cost each call in the epoch more than in the timed loop; on XLA's pool the timed gains
# hold in the epoch (experiments/conv_lowering/README.md, "oneDNN in conv_ops").
MIN_TUNED_FLOPS = 5e7
# ... unless they move at least this many bytes (operands and result; ~0.25 ms at an assumed 16 GB/s): a layer
# with few input channels over long series (ACSF1's first layer: 1 channel, 1,460 steps, 32 filters,
# batch 32: 15 MFLOP, a 6 MB result) is bound by memory, and there XLA's forward took 1.5-1.9 ms against
# oneDNN's 0.28-0.37 in two timings on a 2-core EPYC (experiments/small_data/README.md).
MIN_TUNED_BYTES = 4 * 2**20
MARGIN = 0.05
_SCAN_LENGTH = 4  # calls per timed loop: how a training epoch calls a pass
_TIMED_LOOPS = 5

_lock = threading.Lock()  # guards _decisions and _in_flight
_timing_lock = threading.Lock()  # one timing at a time, so timings do not compete for the cores
_timing_thread = threading.local()  # .active on the threads that run a timing
_in_flight: dict[tuple, concurrent.futures.Future] = {}  # (file, fingerprint, key) being timed -> its choice
_decisions: dict[Path, dict[str, dict]] = {}  # per tuning file: what it held when first read, plus new decisions


MODE = TraceSetting("conv_lowering", MODES, "CONV1DX_CONV_LOWERING", "auto", "a convolution lowering")


def worth_timing(flops: float, nbytes: float) -> bool:
    """Whether "auto" times a pass of `flops` FLOPs that reads and writes `nbytes` bytes."""
    return flops >= MIN_TUNED_FLOPS or nbytes >= MIN_TUNED_BYTES


def get_conv_lowering() -> str:
    """The mode in force: set by `set_conv_lowering`, else $CONV1DX_CONV_LOWERING, else "auto"."""
    return MODE.get()


def set_conv_lowering(mode: str | None) -> str | None:
    """Sets the mode for functions traced from now on (None: back to the environment's); returns the old one."""
    return MODE.set(mode)


def conv_lowering(mode: str):
    """`with conv_lowering("xla"): ...` traces the block's convolutions with that mode."""
    return MODE.using(mode)


def tuning_file() -> Path:
    """Where decisions are kept: $CONV1DX_CONV_TUNING_FILE, else ~/.cache/conv1dx/conv_lowering.json."""
    return user_cache_path("CONV1DX_CONV_TUNING_FILE", "conv_lowering.json")


@functools.cache
def machine_fingerprint(onednn_build: str) -> str:
    """What a timing depends on besides the shapes: the CPU, the cores this process may use, jax's version
    and the oneDNN build (`onednn.build_id()`: oneDNN's version and the handlers')."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu}; {cores} cores; jax {jax.__version__}; oneDNN {onednn_build}"


def _load_decisions() -> dict[str, dict]:
    path = tuning_file()
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise ValueError(f"the convolution tuning file {path} cannot be read ({error}); delete it (it is "
                         "rebuilt by timing) or point CONV1DX_CONV_TUNING_FILE elsewhere.") from error


def _save_decision(fingerprint: str, key: str, decision: dict) -> None:
    """Merges one decision into the file (re-read first, written atomically: parallel runs lose nothing)."""
    path = tuning_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = _load_decisions()
    stored.setdefault(fingerprint, {})[key] = decision
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as scratch:
        json.dump(stored, scratch, indent=1, sort_keys=True)
    os.replace(scratch.name, path)


def choose(key: str, fingerprint: str, candidates: dict[str, Callable[..., jax.Array]],
           operands: Sequence[jax.ShapeDtypeStruct]) -> str:
    """The candidate to use for the pass `key` (stored decision, else timed now and stored).

    `candidates` maps names (`CANDIDATES`, or "xla" and "fused" for `embedding_conv`; "xla" among them,
    the reference `decide` holds the others to) to functions of the pass's operands; `operands` gives
    their shapes. Timing runs on its own thread, outside any trace.
    """
    path = tuning_file()
    nested = getattr(_timing_thread, "active", False)
    with _lock:
        known = _known_choice(path, fingerprint, key, candidates)
        if known is not None:
            return known
        in_flight = _in_flight.get((path, fingerprint, key))
        owner = in_flight is None
        if owner:
            in_flight = _in_flight[(path, fingerprint, key)] = concurrent.futures.Future()
    if not owner and not nested:  # another thread is timing this pass: its decision is ours
        return in_flight.result()
    # (A timing thread never waits for another thread's timing, which may be waiting for the machine
    # this timing holds: it times the pass itself.)
    try:
        seconds = _timed(candidates, operands)
        with _lock:
            known = _known_choice(path, fingerprint, key, candidates)
            choice = known if known is not None else decide(seconds)
            if known is None:
                decision = {"choice": choice, "ms": {name: round(1e3 * s, 3) for name, s in seconds.items()}}
                _decisions[path].setdefault(fingerprint, {})[key] = decision
                _save_decision(fingerprint, key, decision)
        if owner:
            in_flight.set_result(choice)
        return choice
    except BaseException as error:
        if owner:
            in_flight.set_exception(error)
        raise
    finally:
        if owner:
            with _lock:
                del _in_flight[(path, fingerprint, key)]


def _timed(candidates, operands) -> dict[str, float]:
    """`time_candidates` on a thread of its own (outside any trace), one timing at a time on the machine.

    A candidate may hold passes still to be timed (the unfused layers that `embedding_conv` times hold
    convolutions): their `choose` runs on the timing thread, which already has the machine, so it times
    them at once instead of waiting for itself.
    """
    def run():
        _timing_thread.active = True
        return time_candidates(candidates, operands)

    with contextlib.ExitStack() as stack:
        if not getattr(_timing_thread, "active", False):
            stack.enter_context(_timing_lock)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(run).result()


def _known_choice(path: Path, fingerprint: str, key: str, candidates) -> str | None:
    """The stored choice for `key` if it names one of `candidates` (call under `_lock`)."""
    if path not in _decisions:
        _decisions[path] = _load_decisions()
    known = _decisions[path].get(fingerprint, {}).get(key)
    return known["choice"] if known is not None and known.get("choice") in candidates else None


def decide(seconds: dict[str, float]) -> str:
    """The fastest candidate, but XLA unless another takes at most (1 - MARGIN) of XLA's time."""
    fastest = min(seconds, key=seconds.get)
    if fastest != "xla" and seconds[fastest] <= (1 - MARGIN) * seconds["xla"]:
        return fastest
    return "xla"


def time_candidates(candidates: dict[str, Callable[..., jax.Array]],
                    operands: Sequence[jax.ShapeDtypeStruct]) -> dict[str, float]:
    """Seconds per call of each candidate: the fastest of `_TIMED_LOOPS` compiled loops of `_SCAN_LENGTH`
    calls, the candidates' loops interleaved so a disturbance of the machine hits them alike."""
    keys = jax.random.split(jax.random.key(0), len(operands))
    arrays = [jax.random.normal(k, op.shape, op.dtype) for k, op in zip(keys, operands, strict=True)]
    loops = {name: jax.jit(_looped(function)) for name, function in candidates.items()}
    for loop in loops.values():
        jax.block_until_ready(loop(*arrays))  # compile, and let oneDNN build its primitives
    best = dict.fromkeys(loops, float("inf"))
    for _ in range(_TIMED_LOOPS):
        for name, loop in loops.items():
            start = time.perf_counter()
            jax.block_until_ready(loop(*arrays))
            best[name] = min(best[name], (time.perf_counter() - start) / _SCAN_LENGTH)
    return best


def _looped(function: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
    """`_SCAN_LENGTH` calls in a scan, each on a shifted first operand (so none is hoisted out)."""
    def run(first, *rest):
        def step(total, shift):
            return total + jnp.sum(function(first + shift, *rest)), None
        return jax.lax.scan(step, jnp.zeros((), first.dtype), jnp.arange(_SCAN_LENGTH, dtype=first.dtype))[0]
    return run
