# Shared helpers for the end-to-end tests (sourced). ctest sets COFI (the
# binary), COFI_SHARED (../shared) and COFI_ROOT (the project root).
COFI=${COFI:-$(dirname "$0")/../../build/cofi}
COFI_SHARED=${COFI_SHARED:-$(dirname "$0")/../../../shared}
ML=$COFI_SHARED/data/ml-latest-small
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "PASS: $(basename "$0")"; exit 0; }
# Skips (exit 77) when ml-latest-small is not beside the project.
need_ml() { [ -r "$ML/ratings.csv" ] || { echo "SKIP: no $ML"; exit 77; }; }
# expect_fail CODE TEXT CMD...: CMD must exit with CODE and say TEXT on stderr.
expect_fail() {
  local want=$1 text=$2; shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  [ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want (stderr: $err)"
  grep -qF -- "$text" <<<"$err" || fail "'$*' stderr lacks '$text': $err"
  [ "$(wc -l <<<"$err")" -le 2 ] || fail "'$*' printed more than a clear line or two: $err"
}
