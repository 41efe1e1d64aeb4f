#!/usr/bin/env bash
# cofi serve: request framing (RFC 9112 6.3) and request smuggling, with
# raw sockets; the cases are in serve_framing.py.
set -u
. "$(dirname "$0")/lib.bash"
command -v python3 >/dev/null || { echo "SKIP: python3 is needed"; exit 77; }
[ -x "$COFI" ] || fail "no cofi binary at $COFI"
COFI=$COFI exec python3 "$(dirname "$0")/serve_framing.py"
