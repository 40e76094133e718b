#!/bin/sh
# kelpie-healthcheck: exits 0 when Kelpie's /health answers 200 (frames are being encoded).
# Used by the image's HEALTHCHECK; it derives the URL from the same KELPIE_* settings the
# server reads, so a changed port, base path or TLS needs no change here. With
# KELPIE_OPS_LISTEN, /health is there (plain HTTP, no base path) and not on the main address.
set -eu

# reach ADDR:PORT: "HOST:PORT" to connect to, a wildcard address meaning this machine.
reach() {
  host=${1%:*}
  case "$host" in
    "" | 0.0.0.0 | "[::]" | "*") host=127.0.0.1 ;;
  esac
  echo "$host:${1##*:}"
}

if [ -n "${KELPIE_OPS_LISTEN:-}" ]; then
  exec curl -fsS -o /dev/null --max-time 4 "http://$(reach "$KELPIE_OPS_LISTEN")/health"
fi

scheme=http
if [ -n "${KELPIE_TLS_CERT:-}" ]; then
  scheme=https
fi

base=${KELPIE_BASE_PATH:-/}
case "$base" in
  */) ;;
  *) base="$base/" ;;
esac
case "$base" in
  /*) ;;
  *) base="/$base" ;;
esac

# -k: the certificate names the public host, not 127.0.0.1; this is a liveness check only.
exec curl -fsS -k -o /dev/null --max-time 4 "$scheme://$(reach "${KELPIE_LISTEN:-127.0.0.1:8080}")${base}health"
