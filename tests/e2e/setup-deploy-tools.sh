#!/usr/bin/env bash
# Installs what the deployment E2E tests need, and only what is missing (fast when all is
# there); for a fresh Debian 12, as root (or with sudo for apt):
#   - Debian packages nginx (proxy.test.mjs), coturn (turn.test.mjs) and python3-venv;
#     their system services are never used (the tests start their own instances on free
#     loopback ports), so they are kept from starting at install time and disabled;
#   - .venv-e2e/ (Debian's python3) with jupyter-server and jupyter-server-proxy pinned in
#     tests/e2e/requirements-jupyter.txt, plus containers/jupyter (jupyter-kelpie), for
#     jupyter.test.mjs. Rebuilt when the requirements or the package's sources change.
# Chromium, Xvfb and Node.js come from scripts/install-deps.sh test.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${KELPIE_E2E_VENV:-$root/.venv-e2e}
req=$root/tests/e2e/requirements-jupyter.txt
say() { echo "setup-deploy-tools: $*"; }
die() { echo "setup-deploy-tools: $*" >&2; exit 1; }

# --- Debian packages ---------------------------------------------------------------
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for p in nginx coturn; do installed "$p" || missing+=("$p"); done
/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)

if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then SUDO=(); elif command -v sudo >/dev/null; then SUDO=(sudo); else
    die "not root and no sudo; install these Debian packages yourself: ${missing[*]}"; fi
  say "installing Debian packages: ${missing[*]}"
  # Keep the packages' services from starting (and grabbing ports 80 and 3478) while they
  # install: a policy-rc.d that denies every start, unless the machine has one already.
  policy=/usr/sbin/policy-rc.d
  added_policy=
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy"
    added_policy=1
    trap '[[ -n $added_policy ]] && "${SUDO[@]}" rm -f "$policy"' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
  if [[ -n $added_policy ]]; then "${SUDO[@]}" rm -f "$policy"; added_policy=; fi
  # And not at boot either. Guarded: containers and CI often have no systemd or service.
  for svc in nginx coturn; do
    [[ " ${missing[*]} " == *" $svc "* ]] || continue
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
      say "stopping and disabling the $svc system service (the tests run their own)"
      "${SUDO[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
    elif command -v service >/dev/null; then
      "${SUDO[@]}" service "$svc" stop >/dev/null 2>&1 || true
    fi
  done
fi
command -v /usr/sbin/nginx >/dev/null || die "/usr/sbin/nginx missing after installing nginx"
command -v /usr/bin/turnserver >/dev/null || die "/usr/bin/turnserver missing after installing coturn"

# --- .venv-e2e: jupyter-server, jupyter-server-proxy, jupyter-kelpie ------------------
# One stamp for the pinned requirements, one for jupyter-kelpie's sources.
stamp_want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ ! -x $venv/bin/python || ! -x $venv/bin/jupyter || $(cat "$venv/.stamp" 2>/dev/null) != "$stamp_want" ]]; then
  say "creating ${venv#"$root"/} with $(grep -E '^jupyter-server(-proxy)?==' "$req" | tr '\n' ' ')"
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv" || die "python3 -m venv $venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-input -r "$req" || die "pip install -r $req"
  echo "$stamp_want" >"$venv/.stamp"
fi

jk_want=$(cd "$root" && find containers/jupyter -type f \( -name '*.py' -o -name '*.toml' -o -name '*.svg' -o -name '*.md' \) \
  -not -path '*/tests/*' -not -path '*.egg-info*' -not -path '*/build/*' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
if [[ $(cat "$venv/.jupyter-kelpie" 2>/dev/null) != "$jk_want" ]]; then
  say "installing containers/jupyter (jupyter-kelpie) into ${venv#"$root"/}"
  # From a copy: building in place would leave build/ and egg-info in the source tree.
  jk_tmp=$(mktemp -d)
  cp -r "$root/containers/jupyter" "$jk_tmp/"
  rm -rf "$jk_tmp/jupyter/build" "$jk_tmp"/jupyter/*.egg-info
  if ! "$venv/bin/pip" install -q --disable-pip-version-check --no-input --no-deps --no-build-isolation \
      --force-reinstall "$jk_tmp/jupyter" >/dev/null; then
    rm -rf "$jk_tmp"
    die "pip install containers/jupyter"
  fi
  rm -rf "$jk_tmp"
  echo "$jk_want" >"$venv/.jupyter-kelpie"
fi
# jupyter-server-proxy must see the entry point (a broken install would only show in the test).
"$venv/bin/python" - <<'EOF' || die "jupyter-kelpie's entry point is not registered in ${venv}"
from importlib.metadata import entry_points
assert any(e.name == "kelpie" for e in entry_points(group="jupyter_serverproxy_servers"))
EOF
say "ready: nginx $(/usr/sbin/nginx -v 2>&1 | sed 's/.*nginx\///'), coturn $(dpkg-query -W -f='${Version}' coturn), ${venv#"$root"/}"
