#!/usr/bin/env bash
# The demo: installs dependencies, builds, generates the built-in demo data
# (a synthetic video-platform log), trains a model, evaluates it against
# popularity and random baselines, and prints recommendations.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh build >&2
cofi=./build/cofi
out=${DEMO_DIR:-demo}
mkdir -p "$out"

echo "== cofi synth: demo data in $out/"
$cofi synth -o "$out"
head -3 "$out/interactions.csv"

echo; echo "== cofi train"
$cofi train "$out/interactions.csv" --items "$out/items.csv" --factors 32 \
  --alpha 5 --regularization 0.05 --iterations 15 -o "$out/model.cofi"
$cofi info "$out/model.cofi"

echo; echo "== cofi eval (leave-last-out by time; ALS vs popularity vs random)"
$cofi eval "$out/interactions.csv" --protocol leave-last-out --factors 32 \
  --alpha 5 --regularization 0.05 --iterations 15 --k 10

for u in u00001 u00002 u00003; do
  echo; echo "== cofi recommend --user $u"
  $cofi recommend "$out/model.cofi" --user "$u" -k 5
done
echo; echo "== cofi recommend --liked (cold start)"
liked=$(awk -F, 'NR>1 && NR<5 {print $2}' "$out/interactions.csv" | paste -sd, -)
$cofi recommend "$out/model.cofi" --liked "$liked" -k 5
echo; echo "== cofi similar --item v00001"
$cofi similar "$out/model.cofi" --item v00001 -k 5
