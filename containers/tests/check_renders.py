#!/usr/bin/env python3
"""Checks on rendered Kelpie kustomizations beyond schema validity.

    check_renders.py shape VARIANT RENDER.yaml    VARIANT: base | nvidia-gpu | coturn | turn-tls-passthrough
    check_renders.py same RENDER_A.yaml RENDER_B.yaml
    check_renders.py front EXAMPLE RENDER.yaml    EXAMPLE: haproxy | gateway-api | per-user

`shape` checks that the pieces agree with each other and with what Kelpie needs: one desktop
per pod (1 replica, Recreate), /health readiness and /livez liveness probes, writable /tmp, home and /dev/shm on a
read-only root, every referenced ConfigMap/Secret key present in the render, the
NetworkPolicy's UDP range equal to KELPIE_UDP_PORTS, and per overlay the GPU request and
NVENC settings or the coturn wiring (shared secret, relay ports == Service ports, TURN over
TLS: certificate mounted, TLS port published and admitted, turns: URLs on that port, and
for passthrough the Ingress, a ClusterIP Service and relay addresses on the pod).

`front` checks the examples that compose the base with components: the ingress class and
the policy's controller namespace (HAProxy), the HTTPRoute replacing the Ingress (Gateway
API), HTTPS egress to public addresses only, per-user names, labels and selectors, and DNS
egress intact in every one.

`same` checks that two renders (e.g. by kustomize v2.0.3 and v5) are the same objects,
ignoring generated-name hashes, key order and empty metadata maps.

Exits 1 with one line per problem.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import yaml


def load(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if isinstance(d, dict)]


def find(docs: list[dict[str, Any]], kind: str, name_prefix: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind and d["metadata"]["name"].startswith(name_prefix)]


def one(docs, kind, name, problems) -> dict[str, Any]:
    found = [d for d in docs if d.get("kind") == kind and d["metadata"]["name"] == name]
    if len(found) != 1:
        problems.append(f"expected exactly one {kind}/{name}, found {len(found)}")
        return {}
    return found[0]


def container(deploy: dict[str, Any], name: str) -> dict[str, Any]:
    for c in deploy.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
        if c.get("name") == name:
            return c
    return {}


def env_of(docs, c: dict[str, Any]) -> dict[str, str]:
    """The container's effective environment from envFrom ConfigMaps and literal env."""
    env: dict[str, str] = {}
    for src in c.get("envFrom") or []:
        ref = (src.get("configMapRef") or {}).get("name")
        for cm in docs:
            if cm.get("kind") == "ConfigMap" and cm["metadata"]["name"] == ref:
                env.update(cm.get("data") or {})
    for e in c.get("env") or []:
        if "value" in e:
            env[e["name"]] = e["value"]
        else:
            env.setdefault(e["name"], "<from " + ",".join(e.get("valueFrom", {})) + ">")
    return env


# Secrets that are created outside kustomize, on purpose (certificates with a life of their
# own: cert-manager or `kubectl create secret tls`), and the keys they have.
EXTERNAL_SECRETS = {"kelpie-turn-tls": {"tls.crt", "tls.key"}}


def check_references(docs, problems: list[str]) -> None:
    """Every ConfigMap/Secret (and key) a pod refers to exists in the render."""
    objects = {(d["kind"], d["metadata"]["name"]): d for d in docs}

    def keys(kind: str, name: str) -> set[str] | None:
        obj = objects.get((kind, name))
        if obj is None:
            return set(EXTERNAL_SECRETS[name]) if kind == "Secret" and name in EXTERNAL_SECRETS else None
        return set(obj.get("data") or {}) | set(obj.get("stringData") or {})

    for d in docs:
        spec = d.get("spec", {}).get("template", {}).get("spec")
        if not spec:
            continue
        where = f"{d['kind']}/{d['metadata']['name']}"
        for vol in spec.get("volumes") or []:
            for kind, field, namefield in (("Secret", "secret", "secretName"), ("ConfigMap", "configMap", "name")):
                if field in vol and keys(kind, vol[field][namefield]) is None:
                    problems.append(f"{where}: volume {vol['name']!r} refers to missing {kind} {vol[field][namefield]!r}")
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            for src in c.get("envFrom") or []:
                for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    if field in src and keys(kind, src[field]["name"]) is None:
                        problems.append(f"{where}: envFrom refers to missing {kind} {src[field]['name']!r}")
            for e in c.get("env") or []:
                vf = e.get("valueFrom") or {}
                for kind, field in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                    if field in vf:
                        ks = keys(kind, vf[field]["name"])
                        if ks is None or vf[field]["key"] not in ks:
                            problems.append(f"{where}: env {e['name']} refers to missing {kind} key "
                                            f"{vf[field]['name']}/{vf[field]['key']}")


def secret_file_ok(docs, deploy, c, env, var: str, problems: list[str]) -> None:
    """An env var naming a file must point into a mounted Secret that has that key."""
    path = env.get(var)
    if not path:
        problems.append(f"{var} is not set")
        return
    spec = deploy["spec"]["template"]["spec"]
    for m in c.get("volumeMounts") or []:
        if path.startswith(m["mountPath"].rstrip("/") + "/"):
            vol = next((v for v in spec.get("volumes", []) if v["name"] == m["name"]), {})
            if "secret" not in vol:
                problems.append(f"{var}={path} is not on a Secret volume")
                return
            key = path[len(m["mountPath"].rstrip("/")) + 1:]
            secret = next((d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == vol["secret"]["secretName"]), {})
            if key not in (secret.get("data") or {}):
                problems.append(f"{var}={path}: Secret {vol['secret']['secretName']} has no key {key!r}")
            return
    problems.append(f"{var}={path} is not under any volume mount")


def port_range(text: str) -> tuple[int, int]:
    lo, hi = text.split("-")
    return int(lo), int(hi)


def shape(variant: str, docs: list[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    deploy = one(docs, "Deployment", "kelpie", problems)
    one(docs, "Service", "kelpie", problems)
    ingress = one(docs, "Ingress", "kelpie", problems)
    netpol = one(docs, "NetworkPolicy", "kelpie", problems)
    if not deploy:
        return problems
    check_references(docs, problems)

    spec = deploy["spec"]
    if spec.get("replicas") != 1:
        problems.append(f"Deployment/kelpie: replicas must be 1 (one desktop per pod), is {spec.get('replicas')}")
    if (spec.get("strategy") or {}).get("type") != "Recreate":
        problems.append("Deployment/kelpie: strategy must be Recreate (never two desktops at once)")

    c = container(deploy, "kelpie")
    env = env_of(docs, c)
    # Frames decide readiness; liveness is the process answering, so throttling never
    # restarts a user's session.
    # With KELPIE_OPS_LISTEN the probes and Prometheus use the ops port, which the Service
    # must not carry (the Ingress routes the Service: /health and /metrics stay private).
    ops_port = int(env["KELPIE_OPS_LISTEN"].rsplit(":", 1)[1]) if env.get("KELPIE_OPS_LISTEN") else None
    probe_port = "http" if ops_port is None else "ops"
    for probe, path in (("startupProbe", "/health"), ("readinessProbe", "/health"), ("livenessProbe", "/livez")):
        get = (c.get(probe) or {}).get("httpGet") or {}
        if get.get("path") != path or get.get("port") != probe_port:
            problems.append(f"Deployment/kelpie: {probe} must GET {path} on port {probe_port} (is {get})")
    ports = {p["name"]: p for p in c.get("ports") or []}
    listen_port = int(env.get("KELPIE_LISTEN", ":0").rsplit(":", 1)[1])
    if ports.get("http", {}).get("containerPort") != listen_port:
        problems.append(f"container port http != KELPIE_LISTEN port {listen_port}")
    if ops_port is not None:
        if ports.get("ops", {}).get("containerPort") != ops_port:
            problems.append(f"container port ops != KELPIE_OPS_LISTEN port {ops_port}")
        annotations = spec["template"].get("metadata", {}).get("annotations") or {}
        if annotations.get("prometheus.io/port") not in (None, str(ops_port)):
            problems.append(f"prometheus.io/port must be the ops port {ops_port}")
        for svc in (d for d in docs if d.get("kind") == "Service"):
            for sp in svc.get("spec", {}).get("ports") or []:
                if sp.get("targetPort") in ("ops", ops_port) or sp.get("port") == ops_port:
                    problems.append(f"Service/{svc['metadata']['name']} exposes the ops port: the Ingress could reach /metrics")

    pod = spec["template"]["spec"]
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts") or []}
    for path in ("/tmp", "/home/kelpie", "/dev/shm"):
        vol = volumes.get(mounts.get(path, ""), {})
        if "emptyDir" not in vol and "persistentVolumeClaim" not in vol:
            problems.append(f"Deployment/kelpie: {path} must be a writable volume (emptyDir or PVC)")
    if (volumes.get(mounts.get("/dev/shm", ""), {}).get("emptyDir") or {}).get("medium") != "Memory":
        problems.append("Deployment/kelpie: /dev/shm must be a memory-backed emptyDir")

    auth = env.get("KELPIE_AUTH", "none")
    if auth == "none":
        problems.append("KELPIE_AUTH must not be none on a pod address")
    if auth == "token":
        secret_file_ok(docs, deploy, c, env, "KELPIE_TOKEN_SECRET_FILE", problems)

    # The NetworkPolicy lets in exactly the UDP range Kelpie uses for media.
    lo, hi = port_range(env.get("KELPIE_UDP_PORTS", "0-0"))
    udp = [p for rule in netpol.get("spec", {}).get("ingress", []) for p in rule.get("ports", []) if p.get("protocol") == "UDP"]
    if not any(p.get("port") == lo and p.get("endPort", p.get("port")) == hi for p in udp):
        problems.append(f"NetworkPolicy/kelpie must admit UDP {lo}-{hi} (KELPIE_UDP_PORTS), has {udp}")
    tcp = [p for rule in netpol.get("spec", {}).get("ingress", []) for p in rule.get("ports", []) if p.get("protocol") == "TCP"]
    allowed_tcp = [listen_port]
    if ops_port is not None:
        allowed_tcp.append(ops_port)
        # The ops port is for Prometheus: never in the rule that admits the ingress controller.
        for rule in netpol.get("spec", {}).get("ingress", []):
            ports = [p.get("port") for p in rule.get("ports", []) if p.get("protocol") == "TCP"]
            if ops_port in ports and listen_port in ports:
                problems.append(f"NetworkPolicy/kelpie: the ops port {ops_port} must have a rule of its own, not the web port's")
    if [p.get("port") for p in tcp] != allowed_tcp:
        problems.append(f"NetworkPolicy/kelpie must admit only TCP {allowed_tcp}, has {tcp}")
    if sorted(netpol.get("spec", {}).get("policyTypes", [])) != ["Egress", "Ingress"]:
        problems.append("NetworkPolicy/kelpie must restrict both Ingress and Egress")

    ann = ingress.get("metadata", {}).get("annotations") or {}
    for key in ("nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"):
        if int(ann.get(key, "0")) < 3600:
            problems.append(f"Ingress/kelpie: {key} must be at least 3600 for long WebSocket sessions")

    limits = (c.get("resources") or {}).get("limits") or {}
    if variant == "nvidia-gpu":
        if str(limits.get("nvidia.com/gpu")) != "1":
            problems.append("nvidia-gpu: the kelpie container must limit nvidia.com/gpu: 1")
        if env.get("KELPIE_ENCODER") != "nvh264":
            problems.append("nvidia-gpu: KELPIE_ENCODER must be nvh264")
        caps = set(env.get("NVIDIA_DRIVER_CAPABILITIES", "").split(","))
        if not ({"video", "compute", "utility"} <= caps or "all" in caps):
            problems.append(f"nvidia-gpu: NVIDIA_DRIVER_CAPABILITIES must include compute,utility,video (is {caps})")
        if "NVIDIA_VISIBLE_DEVICES" in env:
            problems.append("nvidia-gpu: NVIDIA_VISIBLE_DEVICES must be left to the device plugin")
    elif "nvidia.com/gpu" in limits:
        problems.append(f"{variant}: no GPU should be requested")

    if variant in ("coturn", "turn-tls-passthrough"):
        coturn = one(docs, "Deployment", "kelpie-coturn", problems)
        svc = one(docs, "Service", "kelpie-coturn", problems)
        conf_cm = find(docs, "ConfigMap", "coturn-config")
        conf = (conf_cm[0].get("data") or {}).get("turnserver.conf", "") if conf_cm else ""
        settings = dict(line.split("=", 1) if "=" in line else (line, "") for line in conf.splitlines()
                        if line.strip() and not line.startswith("#"))
        if "use-auth-secret" not in settings:
            problems.append("coturn: turnserver.conf must set use-auth-secret")
        if "static-auth-secret" in settings:
            problems.append("coturn: the secret must not be in the ConfigMap")
        # Credentials reach every user: coturn must not relay into private networks, only
        # to the pod network (allowed again on its command line).
        denied = {line.split("=", 1)[1].strip() for line in conf.splitlines() if line.startswith("denied-peer-ip=")}
        for private in ("10.0.0.0-10.255.255.255", "172.16.0.0-172.31.255.255", "192.168.0.0-192.168.255.255",
                        "169.254.0.0-169.254.255.255", "127.0.0.0-127.255.255.255", "100.64.0.0-100.127.255.255"):
            if private not in denied:
                problems.append(f"coturn: turnserver.conf must deny relaying to {private} (denied-peer-ip)")
        if "allow-loopback-peers" in settings:
            problems.append("coturn: allow-loopback-peers would let relays reach the pod's own services")
        tc = container(coturn, "coturn") if coturn else {}
        # The secret reaches coturn through a private config file written by the shell,
        # never on argv (world-readable in /proc/PID/cmdline; review #31).
        argv = " ".join((tc.get("command") or []) + (tc.get("args") or []))
        if "static-auth-secret=$(TURN_SECRET)" in argv or "$(TURN_SECRET)" in argv:
            problems.append("coturn: the TURN secret must not be on the command line")
        script = " ".join(tc.get("command") or [])
        for needed in ("umask 077", "static-auth-secret=%s", '"$TURN_SECRET"', "> /tmp/turnserver.conf",
                       "unset TURN_SECRET", "exec turnserver -c /tmp/turnserver.conf"):
            if needed not in script:
                problems.append(f"coturn: the command must write the secret into a private config ({needed!r})")
        if "--allowed-peer-ip=$(POD_NETWORK)" not in (tc.get("args") or []):
            problems.append("coturn: args must allow the pod network again (--allowed-peer-ip=$(POD_NETWORK))")
        turn_env = {e["name"]: e.get("valueFrom", {}) for e in tc.get("env") or []}
        ref = turn_env.get("TURN_SECRET", {}).get("secretKeyRef", {})
        # The desktop container never holds the TURN secret (its user could mint credentials
        # that never expire): a broker sidecar, under a UID of its own, has the only mount.
        for var in ("KELPIE_TURN_SECRET_FILE", "KELPIE_TURN_SECRET"):
            if var in env:
                problems.append(f"Deployment/kelpie: the desktop container must not get {var} (use the broker)")
        broker = container(deploy, "turn-broker")
        benv = env_of(docs, broker)
        if not broker:
            problems.append("coturn: the desktop's pod needs the turn-broker sidecar")
        else:
            secret_file_ok(docs, deploy, broker, benv, "KELPIE_TURN_SECRET_FILE", problems)
            listen = benv.get("KELPIE_TURN_BROKER_LISTEN", "")
            if not listen.startswith("127.0.0.1:"):
                problems.append(f"turn-broker: must listen on the pod's loopback only (is {listen!r})")
            if env.get("KELPIE_TURN_BROKER") != f"http://{listen}/turn":
                problems.append(f"KELPIE_TURN_BROKER={env.get('KELPIE_TURN_BROKER')!r} must be the broker's http://{listen}/turn")
            desk_uid = (c.get("securityContext") or {}).get("runAsUser", pod.get("securityContext", {}).get("runAsUser"))
            if (broker.get("securityContext") or {}).get("runAsUser") in (None, desk_uid):
                problems.append("turn-broker: must run as a UID other than the desktop's")
            if pod.get("shareProcessNamespace"):
                problems.append("coturn: shareProcessNamespace would let the desktop read the broker's files via /proc")
            vols = {v["name"]: v for v in pod.get("volumes") or []}
            bmount = next((m for m in broker.get("volumeMounts") or []
                           if benv.get("KELPIE_TURN_SECRET_FILE", "").startswith(m["mountPath"].rstrip("/") + "/")), {})
            broker_secret = (vols.get(bmount.get("name", ""), {}).get("secret") or {}).get("secretName")
            key = benv.get("KELPIE_TURN_SECRET_FILE", "").rsplit("/", 1)[-1]
            if (ref.get("name"), ref.get("key")) != (broker_secret, key):
                problems.append(f"coturn and the broker must share one TURN secret: coturn reads {ref}, the broker {broker_secret}/{key}")
            for m in c.get("volumeMounts") or []:
                if (vols.get(m["name"], {}).get("secret") or {}).get("secretName") == broker_secret:
                    problems.append(f"Deployment/kelpie: the desktop container mounts the TURN secret at {m['mountPath']}")
        if not re.match(r"turns?:", env.get("KELPIE_TURN_URLS", "")):
            problems.append("coturn: KELPIE_TURN_URLS must name the TURN server")
        listen = int(settings.get("listening-port", "3478"))
        lo, hi = int(settings.get("min-port", 0)), int(settings.get("max-port", -1))
        svc_udp = {p["port"] for p in svc.get("spec", {}).get("ports", []) if p.get("protocol") == "UDP"}
        want = set(range(lo, hi + 1)) | {listen}
        if svc_udp != want:
            problems.append(f"coturn Service UDP ports must be the listening port and relay range {lo}-{hi}: "
                            f"missing {sorted(want - svc_udp)}, extra {sorted(svc_udp - want)}")
        tls_ports = check_turn_tls(docs, settings, coturn, tc, svc, problems)
        urls = [u for u in env.get("KELPIE_TURN_URLS", "").split(",") if u]
        for url in urls:
            m = re.match(r"(turns?):([^:?]+):(\d+)", url)
            want = tls_ports if m and m.group(1) == "turns" else {listen}
            if not m or int(m.group(3)) not in want:
                problems.append(f"KELPIE_TURN_URLS entry {url!r} does not use coturn's port for it {sorted(want)}")
        turns = [re.match(r"turns:([^:?]+):(\d+)", u) for u in urls]
        turns = [(m.group(1), int(m.group(2))) for m in turns if m]
        if not turns:
            problems.append("coturn: KELPIE_TURN_URLS must offer TURN over TLS (a turns: URL)")
        if variant == "coturn":
            # Kelpie's egress to TURN on 443 goes to coturn's external address.
            public = next((cm.get("data", {}).get("TURN_PUBLIC_IP") for cm in find(docs, "ConfigMap", "coturn-settings")), None)
            tcp443 = [rule for rule in netpol.get("spec", {}).get("egress", [])
                      if any(p.get("protocol") == "TCP" and p.get("port") == 443 for p in rule.get("ports", []))]
            cidrs = {(t.get("ipBlock") or {}).get("cidr") for rule in tcp443 for t in rule.get("to") or []}
            if any(port == 443 for _, port in turns) and f"{public}/32" not in cidrs:
                problems.append(f"NetworkPolicy/kelpie must let Kelpie reach TURN on TCP 443 at coturn's address "
                                f"{public}/32 (TURN_PUBLIC_IP), has {sorted(c for c in cidrs if c)}")
        else:
            check_passthrough(docs, env, svc, tc, tls_ports, turns, problems)
    return problems


def service_ports_to(svc: dict[str, Any], container_ports: dict[str, int], target: int, protocol: str) -> set[int]:
    """The Service's ports whose (named or numbered) targetPort is the container's `target`."""
    out = set()
    for p in svc.get("spec", {}).get("ports", []):
        t = p.get("targetPort", p.get("port"))
        t = container_ports.get(t) if isinstance(t, str) else t
        if p.get("protocol", "TCP") == protocol and t == target:
            out.add(p["port"])
    return out


def check_turn_tls(docs, settings: dict[str, str], coturn, tc, svc, problems: list[str]) -> set[int]:
    """coturn serves TURN over TLS: returns the Service ports that reach its TLS port."""
    if "no-tls" in settings or "tls-listening-port" not in settings:
        problems.append("coturn: turnserver.conf must set tls-listening-port (and not no-tls)")
        return set()
    tls = int(settings["tls-listening-port"])
    ports = {p["name"]: p["containerPort"] for p in tc.get("ports") or [] if p.get("protocol", "TCP") == "TCP"}
    if tls not in ports.values():
        problems.append(f"coturn: the container must declare TCP port {tls} (tls-listening-port)")
    spec = (coturn.get("spec") or {}).get("template", {}).get("spec", {})
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for key in ("cert", "pkey"):
        path = settings.get(key, "")
        mount = next((m for m in tc.get("volumeMounts") or [] if path.startswith(m["mountPath"].rstrip("/") + "/")), None)
        vol = volumes.get(mount["name"], {}) if mount else {}
        if not mount or "secret" not in vol or not mount.get("readOnly"):
            problems.append(f"coturn: {key}={path or '(unset)'} must be on a read-only Secret volume")
            continue
        name = vol["secret"]["secretName"]
        have = EXTERNAL_SECRETS.get(name) or set((one(docs, "Secret", name, problems).get("data") or {}))
        if path[len(mount["mountPath"].rstrip("/")) + 1:] not in have:
            problems.append(f"coturn: {key}={path}: Secret {name} has no such key")
    if not (spec.get("securityContext") or {}).get("fsGroup"):
        problems.append("coturn: the pod needs an fsGroup so that its UID can read the 0440 TLS key")
    published = service_ports_to(svc, ports, tls, "TCP")
    if 443 not in published:
        problems.append(f"coturn Service must publish the TLS port {tls} as 443, publishes it as {sorted(published)}")
    pol = one(docs, "NetworkPolicy", "kelpie-coturn", problems)
    admitted = [p for rule in pol.get("spec", {}).get("ingress", []) for p in rule.get("ports", [])]
    if not any(p.get("protocol") == "TCP" and p.get("port") in (tls, "turn-tls") for p in admitted):
        problems.append(f"NetworkPolicy/kelpie-coturn must admit TCP {tls} (TURN over TLS)")
    return published


def check_passthrough(docs, env, svc, tc, tls_ports: set[int], turns, problems: list[str]) -> None:
    """TURN over TLS through the ingress controller, by SNI, to a cluster-internal coturn."""
    ing = one(docs, "Ingress", "kelpie-turn", problems)
    if not ing:
        return
    ann = ing.get("metadata", {}).get("annotations") or {}
    for key in ("nginx.ingress.kubernetes.io/ssl-passthrough", "haproxy.org/ssl-passthrough",
                "haproxy-ingress.github.io/ssl-passthrough"):
        if ann.get(key) != "true":
            problems.append(f"Ingress/kelpie-turn: {key} must be \"true\"")
    if ing["spec"].get("tls"):
        problems.append("Ingress/kelpie-turn: no spec.tls: the controller must not terminate TURN's TLS")
    hosts = {r.get("host") for r in ing["spec"].get("rules", [])}
    backends = [p["backend"]["service"] for r in ing["spec"].get("rules", []) for p in r["http"]["paths"]]
    named = {p.get("name"): p["port"] for p in svc.get("spec", {}).get("ports", [])}
    for b in backends:
        port = b["port"].get("number", named.get(b["port"].get("name")))
        if b["name"] != svc.get("metadata", {}).get("name") or port not in tls_ports:
            problems.append(f"Ingress/kelpie-turn must send to coturn's TLS Service port {sorted(tls_ports)}, sends to {b}")
    for host, port in turns:
        if host not in hosts or port != 443:
            problems.append(f"turns:{host}:{port} must be an Ingress/kelpie-turn host on 443, hosts {sorted(hosts)}")
    if any(not u.startswith("turns:") for u in env.get("KELPIE_TURN_URLS", "").split(",")):
        problems.append("turn-tls-passthrough: only turns: URLs reach coturn through the ingress")
    if env.get("KELPIE_FORCE_RELAY", "false") != "false":
        problems.append("turn-tls-passthrough: KELPIE_FORCE_RELAY must be false (Kelpie gets no relay through the ingress)")
    spec = svc.get("spec", {})
    if spec.get("type", "ClusterIP") != "ClusterIP" or "externalTrafficPolicy" in spec:
        problems.append(f"turn-tls-passthrough: the coturn Service must be ClusterIP without externalTrafficPolicy, is {spec.get('type')}")
    args = tc.get("args") or []
    if any(a.startswith("--external-ip") for a in args) or "--relay-ip=$(POD_IP)" not in args:
        problems.append(f"turn-tls-passthrough: coturn must relay on its pod IP (--relay-ip=$(POD_IP), no --external-ip), args {args}")


HASH = re.compile(r"-[a-z0-9]{10}$")


def normalise(obj: Any) -> Any:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in ("annotations", "labels") and v == {}:
                continue
            out[k] = normalise(v)
        return out
    if isinstance(obj, list):
        return [normalise(v) for v in obj]
    if isinstance(obj, str):
        return HASH.sub("-HASH", obj)
    return obj


def same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[str]:
    def keyed(docs):
        return {(d["kind"], HASH.sub("-HASH", d["metadata"]["name"])): normalise(d) for d in docs}

    ka, kb = keyed(a), keyed(b)
    problems = [f"only in the first render: {k}" for k in sorted(set(ka) - set(kb))]
    problems += [f"only in the second render: {k}" for k in sorted(set(kb) - set(ka))]
    for k in sorted(set(ka) & set(kb)):
        if ka[k] != kb[k]:
            problems.append(f"{k[0]}/{k[1]} differs between the renders")
    return problems


PRIVATE_V4 = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"}


def ingress_from(netpol: dict[str, Any]) -> set[str]:
    """The namespaces the policy admits HTTP from."""
    return {
        peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
        for rule in netpol.get("spec", {}).get("ingress", [])
        for peer in rule.get("from", [])
    } - {None}


def front(variant: str, docs: list[dict[str, Any]]) -> list[str]:
    """The examples that compose the base with components (kustomize >= 3.7 only)."""
    problems: list[str] = []
    suffix = "-alice" if variant == "per-user" else ""
    name = "kelpie" + suffix
    check_references(docs, problems)
    deploy = one(docs, "Deployment", name, problems)
    netpol = one(docs, "NetworkPolicy", name, problems)
    svc = one(docs, "Service", name, problems)
    ingresses = find(docs, "Ingress", "kelpie")
    routes = find(docs, "HTTPRoute", "kelpie")
    admitted = ingress_from(netpol)
    # DNS must stay reachable whatever the composition did to labels.
    dns = [peer for rule in netpol.get("spec", {}).get("egress", []) for peer in rule.get("to", [])
           if peer.get("podSelector", {}).get("matchLabels", {}).get("k8s-app") == "kube-dns"]
    if len(dns) != 1 or dns[0]["podSelector"]["matchLabels"] != {"k8s-app": "kube-dns"}:
        problems.append(f"NetworkPolicy/{name}: the DNS egress selector must be exactly k8s-app: kube-dns, is {dns}")
    if variant == "haproxy":
        if [i.get("spec", {}).get("ingressClassName") for i in ingresses] != ["haproxy"]:
            problems.append("haproxy: the Ingress must have ingressClassName haproxy")
        if any(k.startswith("nginx.") for i in ingresses for k in (i["metadata"].get("annotations") or {})):
            problems.append("haproxy: nginx annotations left on the Ingress")
        if "haproxy-controller" not in admitted or "ingress-nginx" in admitted:
            problems.append(f"haproxy: the policy must admit haproxy-controller, not ingress-nginx (admits {admitted})")
        https = find(docs, "NetworkPolicy", "kelpie-egress-https")
        if len(https) != 1:
            problems.append("haproxy example: the egress-https policy is missing")
        else:
            for rule in https[0]["spec"]["egress"]:
                ports = sorted(p["port"] for p in rule.get("ports", []))
                if ports != [80, 443]:
                    problems.append(f"egress-https: only TCP 80 and 443, has {ports}")
                v4 = [p["ipBlock"] for p in rule.get("to", []) if p["ipBlock"]["cidr"] == "0.0.0.0/0"]
                if not v4 or not PRIVATE_V4 <= set(v4[0].get("except", [])):
                    problems.append(f"egress-https: private ranges and 169.254/16 must stay closed, has {v4}")
    if variant == "gateway-api":
        if ingresses:
            problems.append("gateway-api: the Ingress must be removed")
        if len(routes) != 1:
            problems.append(f"gateway-api: expected one HTTPRoute, found {len(routes)}")
        else:
            spec = routes[0]["spec"]
            refs = [b for r in spec.get("rules", []) for b in r.get("backendRefs", [])]
            port = next((p["port"] for p in svc.get("spec", {}).get("ports", []) if p.get("name") == "http"), None)
            if refs != [{"name": name, "port": port}]:
                problems.append(f"gateway-api: the route must send everything to Service {name}:{port}, has {refs}")
            if any("timeouts" in r for r in spec.get("rules", [])):
                problems.append("gateway-api: a request timeout would cut the WebSocket")
            gw_ns = {p.get("namespace") for p in spec.get("parentRefs", [])}
            if not gw_ns <= admitted:
                problems.append(f"gateway-api: the policy must admit the Gateway's namespace {gw_ns} (admits {admitted})")
    if variant == "per-user":
        for d in docs:
            n = d["metadata"]["name"]
            if not (n.endswith(suffix) or n.rsplit("-", 1)[0].endswith(suffix)):
                problems.append(f"per-user: {d['kind']}/{n} lacks the user's suffix")
            if (d["metadata"].get("labels") or {}).get("kelpie.example.org/user") != "alice":
                problems.append(f"per-user: {d['kind']}/{n} lacks the user's label")
        sel = [deploy.get("spec", {}).get("selector", {}).get("matchLabels", {}), svc.get("spec", {}).get("selector", {}),
               netpol.get("spec", {}).get("podSelector", {}).get("matchLabels", {})]
        pod = deploy.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
        for s_ in sel:
            if s_.get("kelpie.example.org/user") != "alice" or not set(s_.items()) <= set(pod.items()):
                problems.append(f"per-user: selector {s_} must name the user and match the pod's labels {pod}")
        hosts = [r.get("host") for i in ingresses for r in i["spec"].get("rules", [])]
        if hosts != ["alice.desktop.example.org"]:
            problems.append(f"per-user: the Ingress must have the user's host, has {hosts}")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "shape" and argv[1] in ("base", "nvidia-gpu", "coturn", "turn-tls-passthrough"):
        problems = shape(argv[1], load(argv[2]))
        label = f"shape {argv[1]}"
    elif len(argv) == 3 and argv[0] == "front" and argv[1] in ("haproxy", "gateway-api", "per-user"):
        problems = front(argv[1], load(argv[2]))
        label = f"front {argv[1]}"
    elif len(argv) == 3 and argv[0] == "same":
        problems = same(load(argv[1]), load(argv[2]))
        label = f"same {argv[1]} {argv[2]}"
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for p in problems:
        print(f"FAIL {label}: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
