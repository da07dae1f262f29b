# Sourced by run.sh and run_ffi.sh: downloads oneDNN (GNU OpenMP build, no other runtime needed) and
# its headers from PyPI into "$scratch", and sets $include and $lib to their folders.
version=2023.2.0
python -m pip download --quiet --no-deps -d "$scratch" \
    "onednn-cpu-gomp==$version" "onednn-devel-cpu-gomp==$version"
for wheel in "$scratch"/*.whl; do python -m zipfile -e "$wheel" "$scratch/unpacked"; done
include="$scratch/unpacked/onednn_devel_cpu_gomp-$version.data/data/include"
lib="$scratch/unpacked/onednn_cpu_gomp-$version.data/data/lib"
