#!/bin/bash
# check-arch.sh ARCH: does the runtime stage's package list (containers/Dockerfile, with its
# architecture cases applied for ARCH) resolve against Debian bookworm for ARCH?
#
# Why not build for arm64: no arm64 emulation or toolchain is here. apt itself can answer
# the question that breaks a multi-arch build, "is every package there?", from a private
# configuration (its own lists and an empty dpkg status), which changes nothing on the host.
# Needs network access to deb.debian.org. Prints the package count and exits 0 on success.
set -euo pipefail

arch=${1:?usage: check-arch.sh ARCH (amd64, arm64)}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The package list: the install RUN of the runtime stage, with `$(case ... esac)` expanded
# for ARCH by the shell itself (dpkg --print-architecture answered with ARCH).
list=$(python3 - "$root/containers/Dockerfile" <<'EOF'
import re, sys
s = open(sys.argv[1]).read()
start = s.index("FROM debian:bookworm-slim AS runtime")
run = s[start:]
run = run[run.index("apt-get install -y --no-install-recommends"):]
block = run[len("apt-get install -y --no-install-recommends"):run.index("&& rm -rf /var/lib/apt/lists")]
print(block.replace("\\\n", " "))
EOF
)
list=${list//\$(dpkg --print-architecture)/$arch}
read -r -a pkgs <<<"$(eval "echo $list")"

mkdir -p "$work"/{lists/partial,cache/archives/partial,etc/preferences.d,etc/apt.conf.d}
: >"$work/status"
cat >"$work/etc/sources.list" <<EOF
deb [arch=$arch signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [arch=$arch signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
deb [arch=$arch signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
EOF
opts=(-o "APT::Architecture=$arch" -o "APT::Architectures=$arch" -o "Dir::State::status=$work/status"
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o "Dir::Etc=$work/etc"
  -o "Dir::Etc::sourcelist=$work/etc/sources.list" -o "Dir::Etc::sourceparts=-"
  -o "Dir::Etc::parts=$work/etc/apt.conf.d" -o "Dir::Etc::preferencesparts=$work/etc/preferences.d"
  -o "APT::Install-Recommends=false" -o "Debug::NoLocking=true" -o "APT::Sandbox::User=root")
apt-get "${opts[@]}" -q update >"$work/update.log" 2>&1 || { cat "$work/update.log" >&2; exit 1; }
if ! apt-get "${opts[@]}" -s install "${pkgs[@]}" >"$work/sim.log" 2>&1; then
  grep -E '^E:|has no installation candidate|Unable to locate|but it is not' "$work/sim.log" >&2 || tail -20 "$work/sim.log" >&2
  echo "check-arch: the $arch package set does not resolve" >&2
  exit 1
fi
echo "check-arch: $arch: ${#pkgs[@]} requested packages resolve to $(grep -c '^Inst ' "$work/sim.log") installed"
