#!/usr/bin/env bash
# Download, here (with network), the pure-Python wheels the GPU image lacks into .whl/, for
# Python 3.12: bench/device.sh installs them there with pip --no-index.
#
#   bench/fetch_wheels.sh
#
# The import chain of the benchmarks and of jobs.train.standalone needs, beyond what the
# GPU image holds (torch, numpy, OpenCV, pyyaml, tqdm, matplotlib): webdataset, whose
# Requires-Dist is braceexpand, numpy and pyyaml, and braceexpand (no requirements).
# Versions are the pinned ones of constraints.txt. .whl/ is ignored (.git/info/exclude).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PACKAGES=(webdataset braceexpand)

pins=()
for name in "${PACKAGES[@]}"; do
  pin=$(grep -i "^$name==" constraints.txt) || { echo "no pin for $name in constraints.txt" >&2; exit 1; }
  pins+=("$pin")
done
mkdir -p .whl
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >>.git/info/exclude
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl "${pins[@]}"
for wheel in .whl/*.whl; do
  echo "$wheel: $(unzip -p "$wheel" '*.dist-info/METADATA' | grep '^Requires-Dist' |
    grep -v 'extra ==' | tr '\n' ' ')"
done
