"""deploy/k8s checked against the Kubernetes API schemas (npm package kubernetes-models, pinned by package-lock.json),
strict about unknown fields as `kubectl apply` is, and against what oomsentry needs from it. No root, no kernel."""
import json
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
K8S = os.path.join(ROOT, "deploy", "k8s")
MANIFESTS = sorted(os.path.join(K8S, f) for f in os.listdir(K8S) if f.endswith(".yaml"))
VALIDATOR_DIR = os.path.join(ROOT, "tests", "deploy", "k8s")
VALIDATOR = os.path.join(VALIDATOR_DIR, "validate.js")
UNIT = os.path.join(ROOT, "deploy", "oomsentry.service")


def tool(name):
    path = shutil.which(name)
    if not path:
        pytest.fail("%s is missing: make deps installs it" % name)
    return path


@pytest.fixture(scope="module")
def validator():
    """kubernetes-models at the version package-lock.json pins, from the npm registry, once."""
    node = tool("node")
    if not os.path.isdir(os.path.join(VALIDATOR_DIR, "node_modules", "kubernetes-models")):
        r = subprocess.run([tool("npm"), "ci", "--no-audit", "--no-fund"], cwd=VALIDATOR_DIR, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr

    def run(*args):
        return subprocess.run([node, VALIDATOR] + list(args), capture_output=True, text=True, timeout=60)
    return run


def test_manifests_match_the_kubernetes_schemas(validator):
    r = validator(*MANIFESTS)
    assert r.returncode == 0, r.stdout + r.stderr
    kinds = re.findall(r"^ok \S+ (\w+)/", r.stdout, re.M)
    assert sorted(kinds) == ["ConfigMap", "DaemonSet", "Deployment", "Namespace"], r.stdout


@pytest.mark.parametrize("old,new,complaint", [
    ("livenessProbe:", "livenesProbe:", "livenesProbe: unknown field"),
    ("runAsUser: 0", "runAsUser: root", "runAsUser must be integer"),
    ('command: ["oomsentry", "status"]', 'command: "oomsentry status"', "command must be array"),
    ("- name: oomsentry\n", "- nam: oomsentry\n", "must have required property name"),
])
def test_the_validator_rejects_broken_manifests(validator, tmp_path, old, new, complaint):
    """Each check can fail: a typo, a wrong type and a missing required field in the sidecar are all refused."""
    text = open(os.path.join(K8S, "sidecar.yaml")).read()
    assert old in text
    broken = tmp_path / "sidecar.yaml"
    broken.write_text(text.replace(old, new, 1))
    r = validator(str(broken))
    assert r.returncode == 1 and complaint in r.stderr, r.stdout + r.stderr


def oomsentry_containers(validator):
    r = validator("--json", *MANIFESTS)
    assert r.returncode == 0, r.stderr
    found = []
    for doc in json.loads(r.stdout):
        spec = doc["object"].get("spec", {}).get("template", {}).get("spec")
        for c in (spec or {}).get("containers", []):
            if c["name"] == "oomsentry":
                found.append((os.path.basename(doc["file"]), spec, c))
    assert {f for f, _, _ in found} == {"sidecar.yaml", "daemonset.yaml"}
    return found


def test_liveness_asks_the_event_loop_through_oomsentry_status(validator):
    for f, spec, c in oomsentry_containers(validator):
        probe = c["livenessProbe"]
        assert probe["exec"]["command"] == ["oomsentry", "status"], f
        # the status socket's directory is a volume: the read-only root cannot hold it
        assert any(m["mountPath"] == "/run/oomsentry" for m in c["volumeMounts"]), f


def test_the_sidecar_has_exactly_the_units_capabilities(validator):
    unit = open(UNIT).read()
    bounding = re.search(r"^CapabilityBoundingSet=(.*)$", unit, re.M).group(1).split()
    for f, spec, c in oomsentry_containers(validator):
        if f != "sidecar.yaml":
            continue
        assert spec["shareProcessNamespace"] is True
        caps = c["securityContext"]["capabilities"]
        assert caps["drop"] == ["ALL"]
        assert sorted("CAP_" + x for x in caps["add"]) == sorted(bounding)
