"""Run a check script in a fresh Python process whose XLA intra-op pool has a given number of threads."""

import os
import subprocess
import sys
from pathlib import Path


def run_with_threads(script: str, threads: int | None) -> None:
    """Runs `script` (which prints "checked" when its assertions pass) with `NPROC=threads` (jaxlib sizes
    its pool by NPROC, else the cores; None: the cores), so a 2-core machine checks splits over 3 or 8."""
    env = {**os.environ, **({"NPROC": str(threads)} if threads else {})}
    result = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[1], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "checked" in result.stdout


def assert_same_bits_with_threads(source: str, threads: int, folder: Path) -> None:
    """`source` (Python that defines `result()`, returning an array) gives the same bits on two calls here and
    in a fresh process whose pool has `threads` threads (`run_with_threads`); `folder` holds the bits between."""
    import numpy as np

    namespace = {}
    exec(source, namespace)
    first = np.asarray(namespace["result"]())
    np.testing.assert_array_equal(first, namespace["result"]())
    want = Path(folder) / "want.npy"
    np.save(want, first)
    run_with_threads(source + f"\nimport numpy as np\nnp.testing.assert_array_equal(np.asarray(result()), "
                              f"np.load({str(want)!r}))\nprint('checked')\n", threads)
