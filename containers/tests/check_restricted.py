#!/usr/bin/env python3
"""Checks that every Pod template in Kubernetes manifests meets the *restricted* Pod Security
Standard (https://kubernetes.io/docs/concepts/security/pod-security-standards/, as of
Kubernetes 1.30), plus Kelpie's own rule that root filesystems are read-only.

    check_restricted.py RENDERED.yaml...     (or - for standard input)

Prints one line per violation, naming the file, the object and the exact field path, and
exits 1 if there is any (2 if no Pod template was found at all, which means the input is not
what the caller thinks). It is stricter than the standard in two places: no capability may be
added at all (restricted allows NET_BIND_SERVICE), and readOnlyRootFilesystem must be true.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Iterator

import yaml

# Volume types the restricted profile allows.
ALLOWED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
# Sysctls the baseline profile allows (1.30).
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
ALLOWED_SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
ALLOWED_SECCOMP = {"RuntimeDefault", "Localhost"}
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


@dataclass
class Violation:
    source: str
    obj: str
    path: str
    problem: str

    def __str__(self) -> str:
        return f"FAIL {self.source}: {self.obj}: {self.path}: {self.problem}"


def pod_specs(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Yields (path, pod spec, pod metadata) for every Pod template in one object."""
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    if kind == "Pod":
        yield "spec", spec, doc.get("metadata") or {}
    elif kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}:
        template = spec.get("template") or {}
        yield "spec.template.spec", template.get("spec") or {}, template.get("metadata") or {}
    elif kind == "CronJob":
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
        yield "spec.jobTemplate.spec.template.spec", template.get("spec") or {}, template.get("metadata") or {}
    elif kind == "PodTemplate":
        template = doc.get("template") or {}
        yield "template.spec", template.get("spec") or {}, template.get("metadata") or {}


def check_pod(path: str, pod: dict[str, Any], meta: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Yields (field path, problem) for one pod spec."""
    psc = pod.get("securityContext") or {}

    # Host namespaces and ports.
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            yield f"{path}.{field}", "must be false or unset"

    # Volumes: no hostPath, only restricted types.
    for i, vol in enumerate(pod.get("volumes") or []):
        types = [k for k in vol if k != "name"]
        for t in types:
            if t not in ALLOWED_VOLUME_TYPES:
                yield f"{path}.volumes[{i}].{t}", f"volume type {t!r} is not allowed (volume {vol.get('name')!r})"

    # Pod-level security context.
    if (psc.get("windowsOptions") or {}).get("hostProcess"):
        yield f"{path}.securityContext.windowsOptions.hostProcess", "must be false or unset"
    if psc.get("runAsUser") == 0:
        yield f"{path}.securityContext.runAsUser", "must not be 0 (root)"
    if psc.get("runAsNonRoot") is False:
        yield f"{path}.securityContext.runAsNonRoot", "must not be false"
    yield from check_selinux(f"{path}.securityContext.seLinuxOptions", psc.get("seLinuxOptions"))
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in ALLOWED_SECCOMP:
        yield f"{path}.securityContext.seccompProfile.type", f"must be RuntimeDefault or Localhost (is {pod_seccomp})"
    apparmor = (psc.get("appArmorProfile") or {}).get("type")
    if apparmor is not None and apparmor not in ALLOWED_SECCOMP:
        yield f"{path}.securityContext.appArmorProfile.type", f"must be RuntimeDefault or Localhost (is {apparmor})"
    for i, sysctl in enumerate(psc.get("sysctls") or []):
        if sysctl.get("name") not in SAFE_SYSCTLS:
            yield f"{path}.securityContext.sysctls[{i}]", f"sysctl {sysctl.get('name')!r} is not in the safe set"

    for key, value in (meta.get("annotations") or {}).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/"):
            if value != "runtime/default" and not str(value).startswith("localhost/"):
                yield f"metadata.annotations[{key}]", f"AppArmor profile {value!r} is not allowed"

    containers = [(f"{path}.{lst}[{i}]", c) for lst in CONTAINER_LISTS for i, c in enumerate(pod.get(lst) or [])]
    if not pod.get("containers"):
        yield f"{path}.containers", "no containers"
    for cpath, c in containers:
        yield from check_container(cpath, c, psc)


def check_selinux(path: str, opts: dict[str, Any] | None) -> Iterator[tuple[str, str]]:
    if not opts:
        return
    if opts.get("type", "") not in ALLOWED_SELINUX_TYPES:
        yield f"{path}.type", f"SELinux type {opts.get('type')!r} is not allowed"
    for field in ("user", "role"):
        if opts.get(field):
            yield f"{path}.{field}", "must be unset"


def check_container(path: str, c: dict[str, Any], psc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    sc = c.get("securityContext") or {}
    sp = f"{path}.securityContext"
    name = c.get("name", "?")

    if sc.get("privileged"):
        yield f"{sp}.privileged", f"container {name!r} must not be privileged"
    if sc.get("allowPrivilegeEscalation") is not False:
        shown = "missing" if "allowPrivilegeEscalation" not in sc else sc["allowPrivilegeEscalation"]
        yield f"{sp}.allowPrivilegeEscalation", f"container {name!r} must set it to false (is {shown})"

    # runAsNonRoot: true at the pod level (and not overridden to false here), or here.
    c_nonroot = sc.get("runAsNonRoot")
    if c_nonroot is False:
        yield f"{sp}.runAsNonRoot", f"container {name!r} must not set it to false"
    elif c_nonroot is not True and psc.get("runAsNonRoot") is not True:
        yield f"{sp}.runAsNonRoot", f"container {name!r} must run as non-root (set runAsNonRoot: true here or on the pod)"
    if sc.get("runAsUser") == 0:
        yield f"{sp}.runAsUser", f"container {name!r} must not run as UID 0"

    # seccomp: RuntimeDefault/Localhost here, or inherited from the pod; never Unconfined.
    seccomp = (sc.get("seccompProfile") or {}).get("type")
    if seccomp is not None and seccomp not in ALLOWED_SECCOMP:
        yield f"{sp}.seccompProfile.type", f"container {name!r}: must be RuntimeDefault or Localhost (is {seccomp})"
    elif seccomp is None and (psc.get("seccompProfile") or {}).get("type") not in ALLOWED_SECCOMP:
        yield f"{sp}.seccompProfile", f"container {name!r} has no RuntimeDefault seccomp profile (set it here or on the pod)"
    apparmor = (sc.get("appArmorProfile") or {}).get("type")
    if apparmor is not None and apparmor not in ALLOWED_SECCOMP:
        yield f"{sp}.appArmorProfile.type", f"container {name!r}: must be RuntimeDefault or Localhost (is {apparmor})"

    caps = sc.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []):
        yield f"{sp}.capabilities.drop", f"container {name!r} must drop ALL capabilities"
    if caps.get("add"):
        yield f"{sp}.capabilities.add", f"container {name!r} must add no capabilities (adds {caps['add']})"

    if sc.get("readOnlyRootFilesystem") is not True:
        yield f"{sp}.readOnlyRootFilesystem", f"container {name!r} must have a read-only root filesystem"
    if (sc.get("windowsOptions") or {}).get("hostProcess"):
        yield f"{sp}.windowsOptions.hostProcess", "must be false or unset"
    if sc.get("procMount") not in (None, "Default"):
        yield f"{sp}.procMount", f"must be Default (is {sc.get('procMount')})"
    yield from check_selinux(f"{sp}.seLinuxOptions", sc.get("seLinuxOptions"))

    for i, port in enumerate(c.get("ports") or []):
        if port.get("hostPort"):
            yield f"{path}.ports[{i}].hostPort", f"container {name!r} must not use host ports"


def check_documents(source: str, docs: list[Any]) -> tuple[list[Violation], int]:
    violations: list[Violation] = []
    templates = 0
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        obj = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
        for path, pod, meta in pod_specs(doc):
            templates += 1
            for field, problem in check_pod(path, pod, meta):
                violations.append(Violation(source, obj, field, problem))
    return violations, templates


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    all_violations: list[Violation] = []
    total = 0
    for name in argv:
        text = sys.stdin.read() if name == "-" else open(name, encoding="utf-8").read()
        violations, templates = check_documents(name, list(yaml.safe_load_all(text)))
        if templates == 0:
            print(f"FAIL {name}: no Pod templates found", file=sys.stderr)
            return 2
        total += templates
        all_violations += violations
    for v in all_violations:
        print(v)
    if all_violations:
        print(f"restricted: {len(all_violations)} violation(s) in {total} Pod template(s)")
        return 1
    print(f"restricted: {total} Pod template(s) meet the restricted Pod Security Standard")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
