#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time, starting from its committed
# seed corpus (read only) and a scratch corpus (where new inputs go).
# Used by `ctest -L fuzz` (CMakeLists.txt) and by run.sh.
#   run_one.sh BINARY SCRATCH_DIR SEED_DIR SECONDS [extra libFuzzer flags]
# Exit status: 0 when nothing was found; libFuzzer's non-zero status (and a
# crash-*/leak-*/timeout-* reproducer in SCRATCH_DIR-artifacts/) otherwise.
set -euo pipefail
bin=$1 scratch=$2 seeds=$3 secs=$4
shift 4
name=$(basename "$bin")
here=$(cd "$(dirname "$0")" && pwd)
artifacts=$scratch-artifacts
mkdir -p "$scratch" "$artifacts"
flags=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048
       -artifact_prefix="$artifacts/" -print_final_stats=1)
# The CLI parsers print every rejection to stderr; keep the log readable
# (libFuzzer and sanitizer reports still get through).
[ "$name" = fuzz_cli_lists ] && flags+=(-close_fd_mask=2)
[ -f "$here/dict/$name.dict" ] && flags+=(-dict="$here/dict/$name.dict")
exec "$bin" "${flags[@]}" "$@" "$scratch" "$seeds"
