#!/usr/bin/env bash
# The Python package (python/): built as a user installs it, with Debian's
# python3 into a fresh venv (--system-site-packages: numpy, scipy and pytest
# come from Debian) by pip --no-build-isolation --no-index, then its pytest
# suite (python/tests), which compares with this build's cofi binary and
# reads ../shared/data when present. The package is built from a copy of
# python/ so the source tree stays clean; COFI_SOURCE_DIR points the build
# at this tree's C sources. Skips (77) when Debian's Python packages are
# missing (scripts/install-deps.sh installs them).
set -u
. "$(dirname "$0")/lib.bash"
here=$(dirname "$0")
root=$(realpath "${COFI_ROOT:-$here/../..}")
PY=/usr/bin/python3
$PY -c 'import numpy, scipy, pytest, setuptools, wheel, sysconfig, os, venv
assert os.path.exists(sysconfig.get_paths()["include"] + "/Python.h")' 2>/dev/null \
  || { echo "SKIP: python3-dev/numpy/scipy/pytest/venv missing (scripts/install-deps.sh)"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
cp -r "$root/python" "$T/src"
rm -rf "$T/src/build" "$T/src"/*.egg-info
$PY -m venv --system-site-packages "$T/venv" || fail "python3 -m venv"
COFI_SOURCE_DIR=$root "$T/venv/bin/python" -m pip install --no-build-isolation --no-index "$T/src" \
  >"$T/pip.log" 2>&1 || fail "pip install: $(tail -20 "$T/pip.log")"
# the installed package, not the source directory, is what the tests import
cd "$T" || fail "cd $T"
COFI=$COFI COFI_SHARED=$COFI_SHARED "$T/venv/bin/python" -m pytest -q -p no:cacheprovider \
  "$T/src/tests" >"$T/pytest.log" 2>&1 || fail "pytest: $(tail -40 "$T/pytest.log")"
grep -Eq "^[0-9]+ passed" "$T/pytest.log" || fail "pytest summary: $(tail -3 "$T/pytest.log")"
! grep -q "skipped" "$T/pytest.log" || [ ! -r "$ML/ratings.csv" ] \
  || fail "tests skipped although the data is there: $(tail -3 "$T/pytest.log")"
tail -1 "$T/pytest.log"
pass
