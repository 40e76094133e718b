#!/bin/bash
# containers/image.sh: build the Kelpie image on this machine, and run it strictly.
#
#   containers/image.sh build     make localhost/kelpie:latest (what `make image` runs)
#   containers/image.sh test      run it read-only, no capabilities, an arbitrary UID,
#                                 configured only by KELPIE_* variables, and stream from it
#                                 to headless Chromium (what `make image-test` runs)
#   containers/image.sh kube      `podman kube play` the rendered Kubernetes base with this
#                                 image, and stream from the pod likewise
#   containers/image.sh check     build a throw-away image from the dev-profile binaries and
#                                 give it the strict run (what `make test` runs)
#   containers/image.sh flags     print the podman flags this machine needs
#
# Where the registries are out of reach (no Docker Hub, no Rust image), the binaries are
# built on the host (Debian 12, the runtime stage's own libraries) and passed in with
# --build-arg KELPIE_BUILD=prebuilt, and debian:bookworm-slim is made with mmdebstrap and
# `podman import` when it cannot be pulled. What users get from the Dockerfile's default
# source build is unchanged.
#
# Environment: KELPIE_IMAGE (default localhost/kelpie:latest), PODMAN (default podman),
# KELPIE_IMAGE_PORT (host port for the test, default 18080), CARGO (default cargo).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
image=${KELPIE_IMAGE:-localhost/kelpie:latest}
base=docker.io/library/debian:bookworm-slim
podman_bin=${PODMAN:-podman}
port=${KELPIE_IMAGE_PORT:-18080}
cargo=${CARGO:-cargo}
prog=image.sh

log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v "$podman_bin" >/dev/null || die "podman is not installed (apt-get install podman runc mmdebstrap)"

# The global and per-run flags this machine's podman needs. Some kernels refuse crun's
# (or runc's default) rlimits, and hybrid cgroup hosts need cgroupfs: each set is tried on
# the base image, and the first that runs a container wins.
global=()
limits=()
pick_flags() {
  local nofile
  nofile=$(ulimit -Hn)
  [ "$nofile" = unlimited ] && nofile=65536
  [ "$nofile" -gt 65536 ] && nofile=65536
  local -a g_sets=("" "--runtime runc --cgroup-manager cgroupfs")
  local -a l_sets=("" "--ulimit nofile=$nofile:$nofile --ulimit nproc=8192:8192")
  local g l
  for g in "${g_sets[@]}"; do
    for l in "${l_sets[@]}"; do
      # shellcheck disable=SC2086
      if "$podman_bin" $g run --rm $l "$base" true >/dev/null 2>&1; then
        read -r -a global <<<"$g"
        read -r -a limits <<<"$l"
        log "podman flags: ${g:-(none)} ${l:-(no ulimits)}"
        return 0
      fi
    done
  done
  die "no podman configuration could run a container on this machine (see: $podman_bin run --rm $base true)"
}

# debian:bookworm-slim: pulled when a registry answers, else made from Debian's packages.
ensure_base() {
  if "$podman_bin" image exists "$base"; then
    return 0
  fi
  if timeout 60 "$podman_bin" pull -q "$base" >/dev/null 2>&1; then
    log "pulled $base"
    return 0
  fi
  command -v mmdebstrap >/dev/null || die "$base cannot be pulled and mmdebstrap is not installed (apt-get install mmdebstrap)"
  log "$base cannot be pulled: making it with mmdebstrap (about a minute)"
  local tar
  tar=$(mktemp --suffix=.tar)
  mmdebstrap --quiet --variant=minbase --format=tar \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm "$tar" \
    "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main"
  "$podman_bin" import --change 'CMD ["bash"]' "$tar" "$base" >/dev/null
  rm -f "$tar"
}

# cargo_build PROFILE ARGS...: `cargo build --locked ARGS` into target/PROFILE (release or debug).
cargo_build() {
  local profile=$1 flag=()
  shift
  if [ "$profile" = release ]; then flag=(--release); fi
  (cd "$root" && "$cargo" build "${flag[@]}" --locked "$@")
}

# build_image PROFILE: the image from the host's binaries of cargo profile PROFILE
# (release or debug, the latter being what `make test` has just built), stripped on the way in.
build_image() {
  local profile=$1
  ensure_base
  pick_flags
  log "building the binaries on the host ($profile profile; stripped for the image)"
  cargo_build "$profile" -p kelpie -p kelpie-gamepad -p kelpie-gamepad-preload
  local out="$here/prebuilt" bin="$root/target/$profile"
  rm -rf "$out"
  mkdir -p "$out"
  install -s -m 0755 "$bin/kelpie" "$bin/kelpie-turn-broker" "$bin/kelpie-gamepad" "$out/"
  install -s -m 0644 "$bin/libkelpie_gamepad_preload.so" "$out/"
  log "building $image"
  "$podman_bin" "${global[@]}" build --pull=never --layers \
    "${limits[@]}" \
    --build-arg KELPIE_BUILD=prebuilt \
    -f "$here/Dockerfile" --ignorefile "$here/Dockerfile.dockerignore" \
    -t "$image" "$root"
  local size
  size=$("$podman_bin" image inspect --format '{{.Size}}' "$image")
  log "built $image: $((size / 1000000)) MB"
}

# The animating test client the checks run as the session (bind-mounted, not in the image).
xprobe_bin() {
  local profile=${xprobe_profile:-release}
  local xprobe="$root/target/$profile/kelpie-xprobe"
  [ -x "$xprobe" ] || cargo_build "$profile" -p kelpie-tests --bin kelpie-xprobe >&2
  echo "$xprobe"
}

# wait_for_health URL CONTAINER WHAT: until URL answers, failing (with the log's tail)
# once CONTAINER has exited or after 60 s.
wait_for_health() {
  local url=$1 ctr=$2 what=$3 _
  for _ in $(seq 1 60); do
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then return 0; fi
    if [ "$("$podman_bin" "${global[@]}" inspect -f '{{.State.Running}}' "$ctr" 2>/dev/null)" != true ]; then
      "$podman_bin" "${global[@]}" logs "$ctr" 2>&1 | tail -40 >&2
      die "$what exited before it served /health"
    fi
    sleep 1
  done
  "$podman_bin" "${global[@]}" logs "$ctr" 2>&1 | tail -40 >&2
  die "no /health from $what after 60 s"
}

# check_locked_down CONTAINER UID WHAT: runs as UID (never root), no setuid or setgid
# file, no capabilities on PID 1, and a read-only root filesystem.
check_locked_down() {
  local ctr=$1 uid=$2 what=$3 inside suid caps
  inside=$("$podman_bin" "${global[@]}" exec "$ctr" id -u)
  [ "$inside" = "$uid" ] || die "$what runs as UID $inside, not $uid"
  [ "$inside" != 0 ] || die "$what runs as root"
  suid=$("$podman_bin" "${global[@]}" exec "$ctr" find / -xdev -perm /6000 -type f 2>/dev/null || true)
  [ -z "$suid" ] || die "setuid/setgid files in $what: $suid"
  caps=$("$podman_bin" "${global[@]}" exec "$ctr" sh -c 'grep -E "^Cap(Eff|Prm)" /proc/1/status' | awk '{print $2}' | sort -u)
  [ "$caps" = 0000000000000000 ] || die "PID 1 of $what has capabilities: $caps"
  if "$podman_bin" "${global[@]}" exec "$ctr" touch /usr/local/bin/x 2>/dev/null; then
    die "the root filesystem of $what is writable"
  fi
  log "$what: UID $inside, no setuid or setgid file, no capabilities (CapEff/CapPrm 0), root filesystem read-only"
}

# stream_check CONTAINER WHAT FPS ARGS...: headless Chromium decodes at >= 90 % of FPS.
stream_check() {
  local ctr=$1 what=$2 fps=$3
  shift 3
  node "$root/tests/e2e/image-stream.mjs" --fps "$fps" --min-ratio 0.9 "$@" \
    || { "$podman_bin" "${global[@]}" logs "$ctr" 2>&1 | tail -30 >&2; die "$what did not stream at 90 % of $fps fps"; }
}

# The strict run's container, stopped by name on exit.
name=kelpie-image-test
remove_container() {
  "$podman_bin" "${global[@]}" rm -f -t 5 "$name" >/dev/null 2>&1 || true
}
cleanup() {
  remove_container
  if [ -n "${secret_dir:-}" ]; then rm -rf "$secret_dir"; fi
}

test_image() {
  "$podman_bin" image exists "$image" || die "$image does not exist: run 'make image' first"
  pick_flags
  local xprobe
  xprobe=$(xprobe_bin)
  secret_dir=$(mktemp -d)
  trap cleanup EXIT
  head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$secret_dir/password"
  local uid=23456 fps=30
  remove_container
  # The session is a test X client that animates the whole screen at the frame rate, so
  # the stream has real work; it is bind-mounted read-only and is not part of the image.
  "$podman_bin" "${global[@]}" run -d --name "$name" \
    "${limits[@]}" \
    --read-only --tmpfs /tmp:rw,mode=1777,size=512m --tmpfs /home/kelpie:rw,size=64m,U \
    --shm-size 256m \
    --cap-drop=all --security-opt=no-new-privileges \
    --user "$uid:$uid" \
    -p "127.0.0.1:$port:8080/tcp" \
    -v "$xprobe:/opt/kelpie-test/kelpie-xprobe:ro" \
    -e KELPIE_LISTEN=0.0.0.0:8080 \
    -e KELPIE_AUTH=basic \
    -e "KELPIE_BASIC_PASSWORD=$(cat "$secret_dir/password")" \
    -e "KELPIE_FRAMERATE=$fps" \
    -e KELPIE_SIZE=1280x720 \
    -e "KELPIE_SESSION=/opt/kelpie-test/kelpie-xprobe --animate $fps" \
    "$image" >/dev/null
  wait_for_health "http://127.0.0.1:$port/health" "$name" "the container"
  check_locked_down "$name" "$uid" "the container"
  "$podman_bin" "${global[@]}" logs "$name" 2>&1 | grep -E 'using H.264 encoder|session OpenGL|GPU:' | sed 's/^/  kelpie: /' >&2 || true
  stream_check "$name" "the strict run" "$fps" --url "http://127.0.0.1:$port/" --user kelpie \
    --password-file "$secret_dir/password"
  log "strict run: passed"
}

# `podman kube play` of the rendered Kubernetes base: what a cluster would run, with the
# image replaced, secrets from make-secrets.sh, and the pod's securityContext as written.
# Podman 4.3 (Debian 12) needs three changes to the render, made here and nowhere else:
# the Secret played first (as a podman secret), `optional: false` spelled out on the secret
# volume (it dereferences the unset field), and the downward-API POD_IP dropped (it has no
# pod status; without it Kelpie offers every address of the pod). For the frame-rate check
# the session is the animating test client, mounted read-only, at 1280x720 and 30 fps.
kube_dir=
kube_cleanup() {
  if [ -n "$kube_dir" ]; then
    "$podman_bin" "${global[@]}" kube down "$kube_dir/play.yaml" >/dev/null 2>&1 || true
    "$podman_bin" secret rm "${kube_secret:-none}" >/dev/null 2>&1 || true
    rm -rf "$kube_dir"
  fi
}

kube_test() {
  "$podman_bin" image exists "$image" || die "$image does not exist: run 'make image' first"
  pick_flags
  local kubectl=$root/.venv-deploy/bin/kubectl
  [ -x "$kubectl" ] || kubectl=$(command -v kubectl) || die "kubectl is needed to render the base (apt-get install kubernetes-client, or make deps-image)"
  local xprobe
  xprobe=$(xprobe_bin)
  kube_dir=$(mktemp -d)
  trap kube_cleanup EXIT
  cp -r "$here/k8s" "$kube_dir/k8s"
  sh "$kube_dir/k8s/make-secrets.sh" "$kube_dir/k8s" >/dev/null
  "$kubectl" kustomize "$kube_dir/k8s/base" >"$kube_dir/base.yaml"
  kube_secret=$(python3 "$here/tests/kube_play_render.py" "$kube_dir" "$image" "$(dirname "$xprobe")")
  # kube play takes no --ulimit: the limits go in through a private containers.conf.
  local conf="$kube_dir/containers.conf" l quoted=()
  for l in "${limits[@]}"; do
    [ "$l" = --ulimit ] || quoted+=("\"$l\"")
  done
  printf '[containers]\ndefault_ulimits = [%s]\n' "$(IFS=,; echo "${quoted[*]}")" >"$conf"
  export CONTAINERS_CONF="$conf"
  "$podman_bin" "${global[@]}" kube play "$kube_dir/secret.yaml" >/dev/null
  "$podman_bin" "${global[@]}" kube play "$kube_dir/play.yaml" >/dev/null
  local ctr ip
  ctr=$("$podman_bin" ps --format '{{.Names}}' | grep -E '^kelpie-pod-[0-9]+-kelpie$' | head -1)
  [ -n "$ctr" ] || die "kube play started no kelpie container ($("$podman_bin" ps -a --format '{{.Names}}' | tr '\n' ' '))"
  ip=$("$podman_bin" inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$ctr")
  if [ -z "$ip" ]; then
    local infra
    infra=$("$podman_bin" pod inspect -f '{{.InfraContainerID}}' "$("$podman_bin" inspect -f '{{.Pod}}' "$ctr")")
    ip=$("$podman_bin" inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$infra")
  fi
  [ -n "$ip" ] || die "cannot find the pod's address"
  # The base serves /health on the ops port (KELPIE_OPS_LISTEN), not on 8080.
  wait_for_health "http://$ip:9090/health" "$ctr" "the pod's kelpie container"
  if curl -fsS -o /dev/null "http://$ip:8080/metrics" 2>/dev/null; then
    die "the pod's main address still serves /metrics"
  fi
  # 1000: the pod's runAsUser.
  check_locked_down "$ctr" 1000 "the pod's kelpie container"
  local token
  token=$("$podman_bin" exec "$ctr" kelpie token --ttl 10m)
  [ -n "$token" ] || die "kelpie token printed nothing in the pod"
  stream_check "$ctr" "the pod" 30 --url "http://$ip:8080/?token=$token"
  log "kube play of the rendered base: passed"
}

# What `make test` runs: the Dockerfile built for real (its package list, users, setuid
# scrub and COPY paths) from the binaries the tests just built, then the strict run and
# its stream check against that image, which is removed afterwards. About 1 minute here
# with podman's layer cache, 2-3 without (most of it apt inside the build); the release build, the kube play and the image a user
# keeps stay with `make image` and `make image-test`.
check_image() {
  image=${KELPIE_IMAGE:-localhost/kelpie:check}
  xprobe_profile=debug
  build_image debug
  test_image
  "$podman_bin" rmi -f "$image" >/dev/null 2>&1 || true
  rm -rf "$here/prebuilt"
  log "check: the Dockerfile builds, and its image runs locked down and streams"
}

case "${1:-}" in
  build) build_image release ;;
  check) check_image ;;
  test) test_image ;;
  kube) kube_test ;;
  flags) ensure_base; pick_flags; echo "${global[*]} | ${limits[*]}" ;;
  *) sed -n '2,/^set -euo/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ] && exit 2; exit 0 ;;
esac
