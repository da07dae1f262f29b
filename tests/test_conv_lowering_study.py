"""The kernel-gradient study runs, times every form, and leaves the library's function in place."""

import pytest

from conv1dx.nn import conv_ops
from experiments.conv_lowering import kernel_gradient


@pytest.mark.slow
def test_kernel_gradient_study_times_every_form_and_restores_the_library():
    library = conv_ops._kernel_gradient
    rates = kernel_gradient.measure("jena_convnet", rounds=2, steps=2, epochs=1)
    assert set(rates) == {"transposing_x", "transposing_dy", "library rule"}
    assert all(len(values) == 2 and min(values) > 0 for values in rates.values())
    assert conv_ops._kernel_gradient is library
