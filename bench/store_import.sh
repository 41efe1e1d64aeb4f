#!/usr/bin/env bash
# bench/store_import.sh [COFI] — the store's bulk paths on the 20M
# synthetic log (138,493 users x 26,744 items, 20,000,263 events):
#  1. `cofi import` of the log into a fresh SQLite store (wall seconds);
#  2. `cofi train --store` against `cofi train DATA`: the load time each
#     prints ("read ... (Xs)"), interleaved runs, median; and the CPU
#     seconds of the whole command (--iterations 1 --factors 8 --threads 1,
#     so the load dominates), steadier than wall time on a shared machine.
# With BENCH_PG=1 also the import into a throwaway PostgreSQL server.
# The log comes from $SYNTH20M, the acceptance cache, or `cofi synth`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
COFI=$(realpath "${1:-$root/build/cofi}")
RUNS=${RUNS:-3}
T=$(mktemp -d /tmp/cofi-bench-store.XXXXXX)
trap 'rm -rf "$T"' EXIT
DATA=${SYNTH20M:-/tmp/cofi-acc-cache/synth20m/interactions.csv}
if [ ! -s "$DATA" ]; then
  echo "generating the 20M log (cofi synth --seed 1) ..." >&2
  "$COFI" synth --users 138493 --items 26744 --interactions 20000263 --seed 1 -o "$T/synth" >&2
  DATA=$T/synth/interactions.csv
fi
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
now() { date +%s.%N; }

echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "data: $DATA ($(($(wc -l <"$DATA") - 1)) rows)"

t0=$(now)
"$COFI" import "$DATA" --store "sqlite:$T/s.db"
t1=$(now)
printf 'import into SQLite: %.1f s wall; database %s\n' "$(echo "$t1 - $t0" | bc)" "$(du -h "$T/s.db" | cut -f1)"

train_args=(--iterations 1 --factors 8 --threads 1)
read_time() { sed -n 's/^read .*(\([0-9.]*\)s)$/\1/p' "$1"; }
: >"$T/store.read"; : >"$T/csv.read"; : >"$T/store.cpu"; : >"$T/csv.cpu"
for r in $(seq "$RUNS"); do
  /usr/bin/time -f '%U %S' -o "$T/t" "$COFI" train --store "sqlite:$T/s.db" -o "$T/m.cofi" "${train_args[@]}" 2>"$T/log"
  read_time "$T/log" >>"$T/store.read"; awk '{print $1 + $2}' "$T/t" >>"$T/store.cpu"
  /usr/bin/time -f '%U %S' -o "$T/t" "$COFI" train "$DATA" -o "$T/m.cofi" "${train_args[@]}" 2>"$T/log"
  read_time "$T/log" >>"$T/csv.read"; awk '{print $1 + $2}' "$T/t" >>"$T/csv.cpu"
done
sr=$(median <"$T/store.read"); cr=$(median <"$T/csv.read")
sc=$(median <"$T/store.cpu"); cc=$(median <"$T/csv.cpu")
echo "load (median of $RUNS, wall): store $sr s, CSV $cr s, ratio $(echo "scale=2; $sr / $cr" | bc)"
echo "  runs: store $(tr '\n' ' ' <"$T/store.read")| CSV $(tr '\n' ' ' <"$T/csv.read")"
echo "whole train command, CPU seconds (median): store $sc, CSV $cc"

if [ "${BENCH_PG:-0}" = 1 ]; then
  "$root/tests/store/with_postgres.sh" bash -c '
    t0=$(date +%s.%N); "$0" import "$1" --store "$COFI_TEST_PG_URL" --quiet; t1=$(date +%s.%N)
    printf "import into PostgreSQL: %.1f s wall\n" "$(echo "$t1 - $t0" | bc)"' "$COFI" "$DATA"
fi
