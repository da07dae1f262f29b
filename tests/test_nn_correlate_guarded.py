"""conv1dx's own correlation loops (correlate.cc, behind `onednn.forward_direct` and
`onednn.input_gradient_direct`) on operands placed against unreadable pages: tests/correlate_guarded.cc.
They need AVX-512F; the NumPy references and the handler around the loops: tests/test_nn_correlate_direct.py."""

import pytest

from conv1dx.nn import onednn
from tests.guarded_harness import run_guarded_harness

needs_direct = pytest.mark.skipif(not onednn.direct_available(),
                                  reason="the direct loops need the C++ handlers and AVX-512F")


@needs_direct
@pytest.mark.slow
def test_no_access_outside_src_weights_out_or_the_scratch(tmp_path):
    """The loops (not the XLA handler around them) on src, weights and out placed against unreadable pages,
    and each work chunk's scratch likewise, 6,000 random geometries (B to 40 across partial 16-lane blocks,
    N to 33 across one to three channel tiles, K to 7, dilations to 3, leads putting windows before, across
    and past src, 1-4 threads): a gather lane or a scattered lane that should have been masked, a tap outside
    the kernel or a row outside the scratch kills the harness with SIGSEGV, and every element (out starts as
    NaN) is checked against a float64 reference."""
    run_guarded_harness(tmp_path, "correlate_guarded.cc", seed=7, count=6000)
