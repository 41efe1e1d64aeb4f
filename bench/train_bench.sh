#!/usr/bin/env bash
# Times `cofi train` per ALS iteration, with peak RSS, the objective after
# the last iteration, and the parse and matrix-build times.
#
# usage: bench/train_bench.sh DATA.csv [--cofi BIN] [--factors "32 64 128 256"]
#          [--solvers "cg cholesky"] [--runs 3] [--iterations 4] [--threads 2]
#          [--raw FILE] [--kernels "avx2 avx512"]
#
# --kernels runs every configuration under each named kernel set
# (COFI_KERNELS; default: the set cofi picks on this CPU). Every line and
# the table name the CPU model and the kernel set with the figure.
#
# Every configuration runs --runs times; the runs are interleaved (run 1 of
# every configuration, then run 2, ...) so that a burst of load on a shared
# machine hits all configurations alike. Per run: the iteration time is
# the mean of the per-iteration times `cofi train` reports (wall clock of
# the two half-sweeps, without the objective, which --loss computes
# afterwards); the table gives the median over runs, and the fastest and
# slowest run. RSS is /usr/bin/time's maximum resident set size. "read" is
# `cofi train`'s parse time; "build" the time from the start of training to
# the start of iteration 1 (CSR, its transpose, initialization).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data=${1:?usage: bench/train_bench.sh DATA.csv [options]}
shift
cofi=$root/build/cofi factors="32 64 128 256" solvers="cg cholesky" runs=3 iters=4 threads=2 kernels=
raw=$(mktemp /tmp/cofi-train-bench.XXXXXX)
while [ $# -gt 0 ]; do
  case $1 in
    --cofi) cofi=$2 ;; --factors) factors=$2 ;; --solvers) solvers=$2 ;; --runs) runs=$2 ;;
    --iterations) iters=$2 ;; --threads) threads=$2 ;; --raw) raw=$2 ;; --kernels) kernels=$2 ;;
    *) echo "train_bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
[ -x "$cofi" ] || { echo "train_bench.sh: $cofi not found" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "train_bench.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/cofi-train-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
: > "$raw"
[ -n "$kernels" ] || kernels=$("$cofi" --version | sed -n 's/^kernels //p')
for ks in $kernels; do # fail early on a set this CPU cannot run
  COFI_KERNELS=$ks "$cofi" --version > /dev/null || exit 1
done
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "# $(date -u +%FT%TZ) $cpu, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $data" >&2
for run in $(seq 1 "$runs"); do
 for ks in $kernels; do
  for solver in $solvers; do
    for f in $factors; do
      log=$tmp/log
      COFI_KERNELS=$ks /usr/bin/time -v "$cofi" train "$data" --factors "$f" --solver "$solver" \
        --iterations "$iters" --threads "$threads" --loss -o "$tmp/m.cofi" > /dev/null 2> "$log" ||
        { echo "train_bench.sh: cofi train failed:" >&2; tail -5 "$log" >&2; exit 1; }
      awk -v run="$run" -v solver="$solver" -v f="$f" -v ks="$ks" '
        /^read [0-9]+ interactions/ { gsub(/[()s]/, "", $NF); read = $NF }
        /^iteration [0-9]+\// { n++; t = $3; sub(/s$/, "", t); sum += t
                               if (n == 1) { e = $5; sub(/s$/, "", e); build = e - t }
                               for (i = 1; i <= NF; i++) if ($i == "loss") loss = $(i + 1) }
        /Maximum resident set size/ { rss = $NF }
        /Elapsed \(wall clock\)/ { wall = $NF }
        END { printf "%s\t%s\t%d\t%.4f\t%.3f\t%.3f\t%.1f\t%s\t%s\t%s\n", solver, f, run, sum / n,
              read, build, rss / 1024, loss, wall, ks }' "$log" >> "$raw"
      tail -1 "$raw" | awk -F'\t' '{ printf "  run %s %-7s %-8s f=%-4s %.3f s/it  rss %.0f MB  loss %s\n", $3, $10, $1, $2, $4, $7, $8 }' >&2
    done
  done
 done
done
echo "CPU: $cpu; $threads threads; medians of $runs runs, $iters iterations each"
printf "%-9s %-8s %7s %9s %9s %9s %8s %8s %9s %12s\n" kernels solver factors "s/iter" fastest slowest "read s" "build s" "RSS MB" "loss@$iters"
sort -t$'\t' -k10,10 -k1,1 -k2,2n -k4,4n "$raw" | awk -F'\t' -v iters="$iters" '
  function flush() { if (!key) return
    m = int((n + 1) / 2)
    printf "%-9s %-8s %7s %9.3f %9.3f %9.3f %8.2f %8.2f %9.0f %12s\n", ks, s, f, it[m], it[1], it[n], rd[m], bd[m], rs[m], loss }
  { k = $10 "/" $1 "/" $2
    if (k != key) { flush(); key = k; n = 0; s = $1; f = $2; ks = $10 }
    n++; it[n] = $4; rd[n] = $5; bd[n] = $6; rs[n] = $7; loss = $8 }
  END { flush() }'
echo "raw results: $raw" >&2
