#!/usr/bin/env python3
"""Turns the rendered Kubernetes base into what Podman 4.3's `kube play` can run.

    kube_play_render.py DIR IMAGE PROBE_DIR

Reads DIR/base.yaml (`kubectl kustomize base`), writes DIR/secret.yaml (the Secret, played
first) and DIR/play.yaml (ConfigMap and Deployment), and prints the Secret's name. The
changes, and only these: the image; the secret volume's `optional: false` spelled out
(Podman 4.3 dereferences the unset field and crashes); the downward-API POD_IP and the
KELPIE_ICE_ADDRESSES built from it dropped (Podman has no pod status); and, for the
frame-rate check, the animating test client as the session (PROBE_DIR mounted read-only),
1280x720 at 30 fps. The securityContext is left exactly as rendered. Used by
`containers/image.sh kube`.
"""

import sys

import yaml


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    d, image, probe_dir = argv
    with open(f"{d}/base.yaml", encoding="utf-8") as f:
        docs = [x for x in yaml.safe_load_all(f) if x]
    secret = [x for x in docs if x["kind"] == "Secret"]
    rest = [x for x in docs if x["kind"] in ("ConfigMap", "Deployment")]
    if len(secret) != 1 or sum(x["kind"] == "Deployment" for x in rest) != 1:
        print("kube_play_render: expected one Secret and one Deployment in the render", file=sys.stderr)
        return 1
    for x in rest:
        if x["kind"] != "Deployment":
            continue
        spec = x["spec"]["template"]["spec"]
        c = spec["containers"][0]
        c["image"] = image
        c["env"] = [e for e in c.get("env", []) if e["name"] not in ("POD_IP", "KELPIE_ICE_ADDRESSES")]
        c["env"] += [
            {"name": "KELPIE_FRAMERATE", "value": "30"},
            {"name": "KELPIE_SIZE", "value": "1280x720"},
            {"name": "KELPIE_SESSION", "value": "/opt/kelpie-test/kelpie-xprobe --animate 30"},
        ]
        for v in spec["volumes"]:
            if "secret" in v:
                v["secret"]["optional"] = False
        spec["volumes"].append({"name": "kelpie-test", "hostPath": {"path": probe_dir, "type": "Directory"}})
        c["volumeMounts"].append({"name": "kelpie-test", "mountPath": "/opt/kelpie-test", "readOnly": True})
    with open(f"{d}/secret.yaml", "w", encoding="utf-8") as f:
        yaml.safe_dump_all(secret, f)
    with open(f"{d}/play.yaml", "w", encoding="utf-8") as f:
        yaml.safe_dump_all(rest, f)
    print(secret[0]["metadata"]["name"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
