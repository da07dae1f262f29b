#!/usr/bin/env bash
# Build ffi_forward.cc against oneDNN (as run.sh downloads it) and jaxlib's XLA FFI headers, then
# time it from JAX (ffi_forward.py). Run from the repository root with conv1dx's environment:
#   bash experiments/conv_lowering/onednn_probe/run_ffi.sh [scratch dir]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
scratch="${1:-$(mktemp -d)}"
# shellcheck source=fetch_onednn.sh
source "$here/fetch_onednn.sh"
ffi_include="$(python -c 'import jax; print(jax.ffi.include_dir())')"
g++ -O2 -std=c++17 -shared -fPIC -w "$here/ffi_forward.cc" -I"$ffi_include" -I"$include" \
    -L"$lib" -ldnnl -fopenmp -Wl,-rpath,"$lib" -o "$scratch/libonednn_ffi.so"
echo "commit $(git -C "$here" rev-parse --short HEAD); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg); OMP_NUM_THREADS=${OMP_NUM_THREADS:=$(nproc)}"
export OMP_NUM_THREADS
python -m experiments.conv_lowering.onednn_probe.ffi_forward "$scratch/libonednn_ffi.so"
