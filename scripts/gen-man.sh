#!/usr/bin/env bash
# Writes the man page cofi.1 from a template and the tool's own --help
# texts, so the page documents exactly the flags the binary takes.
# usage: scripts/gen-man.sh COFI_BINARY TEMPLATE OUTPUT
# The template's line `.\" @COMMANDS@` becomes one subsection per command
# listed by `cofi --help`, holding that command's `cofi CMD --help` text;
# @VERSION@ becomes the version `cofi --version` prints.
set -euo pipefail
cofi=$1 template=$2 out=$3

# roff-safe text: a backslash is \e, and a line starting with . or ' would
# be a request, so it starts with the zero-width \& instead.
roff() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }

version=$("$cofi" --version | awk 'NR == 1 {print $2}')
[ -n "$version" ] || { echo "gen-man.sh: '$cofi --version' printed no version" >&2; exit 1; }
commands=$("$cofi" --help | awk '/^commands:/ {on = 1; next} on && NF {print}')
[ -n "$commands" ] || { echo "gen-man.sh: '$cofi --help' lists no commands" >&2; exit 1; }

body=$(mktemp)
trap 'rm -f "$body" "$out.tmp"' EXIT
while read -r name summary; do
  help=$("$cofi" "$name" --help) || { echo "gen-man.sh: 'cofi $name --help' failed" >&2; exit 1; }
  {
    printf '.SS "%s"\n' "$name"
    printf '%s\n' "$summary" | roff
    printf '.PP\n.RS 2\n.nf\n'
    printf '%s\n' "$help" | roff
    printf '.fi\n.RE\n'
  } >>"$body"
done <<<"$commands"

awk -v body="$body" -v version="$version" '
  /^\.\\" @COMMANDS@$/ { while ((getline line < body) > 0) print line; next }
  { gsub(/@VERSION@/, version); print }
' "$template" >"$out.tmp"
mv "$out.tmp" "$out"
