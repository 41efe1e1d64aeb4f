#!/usr/bin/env bash
# cofi serve under signal storms and deploy patterns in any interleaving:
# SIGHUP + cp over the served file, 300 SIGHUPs, SIGHUP then SIGTERM,
# POST /admin/reload, rename, truncate. The scenarios are in
# serve_signals.py (Python: a client thread checks every answer while the
# signals fly). ctest labels: e2e, stress.
set -u
. "$(dirname "$0")/lib.bash"
command -v python3 >/dev/null || { echo "SKIP: python3 is needed"; exit 77; }
[ -x "$COFI" ] || fail "no cofi binary at $COFI"
COFI=$COFI exec python3 "$(dirname "$0")/serve_signals.py"
