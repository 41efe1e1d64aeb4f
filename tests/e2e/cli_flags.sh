#!/usr/bin/env bash
# Declarative CLI cases: bad flags and nonsense parameters get one clear
# line and exit 2 before any data is read (the data path does not even
# exist here); damaged model files are refused with exit 4.
set -u
. "$(dirname "$0")/lib.bash"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
nodata=$T/does-not-exist.csv

# exit  text in stderr          command
while IFS='|' read -r code text args; do
  [ -z "$code" ] && continue
  # shellcheck disable=SC2086
  expect_fail "$code" "$text" "$COFI" $args
done <<EOF2
2|--factors|train $nodata -o $T/m --factors 0
2|--factors|train $nodata -o $T/m --factors 100000
2|--factors|train $nodata -o $T/m --factors 12abc
2|--regularization|train $nodata -o $T/m --regularization -1
2|--regularization|train $nodata -o $T/m --regularization nan
2|--alpha|train $nodata -o $T/m --alpha inf
2|--alpha|train $nodata -o $T/m --alpha -0.5
2|--iterations|train $nodata -o $T/m --iterations 0
2|--solver|train $nodata -o $T/m --solver lu
2|--cg-steps|train $nodata -o $T/m --cg-steps 0
2|--threads|train $nodata -o $T/m --threads -1
2|--event-weights|train $nodata -o $T/m --event-weights watch
2|--event-weights|train $nodata -o $T/m --event-weights watch=x
2|--format|train $nodata -o $T/m --format parquet
2|needs a value|train $nodata -o $T/m --factors
2|missing -o|train $nodata
2|unknown option|train $nodata -o $T/m --bogus
2|unknown command|frobnicate
6|does-not-exist.csv|train $nodata -o $T/m
6|cannot open|info $T/none.cofi
EOF2

: >"$T/empty.cofi"
echo "user_id,item_id" >"$T/text.cofi"
expect_fail 4 "empty file" "$COFI" info "$T/empty.cofi"
expect_fail 4 "not a cofi model" "$COFI" info "$T/text.cofi"
expect_fail 4 "not a cofi model" "$COFI" recommend "$T/text.cofi" --user 1
"$COFI" --help >/dev/null || fail "--help"
for c in synth train info recommend similar split eval tune serve; do
  "$COFI" "$c" --help >/dev/null 2>&1 || fail "cofi $c --help"
done
pass
