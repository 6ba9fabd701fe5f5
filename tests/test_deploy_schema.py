"""examples/kubernetes/ against the Kubernetes API's own schemas, strictly (an unknown or
misspelt field is an error), for the oldest version with native sidecars (1.29) and the
newest the validator knows. Needs the `kubernetes-validate` package (schemas bundled,
no network); prometheus-operator kinds have no schema there and are checked by
tests/test_deploy_manifests.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.deploy_support import K8S, manifests

kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")

CORE = [
    (path, doc)
    for path, doc in manifests()
    if not doc["apiVersion"].startswith("monitoring.coreos.com/")
]


@pytest.mark.parametrize("version", ["1.29.0", kv.latest_version()])
@pytest.mark.parametrize(
    ("path", "doc"),
    CORE,
    ids=[f"{p.relative_to(K8S)}:{d['kind']}/{d['metadata']['name']}" for p, d in CORE],
)
def test_manifest_is_valid_kubernetes(path: Path, doc: dict[str, Any], version: str) -> None:
    try:
        kv.validate(doc, version, strict=True)
    except kv.ValidationError as exc:
        pytest.fail(f"{path.relative_to(K8S)}: {exc.path}: {exc.message}")


def test_a_misspelt_field_is_caught() -> None:
    (_, deployment) = next((p, d) for p, d in CORE if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    broken = {
        **deployment,
        "spec": {
            **deployment["spec"],
            "template": {
                **deployment["spec"]["template"],
                "spec": {
                    **pod,
                    "initContainers": [{**pod["initContainers"][0], "restartPolicyy": "Always"}],
                },
            },
        },
    }
    with pytest.raises(kv.ValidationError):
        kv.validate(broken, "1.29.0", strict=True)
