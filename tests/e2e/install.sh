#!/usr/bin/env bash
# `cmake --install` into a temporary prefix, then the installed library used
# as a C program would: through pkg-config (shared, and static with
# --static) and through find_package(cofi) (cofi::cofi, cofi::cofi_static).
# Also: the shared library's SONAME and exports (the public cofi_* API only),
# the version from one place, and the man page rendering without warnings.
set -u
. "$(dirname "$0")/lib.bash"
here=$(dirname "$0")
root=${COFI_ROOT:-$here/../..}
build=$(dirname "$COFI")
[ -f "$build/CMakeCache.txt" ] || fail "$COFI is not in a CMake build tree"
command -v pkg-config >/dev/null || { echo "SKIP: pkg-config missing"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
P=$T/prefix

cmake --install "$build" --prefix "$P" >"$T/install.log" 2>&1 || fail "cmake --install: $(tail -3 "$T/install.log")"
for f in bin/cofi include/cofi.h include/cofi_version.h share/man/man1/cofi.1 share/doc/cofi/LICENSE; do
  [ -e "$P/$f" ] || fail "not installed: $f"
done
so=$(find "$P" -name 'libcofi.so.*' -type f | head -1)
[ -n "$so" ] || fail "no libcofi.so.N installed"
libdir=$(dirname "$so")
[ -f "$libdir/libcofi.a" ] || fail "no libcofi.a beside $so"
version=$("$P/bin/cofi" --version | awk 'NR == 1 {print $2}')
soname=$(objdump -p "$so" | awk '$1 == "SONAME" {print $2}')
case $version in
  0.*) [ "$soname" = "libcofi.so.$(cut -d. -f1,2 <<<"$version")" ] || fail "SONAME $soname for version $version (0.x: MAJOR.MINOR)" ;;
  *) [ "$soname" = "libcofi.so.${version%%.*}" ] || fail "SONAME $soname for version $version" ;;
esac
grep -q "COFI_VERSION \"$version\"" "$P/include/cofi_version.h" || fail "cofi_version.h does not say $version"
nm -D --defined-only "$so" | awk '$2 != "A" {sub(/@.*/, "", $3); print $2, $3}' >"$T/exports"
bad=$(awk '{print $2}' "$T/exports" | grep -v '^cofi_[^_]' | head -3)
[ -z "$bad" ] || fail "libcofi.so exports more than the public API: $bad"
grep -q '^T cofi_recommend_user$' "$T/exports" || fail "libcofi.so does not export cofi_recommend_user"
# every public function declared in cofi.h is exported
for fn in $(grep -oE '^[a-z_ *]*\bcofi_[a-z0-9_]+\(' "$P/include/cofi.h" | grep -oE 'cofi_[a-z0-9_]+\($' | tr -d '(' | sort -u); do
  grep -q "^T $fn\$" "$T/exports" || fail "cofi.h declares $fn but libcofi.so does not export it"
done

# A model to open, made by the installed tool.
"$P/bin/cofi" synth -o "$T/d" --users 50 --items 40 --interactions 600 >/dev/null 2>&1 || fail "installed cofi synth"
"$P/bin/cofi" train "$T/d/interactions.csv" -o "$T/m.cofi" --factors 4 --iterations 2 --quiet \
  >/dev/null 2>&1 || fail "installed cofi train"
cat >"$T/use.c" <<'C'
#include <cofi.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
  if (argc < 2) return 2;
  cofi_model *m = NULL;
  cofi_diag d = {0};
  if (cofi_model_open(argv[1], &m, &d) != COFI_OK) { fprintf(stderr, "%s\n", d.message); return 1; }
  if (strcmp(cofi_version(), COFI_VERSION) != 0) return 3;
  cofi_model_info info;
  cofi_model_get_info(m, &info);
  printf("%s %d.%d.%d users=%u\n", cofi_version(), COFI_VERSION_MAJOR, COFI_VERSION_MINOR,
         COFI_VERSION_PATCH, info.n_users);
  cofi_model_close(m);
  return 0;
}
C
want="$version $version users=50"
export PKG_CONFIG_PATH=$libdir/pkgconfig
cc -Wall -Werror "$T/use.c" -o "$T/use_shared" $(pkg-config --cflags --libs cofi) 2>"$T/cc.log" \
  || fail "compile with pkg-config --libs cofi: $(head -3 "$T/cc.log")"
objdump -p "$T/use_shared" | grep -q "NEEDED *$soname" || fail "use_shared is not linked to $soname"
out=$(LD_LIBRARY_PATH=$libdir "$T/use_shared" "$T/m.cofi") || fail "use_shared failed: $out"
[ "$out" = "$want" ] || fail "use_shared printed '$out', expected '$want'"
cc -Wall -Werror -static-libgcc "$T/use.c" -o "$T/use_static" $(pkg-config --cflags cofi) \
  -Wl,-Bstatic $(pkg-config --static --libs-only-L --libs-only-l cofi | sed 's/-lcofi\b/-lcofi -Wl,-Bdynamic/') \
  $(pkg-config --static --libs-only-other cofi) 2>"$T/cc2.log" \
  || fail "compile against libcofi.a with pkg-config --static: $(head -3 "$T/cc2.log")"
objdump -p "$T/use_static" | grep -q 'NEEDED *libcofi' && fail "use_static still needs the shared libcofi"
out=$("$T/use_static" "$T/m.cofi") || fail "use_static failed: $out"
[ "$out" = "$want" ] || fail "use_static printed '$out'"

for kind in shared static; do
  target=cofi::cofi; [ $kind = static ] && target=cofi::cofi_static
  mkdir -p "$T/cm-$kind"; cp "$T/use.c" "$T/cm-$kind/"
  printf 'cmake_minimum_required(VERSION 3.16)\nproject(use C)\nfind_package(cofi %s REQUIRED)\nadd_executable(use use.c)\ntarget_link_libraries(use %s)\n' \
    "$version" "$target" >"$T/cm-$kind/CMakeLists.txt"
  { cmake -S "$T/cm-$kind" -B "$T/cm-$kind/b" -DCMAKE_PREFIX_PATH="$P" && cmake --build "$T/cm-$kind/b"; } \
    >"$T/cm.log" 2>&1 || fail "find_package(cofi) with $target: $(tail -5 "$T/cm.log")"
  out=$(LD_LIBRARY_PATH=$libdir "$T/cm-$kind/b/use" "$T/m.cofi") || fail "find_package program ($kind) failed: $out"
  [ "$out" = "$want" ] || fail "find_package program ($kind) printed '$out'"
done

# The man page: renders without warnings and has every command.
w=$(groff -man -ww -z "$P/share/man/man1/cofi.1" 2>&1 | head -3)
[ -z "$w" ] || fail "groff warnings in cofi.1: $w"
for c in $("$P/bin/cofi" --help | awk '/^commands:/ {on = 1; next} on && NF {print $1}'); do
  grep -q "^\.SS \"$c\"" "$P/share/man/man1/cofi.1" || fail "cofi.1 has no section for the command $c"
  "$P/bin/cofi" "$c" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u | while read -r flag; do
    grep -qF -- "$(sed 's/-/\\-/g' <<<"$flag")" "$P/share/man/man1/cofi.1" || grep -qF -- "$flag" "$P/share/man/man1/cofi.1" \
      || { echo "FAIL: cofi.1 lacks $flag of cofi $c" >&2; exit 1; }
  done || exit 1
done
pass
