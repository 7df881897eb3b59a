#!/usr/bin/env bash
# Installs the Debian 12 packages cacheclip needs (only the missing ones; `apt-get update` once
# when something is missing), then configures and builds into build/ (Release, Ninja).
# Idempotent: a second run installs nothing and rebuilds only what changed.
#   scripts/setup.sh            deps + build
#   scripts/setup.sh --fuzz     also the clang/libFuzzer packages and a build-fuzz/ tree
set -euo pipefail
cd "$(dirname "$0")/.."

# python3-torch and python3-regex: the training scripts of the shipped models (models/train/)
# and their test; torch runs under /usr/bin/python3.
pkgs=(build-essential cmake ninja-build pkg-config git python3 python3-numpy python3-torch python3-regex
      libopenblas-dev libomp-dev libhwloc-dev libxsimd-dev nlohmann-json3-dev libpcre2-dev
      libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev libxxhash-dev libzstd-dev
      ocl-icd-opencl-dev opencl-headers pocl-opencl-icd)
fuzz=0
[[ "${1:-}" == "--fuzz" ]] && fuzz=1 && pkgs+=(clang libclang-rt-14-dev)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

jobs=$(nproc)
if [[ ! -f build/build.ninja ]]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build build -j "$jobs"
if ((fuzz)); then
  if [[ ! -f build-fuzz/build.ninja ]]; then
    CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCACHECLIP_FUZZ=ON -DCACHECLIP_BUILD_TESTS=OFF -DCACHECLIP_BUILD_BENCH=OFF >/dev/null
  fi
  cmake --build build-fuzz -j "$jobs"
fi
