#!/usr/bin/env bash
# A/B of GET /recommend with and without a store attached (never a timed
# test): two servers of the same model run side by side,
#   A: cofi serve MODEL
#   B: cofi serve MODEL --store sqlite:STORE   (ml-latest-small imported)
# and wrk (users.lua, as run.sh) hits them in turn, A B B A A B ..., RUNS pairs
# of DURATION each; the idle one costs nothing meanwhile. Prints each run,
# the ratio B/A pair by pair and the medians, of the rate and of the
# server's CPU per request (from /proc: steadier than the rate on a
# shared machine). With FEEDBACK=1, a third wrk
# posts single events to B's /feedback during B's runs (the store busy).
#
# usage: bench/serve/store_ab.sh [path/to/cofi]
# environment (defaults): DURATION=10s CONNECTIONS=64 WRK_THREADS=2 RUNS=5
#   K=10 MODEL= (a model file; else trained on ml-latest-small) FEEDBACK=0
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
COFI=${1:-${COFI:-$root/build/cofi}}
ML=${ML:-$root/../shared/data/ml-latest-small}
DURATION=${DURATION:-10s} CONNECTIONS=${CONNECTIONS:-64} WRK_THREADS=${WRK_THREADS:-2}
RUNS=${RUNS:-5} K=${K:-10} FEEDBACK=${FEEDBACK:-0}
command -v wrk >/dev/null || { echo "wrk is needed (scripts/install-deps.sh --dev)"; exit 1; }
[ -x "$COFI" ] || { echo "no cofi binary at $COFI (build first, or pass its path)"; exit 1; }
[ -r "$ML/ratings.csv" ] || { echo "no $ML/ratings.csv"; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

model=${MODEL:-$work/ml.cofi}
if [ -z "${MODEL:-}" ]; then
  echo "training on ml-latest-small (the seeds' parameters) ..."
  "$COFI" train "$ML/ratings.csv" --format movielens --min-value 4 --items "$ML/movies.csv" \
    --factors 64 --regularization 0.02 --alpha 20 --iterations 20 --seed 42 -o "$model" --quiet
fi
"$COFI" import "$ML/ratings.csv" --format movielens --min-value 4 --items "$ML/movies.csv" \
  --store "sqlite:$work/store.db" --quiet
awk -F, 'NR > 1 && $3 >= 4 {print $1}' "$ML/ratings.csv" | sort -un >"$work/users.txt"

start() { # $1 = log name, rest = serve arguments (port in $work/$1.port)
  "$COFI" serve "${@:2}" --port 0 --quiet >/dev/null 2>"$work/$1.log" &
  pids+=($!)
  local port=
  for _ in $(seq 200); do
    port=$(sed -n 's/.*listening on http:\/\/.*:\([0-9][0-9]*\) with.*/\1/p' "$work/$1.log" | head -n 1)
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { cat "$work/$1.log" >&2; exit 1; }
  echo "$port" >"$work/$1.port"
}
start a "$model"
start b "$model" --store "sqlite:$work/store.db"
port_a=$(cat "$work/a.port") port_b=$(cat "$work/b.port")

export COFI_BENCH_USERS=$work/users.txt COFI_BENCH_K=$K
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
run() { # $1 = port, $2 = server pid -> "requests/s server-CPU-us-per-request"
  local c0 c1
  c0=$(cpu_s "$2")
  wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$here/users.lua" \
    "http://127.0.0.1:$1/" >"$work/wrk.txt"
  c1=$(cpu_s "$2")
  grep -q "Non-2xx" "$work/wrk.txt" && { cat "$work/wrk.txt" >&2; exit 1; }
  awk -v c="$(echo "$c1 - $c0" | bc -l)" '/^Requests\/sec/ {rps = $2} /requests in/ {n = $1}
    END {printf "%s %.2f\n", rps, c * 1e6 / n}' "$work/wrk.txt"
}
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'); $("$COFI" --version | tr "\n" " ")"
echo "command: COFI_BENCH_USERS=users.txt wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION -s users.lua URL"
wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d2s -s "$here/users.lua" "http://127.0.0.1:$port_a/" >/dev/null
wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d2s -s "$here/users.lua" "http://127.0.0.1:$port_b/" >/dev/null
printf '%-4s %12s %12s %7s %9s %9s %7s %s\n' pair "A req/s" "B req/s" "B/A" "A us/req" "B us/req" "B/A" load
for r in $(seq "$RUNS"); do
  # odd pairs A then B, even pairs B then A: a drift of the machine's
  # speed within a pair favours neither
  [ $((r % 2)) = 1 ] && a=$(run "$port_a" "${pids[0]}")
  fb=
  if [ "$FEEDBACK" = 1 ]; then
    wrk -t1 -c8 -d"$DURATION" -s "$root/bench/store/feedback_single.lua" \
      "http://127.0.0.1:$port_b/" >/dev/null &
    fb=$!
  fi
  b=$(run "$port_b" "${pids[1]}")
  [ -n "$fb" ] && wait "$fb"
  [ $((r % 2)) = 0 ] && a=$(run "$port_a" "${pids[0]}")
  read -r ar ac <<<"$a"
  read -r br bc <<<"$b"
  printf '%-4s %12s %12s %7.3f %9s %9s %7.3f %s\n' "$r" "$ar" "$br" "$(echo "$br / $ar" | bc -l)" \
    "$ac" "$bc" "$(echo "$bc / $ac" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$work/table"
done
med() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo "median A $(awk '{print $2}' "$work/table" | med) req/s, B $(awk '{print $3}' "$work/table" | med) req/s, B/A $(awk '{print $4}' "$work/table" | med)"
echo "median server CPU per request: A $(awk '{print $5}' "$work/table" | med) us, B $(awk '{print $6}' "$work/table" | med) us, B/A $(awk '{print $7}' "$work/table" | med)"
