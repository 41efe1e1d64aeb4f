#!/usr/bin/env bash
# Style rules checked by a machine (as curl does): no atoi/sprintf/strcpy/
# gets anywhere; the library (src/) never prints to stdout/stderr and
# never exits; every source file opens with a comment saying what it is for.
set -u
. "$(dirname "$0")/lib.bash"
root=${COFI_ROOT:-$(dirname "$0")/../..}
cd "$root" || fail "no project root"
bad=$(grep -rnE '\b(atoi|atol|sprintf|vsprintf|strcpy|strcat|gets)\(' src server tools include \
      | grep -vE '\b(snprintf|vsnprintf)\(')
[ -z "$bad" ] || fail "banned functions: $bad"
bad=$(grep -rnE '\b(printf|puts|perror|exit|abort)\(|\b(stdout|stderr)\b' src | grep -v '^src/internal.h:.*format(printf')
[ -z "$bad" ] || fail "the library must not print or exit: $bad"
for f in $(git ls-files 'src/*.c' 'src/*.h' 'server/*.c' 'server/*.h' 'tools/*.c' 'tools/*.h' 'include/*.h' 2>/dev/null); do
  head -1 "$f" | grep -q '^/\*' || fail "$f does not open with a comment saying what it is for"
done
pass
