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

# The convolution lowering's decisions and oneDNN's built handlers: per test session, not the user's.
for _variable, _name in (("CONV1DX_CONV_TUNING_FILE", "conv_lowering.json"), ("CONV1DX_ONEDNN_BUILD_DIR", "")):
    if _variable not in os.environ:
        _folder = tempfile.mkdtemp(prefix="conv1dx-test-")
        os.environ[_variable] = os.path.join(_folder, _name) if _name else _folder
        atexit.register(shutil.rmtree, _folder, ignore_errors=True)
