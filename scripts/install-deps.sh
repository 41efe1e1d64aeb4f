#!/usr/bin/env bash
# Installs cofi's build and test dependencies from Debian packages.
# Idempotent: packages already present are not reinstalled, and apt-get is
# skipped entirely when everything is there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libopenblas-dev        # BLAS (sgemm/ssyrk/sgemv) and LAPACK-free kernels
  libcmocka-dev          # unit tests
  libmicrohttpd-dev      # HTTP server
  libjansson-dev         # JSON
  curl jq                # end-to-end tests drive the real server and CLI
  groff-base             # the man page test renders cofi.1 (groff -ww)
  # the Python package (python/, tests/e2e/python.sh): Debian's Python only
  python3-dev python3-numpy python3-scipy python3-pytest python3-venv
  python3-pip python3-setuptools python3-wheel
  libsqlite3-dev libpq-dev  # the store's back ends (src/store/)
  sqlite3                # tests/e2e/store_migrate.sh writes a version-1 store with the shell
  postgresql             # the store tests start a real server (initdb, pg_ctl)
  chromium fonts-dejavu-core  # the dashboard test (tests/e2e/ui_browser.sh) renders /ui/ headless
  openmpi-bin libopenmpi-dev  # mpirun cofi train (docs/mpi.md; optional to build)
)
# Optional tools, installed with --dev: fuzzing, benchmarks, profiling.
dev_packages=(clang libclang-rt-14-dev wrk hyperfine valgrind)

want=("${packages[@]}")
[ "${1:-}" = "--dev" ] && want+=("${dev_packages[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
