"""conv1dx's own correlation loops (correlate.cc, behind `onednn.forward_direct` and
`onednn.input_gradient_direct`) on operands placed against unreadable pages: tests/correlate_guarded.cc.
They need AVX-512F; the NumPy references and the handler around the loops: tests/test_nn_correlate_direct.py."""

import subprocess
from pathlib import Path

import jax
import pytest

from conv1dx.nn import onednn
from conv1dx.nn.onednn import library

needs_direct = pytest.mark.skipif(not onednn.direct_available(),
                                  reason="the direct loops need the C++ handlers and AVX-512F")


@needs_direct
def test_no_access_outside_src_weights_out_or_the_scratch(tmp_path):
    """The loops (not the XLA handler around them) on src, weights and out placed against unreadable pages,
    and each work chunk's scratch likewise, 6,000 random geometries (B to 40 across partial 16-lane blocks,
    N to 33 across one to three channel tiles, K to 7, dilations to 3, leads putting windows before, across
    and past src, 1-4 threads): a gather lane or a scattered lane that should have been masked, a tap outside
    the kernel or a row outside the scratch kills the harness with SIGSEGV, and every element (out starts as
    NaN) is checked against a float64 reference."""
    harness = Path(__file__).with_name("correlate_guarded.cc")
    binary = tmp_path / "correlate_guarded"
    build = subprocess.run([library.compiler(), "-O2", "-std=c++17", "-pthread", "-isystem", jax.ffi.include_dir(),
                            str(harness), "-o", str(binary)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    result = subprocess.run([str(binary), "7", "6000"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stdout[-2000:]}"
    assert result.stdout.strip() == "checked 6000"
