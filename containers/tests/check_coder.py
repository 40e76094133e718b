#!/usr/bin/env python3
"""Parses the Coder template (containers/coder/main.tf) as HCL2 and checks its shape.

    check_coder.py containers/coder/main.tf

Terraform itself is not available from the package registries this project uses, so this is
a syntax check (python-hcl2) plus the facts the integration depends on: the desktop app is
served to its owner only, health-checked on /health, and Kelpie listens on loopback with
--auth none (Coder's proxy authenticates); the pod is restricted-Pod-Security compliant.
"""

from __future__ import annotations

import sys
from typing import Any

import hcl2


def unquote(v: Any) -> Any:
    if isinstance(v, str) and len(v) >= 2 and v[0] == v[-1] == '"':
        return v[1:-1]
    return v


def resources(doc: dict[str, Any], rtype: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for block in doc.get("resource", []):
        for t, named in block.items():
            if unquote(t) == rtype:
                for name, body in named.items():
                    out[unquote(name)] = body
    return out


def first(v: Any) -> Any:
    return v[0] if isinstance(v, list) and v else v


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        try:
            doc = hcl2.load(f)
        except Exception as e:  # any parse error is the finding
            print(f"FAIL {argv[0]}: not valid HCL2: {e}")
            return 1
    problems: list[str] = []

    providers = {unquote(k): v for p in doc.get("terraform", []) for rp in p.get("required_providers", []) for k, v in rp.items()}
    for name, source in (("coder", "coder/coder"), ("kubernetes", "hashicorp/kubernetes")):
        if unquote((providers.get(name) or {}).get("source")) != source:
            problems.append(f"required_providers must include {name} = {source}")

    apps = resources(doc, "coder_app")
    app = apps.get("kelpie", {})
    if not app:
        problems.append("no coder_app.kelpie")
    if unquote(app.get("share")) != "owner":
        problems.append("coder_app.kelpie: share must be \"owner\" (Kelpie runs with --auth none behind Coder)")
    hc = first(app.get("healthcheck")) or {}
    if not str(unquote(hc.get("url", ""))).endswith("/health"):
        problems.append("coder_app.kelpie: healthcheck must hit /health")
    if "subdomain" not in app:
        problems.append("coder_app.kelpie: subdomain must be set")
    if not str(unquote(app.get("url", ""))).startswith("http://127.0.0.1:8080"):
        problems.append("coder_app.kelpie: url must be Kelpie's loopback address")

    agent = resources(doc, "coder_agent").get("main", {})
    script = str(agent.get("startup_script", ""))
    for needle in ("--listen 127.0.0.1:8080", "--auth none", "kelpie-entrypoint"):
        if needle not in script:
            problems.append(f"coder_agent.main.startup_script must contain {needle!r}")

    deploy = resources(doc, "kubernetes_deployment").get("main", {})
    spec = first(first(first(deploy.get("spec", [{}])).get("template", [{}])).get("spec", [{}])) or {}
    psc = first(spec.get("security_context")) or {}
    if psc.get("run_as_non_root") is not True or unquote(first(psc.get("seccomp_profile") or [{}]).get("type")) != "RuntimeDefault":
        problems.append("pod security_context must set run_as_non_root = true and seccomp RuntimeDefault")
    container = first(spec.get("container")) or {}
    csc = first(container.get("security_context")) or {}
    if csc.get("allow_privilege_escalation") is not False or csc.get("read_only_root_filesystem") is not True:
        problems.append("container security_context must disallow privilege escalation and use a read-only root")
    if [unquote(c) for c in (first(csc.get("capabilities")) or {}).get("drop", [])] != ["ALL"]:
        problems.append("container must drop ALL capabilities")
    mounts = {unquote(m.get("mount_path")) for m in container.get("volume_mount", [])}
    for path in ("/tmp", "/home/kelpie", "/dev/shm"):
        if path not in mounts:
            problems.append(f"container must mount a writable volume at {path}")

    for p in problems:
        print(f"FAIL {argv[0]}: {p}")
    if not problems:
        print(f"coder: {argv[0]} parses and has the expected shape")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
