"""Build and run a guarded harness (tests/*_guarded.cc, on tests/guarded_harness.h): a handler's loops on
operands placed against unreadable pages, random geometries, a float64 reference."""

import subprocess
from pathlib import Path

import jax

from conv1dx.nn.onednn import library


def run_guarded_harness(tmp_path: Path, source: str, seed: int, count: int) -> None:
    """Compiles tests/`source` as the handlers are compiled and runs it on `count` geometries from `seed`:
    it must exit 0 (not SIGSEGV, not MISMATCH) and print "checked <count>"."""
    binary = tmp_path / Path(source).stem
    build = subprocess.run([library.compiler(), "-O2", "-std=c++17", "-pthread", "-isystem", jax.ffi.include_dir(),
                            str(Path(__file__).with_name(source)), "-o", str(binary)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    result = subprocess.run([str(binary), str(seed), str(count)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stdout[-2000:]}"
    assert result.stdout.strip() == f"checked {count}"
