#!/usr/bin/env bash
# The Dockerfile's build, reproduced from the Dockerfile itself (no
# container engine runs on these machines and no base image can be pulled).
# The file is parsed, not copied: every stage before the last is rebuilt in
# a clean directory standing for its root file system, its WORKDIR, COPY,
# ENV and RUN steps executed as written (RUN with /bin/sh -c, as Docker
# does); the last stage's COPY --from steps must find their files there.
# Then the image's entry point and default command run in SageMaker mode
# against a model in an /opt/ml/model-like directory ($SM_MODEL_DIR), and
# /ping and /invocations must answer.
#
# What cannot run here is checked instead: a RUN that installs packages
# (apt-get) must name packages this machine has installed, and the runtime
# stage's packages must provide every shared library the built binary needs.
set -u
. "$(dirname "$0")/serve_common.bash"
here=$(dirname "$0")
root=${COFI_ROOT:-$here/../..}
df=$root/Dockerfile
[ -r "$df" ] || fail "no Dockerfile at $df"

# Logical instructions: continuation lines joined, comments dropped.
mapfile -t steps < <(awk '
  /^[[:space:]]*#/ { next }
  { line = cont $0 }
  /\\[[:space:]]*$/ { sub(/\\[[:space:]]*$/, "", line); cont = line " "; next }
  { cont = ""; if (line ~ /[^[:space:]]/) print line }' "$df")
n_from=$(printf '%s\n' "${steps[@]}" | grep -ci '^FROM ')
[ "$n_from" -ge 2 ] || fail "Dockerfile: expected a multi-stage build (found $n_from FROM)"

# apt_packages CMD: the packages of every `apt-get install` in CMD.
apt_packages() {
  sed 's/&&/\n/g' <<<"$1" | awk '$1 == "apt-get" {
    on = 0
    for (i = 2; i <= NF; i++) { if ($i == "install") { on = 1; continue } if (on && $i !~ /^-/) print $i } }'
}
# check_apt STAGE CMD: a package step; each part must be one we understand.
check_apt() {
  local part p
  while read -r part; do
    [ -z "$part" ] && continue
    case $part in
      "apt-get update"*|"apt-get install"*|"rm -rf /var/lib/apt/lists/"*) ;;
      "useradd "*|"mkdir -p "*) [ "$1" = runtime ] || fail "Dockerfile: unexpected '$part' in a package step" ;;
      *) fail "Dockerfile: a RUN that installs packages also runs '$part', which this test cannot reproduce" ;;
    esac
  done < <(sed 's/&&/\n/g; s/^ *//' <<<"$2" | sed 's/^ *//; s/ *$//')
  for p in $(apt_packages "$2"); do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
      || fail "Dockerfile: package $p (stage $1) is not installed here, so this build would not be the image's"
    [ "$1" = runtime ] && runtime_pkgs+=("$p")
  done
}

# copy_into SRC DEST: Docker's COPY of one source (a directory's contents).
copy_into() {
  local src=$1 dest=$2
  if [ -d "$src" ]; then mkdir -p "$dest" && cp -a "$src/." "$dest/"
  elif [[ $dest == */ ]]; then mkdir -p "$dest" && cp -a "$src" "$dest"
  else mkdir -p "$(dirname "$dest")" && cp -a "$src" "$dest"
  fi || fail "Dockerfile: COPY $src $dest failed"
}

stage= fs= wd=/ runtime_pkgs=() user= port= entry= cmd=
declare -A stage_fs
for ((s = 0; s < ${#steps[@]}; s++)); do
  line=${steps[s]}
  instr=$(awk '{print toupper($1)}' <<<"$line")
  args=${line#* }
  case $instr in
    FROM)
      n=$(grep -ci '^FROM ' <(printf '%s\n' "${steps[@]:0:s+1}"))
      if [ "$n" = "$n_from" ]; then stage=runtime; else
        stage=$(awk 'tolower($2) == "as" {print $3}' <<<"$args"); stage=${stage:-stage$n}; fi
      fs=$T/fs-$stage; mkdir -p "$fs"; stage_fs[$stage]=$fs; wd=/ ;;
    WORKDIR) wd=$args; mkdir -p "$fs$wd" ;;
    ENV) export "${args%%=*}=${args#*=}" ;;
    COPY)
      read -ra w <<<"$args"
      from=
      if [[ ${w[0]} == --from=* ]]; then from=${w[0]#--from=}; w=("${w[@]:1}"); fi
      dest=${w[${#w[@]}-1]}; [[ $dest == /* ]] || dest=$wd/$dest
      [ ${#w[@]} -gt 2 ] && dest=${dest%/}/
      for src in "${w[@]:0:${#w[@]}-1}"; do
        if [ -n "$from" ]; then
          [ -n "${stage_fs[$from]:-}" ] || fail "Dockerfile: COPY --from=$from names no earlier stage"
          [ -e "${stage_fs[$from]}$src" ] || fail "Dockerfile: COPY --from=$from $src: the build stage made no such file"
          copy_into "${stage_fs[$from]}$src" "$fs$dest"
        else
          [ -e "$root/$src" ] || fail "Dockerfile: COPY $src: no such file in the build context"
          copy_into "$root/$src" "$fs$dest"
        fi
      done ;;
    RUN)
      if grep -q 'apt-get' <<<"$args"; then check_apt "$stage" "$args"
      elif [ "$stage" = runtime ]; then fail "Dockerfile: a runtime RUN this test cannot check: $args"
      else
        echo "docker_build: RUN $args" >&2
        (cd "$fs$wd" && sh -e -c "$args") >"$T/run.log" 2>&1 \
          || fail "Dockerfile: RUN failed: $args: $(tail -5 "$T/run.log")"
      fi ;;
    USER) user=$args ;;
    EXPOSE) port=$args ;;
    ENTRYPOINT) entry=$args ;;
    CMD) cmd=$args ;;
    LABEL|ARG|VOLUME|HEALTHCHECK|STOPSIGNAL|SHELL) ;;
    *) fail "Dockerfile: instruction $instr is not understood by this test" ;;
  esac
done

rt=${stage_fs[runtime]}
case $user in ""|root|0|0:*) fail "Dockerfile: the image must run as a non-root USER (got '${user:-none}')" ;; esac
[ "$port" = 8080 ] || fail "Dockerfile: EXPOSE should be 8080 (SageMaker), got '$port'"
mapfile -t argv < <(jq -r '.[]' <<<"$entry" 2>/dev/null; jq -r '.[]' <<<"$cmd" 2>/dev/null)
[ ${#argv[@]} -ge 2 ] || fail "Dockerfile: ENTRYPOINT and CMD must be JSON arrays (got $entry / $cmd)"
bin=$rt${argv[0]}
[ -x "$bin" ] || fail "Dockerfile: the entry point ${argv[0]} is not an executable in the runtime stage"
[ "${argv[*]:1}" = serve ] || fail "Dockerfile: the default command should be 'serve' (SageMaker), got '${argv[*]:1}'"

# Every shared library the binary needs comes from a runtime package (or
# from libc6 / libgcc-s1, which the base image has).
for lib in $(objdump -p "$bin" | awk '$1 == "NEEDED" {print $2}'); do
  path=$(ldd "$bin" | awk -v l="$lib" '$1 == l {print $3}')
  # the dynamic loader (needed directly by code using thread-local storage)
  # is listed by its path: it comes from libc6
  [ -n "$path" ] || path=$(ldd "$bin" | awk -v l="/$lib" 'index($1, l) && $1 ~ /^\// {print $1}')
  [ -n "$path" ] || fail "the built binary needs $lib, which does not resolve here"
  pkg=
  for cand in "$path" "$(realpath "$path")"; do  # merged /usr: try both spellings
    for p in "$cand" "${cand#/usr}" "/usr$cand"; do
      [ -z "$pkg" ] && pkg=$(dpkg -S "$p" 2>/dev/null | head -1 | cut -d: -f1)
    done
  done
  case " ${runtime_pkgs[*]} libc6 libgcc-s1 " in
    *" $pkg "*) ;;
    *) fail "the binary needs $lib (package ${pkg:-unknown}), which the runtime stage does not install" ;;
  esac
done

# SageMaker mode, as the image would start: ENTRYPOINT + CMD, the model in
# $SM_MODEL_DIR, the port from $SAGEMAKER_BIND_TO_PORT (a free one).
make_models
mkdir -p "$T/opt/ml/model"
cp "$T/a.cofi" "$T/opt/ml/model/model.cofi"
COFI=$bin start_server "$T/probe.log" "$T/a.cofi" --port 0 --quiet
free=$PORT; stop_server
SM_MODEL_DIR=$T/opt/ml/model SAGEMAKER_BIND_TO_PORT=$free COFI=$bin \
  start_server "$T/sm.log" "${argv[@]:1}" --quiet
[ "$PORT" = "$free" ] || fail "the image's server listens on $PORT, not \$SAGEMAKER_BIND_TO_PORT=$free"
grep -q "listening on http://0.0.0.0:$PORT" "$T/sm.log" || fail "SageMaker mode should bind 0.0.0.0: $(cat "$T/sm.log")"
ok 200 '.status == "ok"' "$U/ping"
ok 200 '.user_id == "1" and (.recommendations | length) == 5' \
  -X POST -H 'Content-Type: application/json' -d '{"user_id": "1"}' "$U/invocations"
stop_server
pass
