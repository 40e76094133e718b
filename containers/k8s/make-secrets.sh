#!/bin/sh
# Creates the random secrets the kustomizations read (never committed, no defaults):
#   base/secrets/token-secret, base/secrets/basic-password, overlays/coturn/secrets/turn-secret
# Existing files are kept, so running it again changes nothing; delete a file to rotate it.
#   make-secrets.sh [DIR]   DIR: a copy of containers/k8s (default: this script's directory)
set -eu
dir=${1:-$(dirname "$0")}
umask 077

gen() { # gen FILE BYTES
  if [ -s "$1" ]; then
    echo "kept    $1"
  else
    mkdir -p "$(dirname "$1")"
    head -c "$2" /dev/urandom | base64 | tr -d '\n=' >"$1"
    echo "created $1"
  fi
}

gen "$dir/base/secrets/token-secret" 32
gen "$dir/base/secrets/basic-password" 18
gen "$dir/overlays/coturn/secrets/turn-secret" 32
