#!/bin/sh
# kelpie-entrypoint: prepares an unprivileged user's runtime environment, then execs kelpie.
#
# The same script runs as the container image's ENTRYPOINT, as the Apptainer %runscript,
# from jupyter-kelpie and on a plain host, so it assumes nothing about the user, the home
# directory or the filesystem beyond a writable /tmp (or $TMPDIR).
#
#   kelpie-entrypoint [KELPIE OPTIONS...]   prepare, then exec kelpie with these options
#   kelpie-entrypoint token --ttl 8h        kelpie subcommands pass straight through
#   kelpie-entrypoint bash                  any other command is exec'd as is (debugging)
#
# Environment it reads (besides every KELPIE_* setting, which kelpie itself reads):
#   KELPIE_BIN          kelpie binary (default: kelpie on PATH)
#   KELPIE_ALLOW_ROOT   1 to allow running as root (never needed; refused otherwise)
#   KELPIE_PULSEAUDIO   0 to not start PulseAudio for an existing display (default: start
#                       it if installed; kelpie starts its own for its embedded desktop)
#   KELPIE_CONTAINER    set by the OCI image to "oci": then KELPIE_LISTEN defaults to
#                       0.0.0.0:8080 (except under Apptainer, which shares the host network)
set -eu

prog=kelpie-entrypoint
log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { log "error: $*"; exit 1; }

kelpie_bin=${KELPIE_BIN:-kelpie}

# Help and version need no environment.
case "${1:-}" in
  -h | --help | -V | --version | help) exec "$kelpie_bin" "$@" ;;
esac

uid=$(id -u)
if [ "$uid" -eq 0 ] && [ "${KELPIE_ALLOW_ROOT:-0}" != 1 ]; then
  die "refusing to run as root: whoever reaches the desktop would control a root session.
  Run as an unprivileged user instead: the image's default user is kelpie (1000:1000);
  'docker run --user 1000:1000', 'podman run --userns=keep-id', Kubernetes runAsUser: 1000,
  or Apptainer, which runs as you. Set KELPIE_ALLOW_ROOT=1 to override (not recommended)."
fi

tmp=${TMPDIR:-/tmp}
if [ ! -d "$tmp" ] || [ ! -w "$tmp" ]; then
  die "$tmp is not a writable directory: mount one (e.g. --tmpfs /tmp, an emptyDir)"
fi

# A home directory: kept if writable, else a private one under /tmp (arbitrary UIDs, read-only
# images, 'docker run --user N' without a matching home).
if [ -z "${HOME:-}" ] || [ ! -d "$HOME" ] || [ ! -w "$HOME" ]; then
  fallback="$tmp/kelpie-home-$uid"
  log "HOME (${HOME:-unset}) is not a writable directory; using $fallback"
  mkdir -p "$fallback"
  chmod 0700 "$fallback"
  HOME=$fallback
fi
export HOME

# The XDG runtime directory: private (0700), owned by us, on the writable /tmp.
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "$XDG_RUNTIME_DIR" ] || [ ! -w "$XDG_RUNTIME_DIR" ]; then
  XDG_RUNTIME_DIR="$tmp/kelpie-runtime-$uid"
fi
if [ ! -d "$XDG_RUNTIME_DIR" ]; then
  (umask 077 && mkdir -p "$XDG_RUNTIME_DIR")
fi
[ "$(stat -c %u "$XDG_RUNTIME_DIR")" = "$uid" ] || die "$XDG_RUNTIME_DIR exists but belongs to another user"
chmod 0700 "$XDG_RUNTIME_DIR"
export XDG_RUNTIME_DIR

# GStreamer's plugin registry, fresh at every start: a registry cached while no GPU was
# visible lists no NVENC elements, and would hide them from a later start on a GPU node when
# the home directory is persistent (a Coder PVC, a hub's home volume).
if [ -z "${GST_REGISTRY:-}" ]; then
  GST_REGISTRY="$XDG_RUNTIME_DIR/gstreamer-registry-$(uname -m).bin"
  rm -f "$GST_REGISTRY"
  export GST_REGISTRY
fi

# Programs in the session (dbus, PulseAudio, XFCE) look the user up in the passwd database.
# An arbitrary UID (OpenShift-style, 'docker run --user 12345') has no entry there: give it one
# with nss_wrapper when the image has it.
if ! getent passwd "$uid" >/dev/null 2>&1; then
  for lib in /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so; do
    [ -e "$lib" ] || continue
    gid=$(id -g)
    NSS_WRAPPER_PASSWD="$XDG_RUNTIME_DIR/passwd"
    NSS_WRAPPER_GROUP="$XDG_RUNTIME_DIR/group"
    { cat /etc/passwd; printf 'kelpie:x:%s:%s:Kelpie user:%s:/bin/sh\n' "$uid" "$gid" "$HOME"; } >"$NSS_WRAPPER_PASSWD"
    { cat /etc/group; printf 'kelpie:x:%s:\n' "$gid"; } >"$NSS_WRAPPER_GROUP"
    LD_PRELOAD="$lib${LD_PRELOAD:+ $LD_PRELOAD}"
    export NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP LD_PRELOAD
    log "UID $uid has no passwd entry; using nss_wrapper"
    break
  done
fi

# Kelpie subcommands (token minting) need nothing more; other commands are exec'd as is.
case "${1:-}" in
  "" | -*) ;;
  token) exec "$kelpie_bin" "$@" ;;
  *)
    if command -v "$1" >/dev/null 2>&1; then
      exec "$@"
    fi
    ;;
esac

# Inside a Docker/Podman/Kubernetes container the web server must listen beyond loopback to
# be reachable at all. Apptainer shares the host's network, so there loopback stays.
if [ -z "${KELPIE_LISTEN:-}" ] && [ "${KELPIE_CONTAINER:-}" = oci ] \
  && [ -z "${APPTAINER_CONTAINER:-}" ] && [ -z "${SINGULARITY_CONTAINER:-}" ]; then
  KELPIE_LISTEN=0.0.0.0:8080
  export KELPIE_LISTEN
  case " $* " in
    *" --auth"*) ;;
    *)
      if [ -z "${KELPIE_AUTH:-}" ]; then
        log "listening on $KELPIE_LISTEN inside the container: choose how viewers authenticate"
        log "with KELPIE_AUTH=basic|token|trusted-header (see docs/deployment.md); kelpie refuses"
        log "to serve a non-loopback address without authentication."
      fi
      ;;
  esac
fi

# PulseAudio for an existing display's session (KELPIE_DISPLAY or --display), if installed.
# Kelpie's embedded desktop gets its own PulseAudio from kelpie itself (private socket,
# stopped with it), so none is started here for it. Without one the desktop still works.
attached=${KELPIE_DISPLAY:-}
case " $* " in *" --display"*) attached=1 ;; esac
if [ -n "$attached" ] && [ "${KELPIE_PULSEAUDIO:-1}" != 0 ] && command -v pulseaudio >/dev/null 2>&1; then
  PULSE_RUNTIME_PATH="$XDG_RUNTIME_DIR/pulse"
  export PULSE_RUNTIME_PATH
  if ! pulseaudio --check >/dev/null 2>&1; then
    if ! pulseaudio --start --exit-idle-time=-1 >/dev/null 2>&1; then
      log "warning: PulseAudio did not start; continuing without sound"
    fi
  fi
fi

if ! command -v "$kelpie_bin" >/dev/null 2>&1; then
  die "kelpie binary '$kelpie_bin' not found: put it on PATH or set KELPIE_BIN"
fi
exec "$kelpie_bin" "$@"
