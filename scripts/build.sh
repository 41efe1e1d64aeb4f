#!/usr/bin/env bash
# Configures and builds cofi into build/ (or $1), installing dependencies
# first. Extra arguments go to cmake, e.g. scripts/build.sh build-asan -DCOFI_SANITIZE=ON
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
