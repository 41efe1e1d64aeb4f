#!/usr/bin/env bash
# The dashboard (/ui/) in a real browser: Debian's headless Chromium against
# a real `cofi serve` on loopback with an ml-latest-small model.
#
# How: one `chromium --headless=new` run per page, --dump-dom for the DOM
# after the page's scripts ran and --screenshot for a PNG, both under
# --virtual-time-budget (the page's timers and fetches run to completion
# before the dump, with no sleeps to tune), and --enable-logging=stderr
# --v=0, where every console message and uncaught exception appears as an
# "INFO:CONSOLE" line: any such line fails the test. This part needs nothing but
# the chromium package (no WebDriver, no Node); what it cannot do is click,
# so the pages are loaded by their URLs (#/try?liked=a,b,c is what picking
# items writes); then ui_try_click.py (Python's standard library speaking
# the DevTools protocol over --remote-debugging-pipe: no WebDriver, no
# Node) types searches into Try it and clicks Pick, as a person would.
#
# Checks: every page loads with no console message; the User page of user 1
# shows /recommend's 10 titles and at least one "because" explanation; Try
# it with three items shows exactly what /recommend_cold answers for them,
# in order; the Live chart has data after some requests. Each page's
# screenshot (PNG) is saved in $COFI_SHOTS (the build directory's
# ui-screenshots/ under ctest) and must not be blank: several times the
# size of a blank page's PNG (a PNG's size is its compressed entropy).
set -u
. "$(dirname "$0")/lib.bash"
need_ml
command -v chromium >/dev/null || { echo "SKIP: no chromium (scripts/install-deps.sh installs it)"; exit 77; }
command -v jq >/dev/null && command -v curl >/dev/null || fail "curl and jq are needed"
T=$(mktemp -d)
SHOTS=${COFI_SHOTS:-$T/shots}
mkdir -p "$SHOTS"
spid=
trap '[ -n "$spid" ] && kill "$spid" 2>/dev/null; rm -rf "$T"' EXIT

"$COFI" train "$ML/ratings.csv" --format movielens --min-value 4 --items "$ML/movies.csv" \
  --factors 32 --regularization 0.02 --alpha 20 --iterations 10 --seed 42 -o "$T/ml.cofi" --quiet \
  || fail "train on ml-latest-small"
"$COFI" serve "$T/ml.cofi" --host 127.0.0.1 --port 0 --threads 2 2>"$T/serve.log" &
spid=$!
port=
for _ in $(seq 200); do
  port=$(sed -n 's/.*listening on http:\/\/.*:\([0-9][0-9]*\).*/\1/p' "$T/serve.log" | head -n 1)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || fail "cofi serve did not start: $(cat "$T/serve.log")"
U=http://127.0.0.1:$port

# chrome OUT_LOG ARGS...: one headless run with a fresh profile.
n=0
chrome() {
  local log=$1
  shift
  n=$((n + 1))
  timeout 90 chromium --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --no-first-run --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$T/profile$n" --enable-logging=stderr --v=0 "$@" 2>"$log"
}
# page NAME FRAGMENT [BUDGET_MS]: $T/NAME.html (the DOM) and $SHOTS/NAME.png,
# failing on any console message.
page() {
  local name=$1 frag=$2 budget=${3:-6000}
  chrome "$T/$name.dom.log" --virtual-time-budget="$budget" --dump-dom "$U/ui/$frag" >"$T/$name.html" \
    || fail "$name: chromium --dump-dom failed: $(tail -3 "$T/$name.dom.log")"
  chrome "$T/$name.png.log" --virtual-time-budget="$budget" --hide-scrollbars --window-size=1280,900 \
    --screenshot="$SHOTS/$name.png" "$U/ui/$frag" >/dev/null \
    || fail "$name: chromium --screenshot failed: $(tail -3 "$T/$name.png.log")"
  local c
  c=$(grep -h "CONSOLE" "$T/$name.dom.log" "$T/$name.png.log")
  [ -z "$c" ] || fail "$name ($frag): console messages: $c"
  grep -q '<main' "$T/$name.html" || fail "$name: no <main> in the DOM"
  grep -q '\[object ' "$T/$name.html" && fail "$name: an object rendered as text ([object ...])"
  grep -q 'Something went wrong\|class="error"' "$T/$name.html" \
    && fail "$name: the page shows an error: $(grep -o 'class="error"[^<]*<' "$T/$name.html" | head -3)"
  local size
  size=$(stat -c %s "$SHOTS/$name.png" 2>/dev/null || echo 0)
  [ "$size" -gt $((blank * 3)) ] && [ "$size" -gt 12000 ] \
    || fail "$name: the screenshot looks blank ($size bytes; a blank page is $blank)"
}
# HTML-escaped text, as it appears in a DOM dump.
esc() { sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g'; }

# The size of a blank page's PNG, the floor the screenshots are held to.
chrome "$T/blank.log" --window-size=1280,900 --screenshot="$T/blank.png" "about:blank" >/dev/null \
  || fail "chromium cannot take a screenshot: $(tail -3 "$T/blank.log")"
blank=$(stat -c %s "$T/blank.png")

# The dashboard itself: served from the binary, with its CSP.
curl -s -D "$T/h" -o "$T/index.html" "$U/ui/" || fail "GET /ui/"
grep -qi '^content-security-policy: default-src .self.' "$T/h" || fail "/ui/ has no CSP: $(cat "$T/h")"
grep -qi '^content-type: text/html' "$T/h" || fail "/ui/ is not text/html"
[ "$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$U/ui")" = "301 $U/ui/" ] || fail "/ui does not redirect to /ui/"
[ "$(curl -s -o /dev/null -w '%{content_type}' "$U/ui/app.js")" = "text/javascript; charset=utf-8" ] || fail "app.js type"
[ "$(curl -s -o /dev/null -w '%{content_type}' "$U/ui/style.css")" = "text/css; charset=utf-8" ] || fail "style.css type"
grep -Eqi '(src|href)="(https?:)?//' "$T/index.html" && fail "/ui/ loads something from another host"

# Model
page model "#/model"
grep -q "$(curl -s "$U/health" | jq -r .model.checksum)" "$T/model.html" || fail "model: no checksum"
grep -q "$(curl -s "$U/health" | jq -r .server.kernel_set)" "$T/model.html" || fail "model: no kernel set"

# User 1: /recommend's 10 titles, at least one explanation, history, similar users.
curl -s "$U/recommend?user_id=1&k=10" >"$T/rec.json"
[ "$(jq '.recommendations | length' "$T/rec.json")" = 10 ] || fail "/recommend did not give 10"
page user "#/user/1"
while IFS= read -r title; do
  grep -qF "$title" "$T/user.html" || fail "user 1: recommended title '$title' is not on the page"
done < <(jq -r '.recommendations[].title' "$T/rec.json" | esc)
grep -q 'class="because"' "$T/user.html" || fail "user 1: no explanation on the page"
grep -q 'from the model' "$T/user.html" || fail "user 1: no history from the model"
grep -q 'href="#/user/' "$T/user.html" || fail "user 1: no similar users"

# Item: metadata, similar items, interactions.
page item "#/item/296"
grep -qF "Pulp Fiction (1994)" "$T/item.html" || fail "item 296: no title"
inter=$(curl -s "$U/items/296" | jq .interactions)
grep -q ">$inter<" "$T/item.html" || fail "item 296: interactions ($inter) not shown"
sim=$(curl -s "$U/similar_items?item_id=296&k=10" | jq -r '.similar[0].title' | esc)
grep -qF "$sim" "$T/item.html" || fail "item 296: most similar item '$sim' not shown"

# Try it: three picks (found by title search) show /recommend_cold's answer, in order.
picks=
for q in "pulp fiction" "shawshank" "silence of the"; do
  id=$(curl -s "$U/items?search=$(jq -rn --arg q "$q" '$q|@uri')&k=1" | jq -r '.items[0].item_id')
  [ -n "$id" ] && [ "$id" != null ] || fail "title search for '$q' found nothing"
  picks=${picks:+$picks,}$id
done
[ "$picks" = "296,318,593" ] || fail "title search picked $picks, expected 296,318,593"
page try "#/try?liked=$picks"
want=$(curl -s "$U/recommend_cold?liked=$picks&k=10" | jq -r '.recommendations[].title' | esc)
got=$(grep -o 'href="#/item/[^"]*">[^<]*</a></td>\|href="#/item/[^"]*">[^<]*</a><div' "$T/try.html" \
  | sed 's/^[^>]*>//; s/<\/a>.*//')
[ "$got" = "$want" ] || fail "Try it shows
$got
but /recommend_cold answers
$want"

# Try it by hand: type three searches, click Pick on the first result of
# each (DevTools protocol over a pipe, ui_try_click.py); the URL must hold
# the picks and the page /recommend_cold's answer, with no console message
# (there, network errors such as a 404 count too).
clicked=$(python3 "$(dirname "$0")/ui_try_click.py" "$U" "$T/profile-click" "pulp fiction" "shawshank" \
  "silence of the" 2>&1) || fail "Try it by hand: $clicked"
[ "$clicked" = "296,318,593" ] || fail "Try it by hand picked $clicked, expected 296,318,593"

# Live: some traffic, then the chart has a line and a rate.
for _ in $(seq 30); do curl -s -o /dev/null "$U/recommend?user_id=$((RANDOM % 600 + 1))&k=10"; done
page live "#/live" 8000
grep -q '<path d="M' "$T/live.html" || fail "live: the chart has no data"
grep -q 'now [0-9.]* req/s' "$T/live.html" || fail "live: no request rate"
grep -q 'p50 ≤' "$T/live.html" || fail "live: no latency"
nrec=$(curl -s "$U/metrics" | awk '/^cofi_requests_total\{route="\/recommend",/ {n += $2} END {print n}')
[ "$nrec" -ge 30 ] || fail "/metrics counts $nrec requests to /recommend"
grep -q "<td>/recommend</td><td class=\"num\">$nrec</td>" "$T/live.html" \
  || fail "live: the $nrec requests to /recommend are not counted"

# Phone width: the user page still renders (one column).
chrome "$T/phone.log" --virtual-time-budget=6000 --hide-scrollbars --window-size=390,844 \
  --screenshot="$SHOTS/user-phone.png" "$U/ui/#/user/1" >/dev/null || fail "phone screenshot"
[ -z "$(grep CONSOLE "$T/phone.log")" ] || fail "phone: console messages: $(grep CONSOLE "$T/phone.log")"
echo "screenshots in $SHOTS"
pass
