#!/usr/bin/env bash
# oneDNN's convolutions on the conv-heavy seed models' shapes, on this machine (see README.md).
# Downloads oneDNN (GNU OpenMP build) and its headers from PyPI into a scratch folder, compiles the
# probe with g++, and prints forward / backward-data / backward-weights times per shape, for plain
# channels-last layouts (nwc, what conv1dx's arrays are) and for the layouts oneDNN picks ("any").
#   bash experiments/conv_lowering/onednn_probe/run.sh [scratch dir]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
scratch="${1:-$(mktemp -d)}"
# shellcheck source=fetch_onednn.sh
source "$here/fetch_onednn.sh"
g++ -O2 -std=c++17 "$here/conv1d_passes.cpp" -I"$include" -L"$lib" -ldnnl -fopenmp \
    -o "$scratch/conv1d_passes"
echo "commit $(git -C "$here" rev-parse --short HEAD); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "oneDNN $version (onednn-cpu-gomp), OMP_NUM_THREADS=${OMP_NUM_THREADS:=$(nproc)}"
export OMP_NUM_THREADS LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# batch, length, in channels, filters, kernel: IMDB's first convolution, WISDM's four.
for shape in "128 500 128 32 7" "400 80 3 100 10" "400 71 100 100 10" "400 20 100 160 10" \
             "400 11 160 160 10"; do
    for layout in nwc any; do
        # shellcheck disable=SC2086
        "$scratch/conv1d_passes" $shape $layout
    done
done
