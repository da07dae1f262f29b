"""Compiles `conv1d.cc` (oneDNN's convolution passes as XLA FFI handlers) and `embedding_taps.cc` (the
gathers and scatter-adds of `conv1dx.nn.embedding_conv`) into one shared library, once.

The library links oneDNN from the `onednn-cpu-gomp` wheel (a dependency of conv1dx on Linux x86-64;
its `lib/` and the `onednn-devel-cpu-gomp` headers' `include/` land in the Python environment's prefix) and includes the
XLA FFI headers that jaxlib ships (`jax.ffi.include_dir()`). It is built with the system's C++ compiler
(`$CXX`, else `c++`) on first use and kept in `$CONV1DX_ONEDNN_BUILD_DIR` (default
`~/.cache/conv1dx/onednn`) under a name that hashes the sources, the jaxlib and oneDNN versions, the
compiler and its flags, so an upgrade of any of them builds a new library and never loads a stale one.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jax
import jaxlib

from conv1dx.nn.user_cache import user_cache_path

# oneDNN's convolution passes, conv1dx's direct loops, the embedding convolution's gathers and scatters, and
# their thread helper
SOURCES = tuple(Path(__file__).with_name(name)
                for name in ("conv1d.cc", "correlate.cc", "embedding_taps.cc", "kernel_gradient.cc"))
HEADERS = (Path(__file__).with_name("parallel_for.h"),)
_HEADER = Path("include", "oneapi", "dnnl", "dnnl.hpp")
# -fopenmp: the handlers set GNU OpenMP's per-thread limit (oneDNN runs single-threaded on XLA's threads).
_FLAGS = ("-O2", "-std=c++17", "-fopenmp", "-shared", "-fPIC")


class OnednnUnavailable(RuntimeError):
    """oneDNN's convolutions cannot be built or loaded here; conv1dx uses XLA's (the message says why)."""


def onednn_prefix() -> Path:
    """The folder holding oneDNN's `include/` and `lib/`: `$CONV1DX_ONEDNN_ROOT`, else this environment's prefix."""
    prefix = Path(os.environ.get("CONV1DX_ONEDNN_ROOT") or sys.prefix)
    if not (prefix / _HEADER).is_file() or not any((prefix / "lib").glob("libdnnl.so*")):
        raise OnednnUnavailable(
            f"oneDNN is not installed under {prefix} (looked for {_HEADER} and lib/libdnnl.so); pip "
            "install onednn-cpu-gomp==2023.2.0 onednn-devel-cpu-gomp==2023.2.0 (conv1dx's dependencies on Linux "
            "x86-64) or set CONV1DX_ONEDNN_ROOT to a oneDNN 3.x installation built with GNU OpenMP."
        )
    return prefix


def compiler() -> str:
    """The C++ compiler: `$CXX`, else `c++` on the PATH."""
    name = os.environ.get("CXX") or "c++"
    path = shutil.which(name)
    if path is None:
        raise OnednnUnavailable(f"no C++ compiler {name!r} on the PATH to build oneDNN's convolutions; install "
                                "one (e.g. g++) or set CXX.")
    return path


def build_dir() -> Path:
    """Where built libraries are kept: `$CONV1DX_ONEDNN_BUILD_DIR`, else `~/.cache/conv1dx/onednn`."""
    return user_cache_path("CONV1DX_ONEDNN_BUILD_DIR", "onednn")


def _version_text(prefix: Path) -> str:
    header = prefix / "include" / "oneapi" / "dnnl" / "dnnl_version.h"
    return header.read_text() if header.is_file() else ""


def onednn_version() -> str:
    """oneDNN's version from its headers, e.g. "3.2.0" ("unknown" when the header lacks it)."""
    numbers = dict(re.findall(r"#define DNNL_VERSION_(MAJOR|MINOR|PATCH) (\d+)", _version_text(onednn_prefix())))
    if len(numbers) < 3:
        return "unknown"
    return f"{numbers['MAJOR']}.{numbers['MINOR']}.{numbers['PATCH']}"


def library_path() -> Path:
    """The library's path for these sources, jaxlib, oneDNN and compiler (built or not)."""
    prefix, cxx = onednn_prefix(), compiler()
    digest = hashlib.sha256()
    sources = [path.read_bytes() for path in SOURCES + HEADERS]
    for part in (*sources, jaxlib.__version__.encode(), _version_text(prefix).encode(),
                 str(prefix.resolve()).encode(), cxx.encode(), " ".join(_FLAGS).encode()):
        digest.update(part)
        digest.update(b"\0")
    return build_dir() / f"conv1dx_onednn_{digest.hexdigest()[:16]}.so"


def build() -> Path:
    """Path of the built library, compiling it first if needed (a few seconds, once per version)."""
    target = library_path()
    if target.is_file():
        return target
    prefix, cxx = onednn_prefix(), compiler()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OnednnUnavailable(f"cannot create {target.parent} for oneDNN's convolutions ({error}); set "
                                "CONV1DX_ONEDNN_BUILD_DIR to a writable folder.") from error
    lib = prefix / "lib"
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        partial = Path(scratch, target.name)
        command = [cxx, *_FLAGS, "-isystem", jax.ffi.include_dir(),
                   "-isystem", str(prefix / "include"), *map(str, SOURCES), "-L", str(lib), "-ldnnl",
                   f"-Wl,-rpath,{lib}", "-o", str(partial)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise OnednnUnavailable(f"building oneDNN's convolutions failed ({' '.join(command)}):\n"
                                    f"{result.stderr[-2000:]}")
        os.replace(partial, target)  # atomic: a parallel process sees no library or a whole one
    return target
