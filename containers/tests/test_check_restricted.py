"""The restricted-Pod-Security checker: it must catch each violation, naming the field."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import check_restricted

HERE = Path(__file__).resolve().parent
BASE_DEPLOYMENT = HERE.parent / "k8s" / "base" / "deployment.yaml"
BAD = HERE / "fixtures" / "bad-pod.yaml"
C = "spec.template.spec.containers[0]"


def violations(doc):
    found, templates = check_restricted.check_documents("test", [doc])
    assert templates == 1
    return {v.path for v in found}


@pytest.fixture
def good():
    return yaml.safe_load(BASE_DEPLOYMENT.read_text())


def test_kelpie_deployment_is_compliant(good):
    assert violations(good) == set()


MUTATIONS = {
    "hostNetwork": (lambda d: d["spec"]["template"]["spec"].update(hostNetwork=True), "spec.template.spec.hostNetwork"),
    "hostPath": (lambda d: d["spec"]["template"]["spec"]["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
                 "spec.template.spec.volumes[4].hostPath"),
    "privileged": (lambda d: d["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(privileged=True),
                   f"{C}.securityContext.privileged"),
    "escalation": (lambda d: d["spec"]["template"]["spec"]["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"),
                   f"{C}.securityContext.allowPrivilegeEscalation"),
    "root": (lambda d: (d["spec"]["template"]["spec"]["securityContext"].pop("runAsNonRoot"),
                        d["spec"]["template"]["spec"]["containers"][0]["securityContext"].pop("runAsNonRoot")),
             f"{C}.securityContext.runAsNonRoot"),
    "uid0": (lambda d: d["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(runAsUser=0),
             f"{C}.securityContext.runAsUser"),
    "seccomp": (lambda d: d["spec"]["template"]["spec"]["securityContext"].pop("seccompProfile"),
                f"{C}.securityContext.seccompProfile"),
    "unconfined": (lambda d: d["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(
        seccompProfile={"type": "Unconfined"}), f"{C}.securityContext.seccompProfile.type"),
    "drop": (lambda d: d["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"].update(drop=["NET_RAW"]),
             f"{C}.securityContext.capabilities.drop"),
    "add": (lambda d: d["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"].update(
        add=["NET_BIND_SERVICE"]), f"{C}.securityContext.capabilities.add"),
    "rootfs": (lambda d: d["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(readOnlyRootFilesystem=False),
               f"{C}.securityContext.readOnlyRootFilesystem"),
    "hostPort": (lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(hostPort=8080),
                 f"{C}.ports[0].hostPort"),
    "initContainer": (lambda d: d["spec"]["template"]["spec"].update(initContainers=[{"name": "i", "image": "x"}]),
                      "spec.template.spec.initContainers[0].securityContext.allowPrivilegeEscalation"),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_each_violation_is_reported_at_its_path(good, name):
    mutate, path = MUTATIONS[name]
    bad = copy.deepcopy(good)
    mutate(bad)
    assert path in violations(bad)


def test_cli_fails_loudly_on_the_bad_fixture():
    r = subprocess.run([sys.executable, str(HERE / "check_restricted.py"), str(BAD)], capture_output=True, text=True)
    assert r.returncode == 1
    lines = [l for l in r.stdout.splitlines() if l.startswith("FAIL ")]
    # Every line marked BAD in the fixture is caught (27 violations in 2 Pod templates).
    assert len(lines) >= 25, r.stdout
    assert any("Deployment/bad: spec.template.spec.volumes[0].hostPath" in l for l in lines)
    assert any("CronJob/bad-cron: spec.jobTemplate.spec.template.spec.containers[0]" in l for l in lines)


def test_cli_refuses_input_without_pod_templates(tmp_path):
    f = tmp_path / "cm.yaml"
    f.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    r = subprocess.run([sys.executable, str(HERE / "check_restricted.py"), str(f)], capture_output=True, text=True)
    assert r.returncode == 2
