"""Test-suite settings: two CPU devices so multi-device (data-parallel) code runs without a GPU;
runs share one compilation cache in a temporary folder instead of writing the checkout's
`outputs/`."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()

if "CONV1DX_COMPILATION_CACHE" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="conv1dx-test-compilation-cache-")
    os.environ["CONV1DX_COMPILATION_CACHE"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
