"""The deploy docs stay true: links resolve, the rule pack's tables and metric definitions
match the files, every self-metric the agent registers is explained, and the
"copy it into Alertmanager" advice in central-prometheus.md holds for our example."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy_support import (
    K8S,
    REPO,
    alerting_rules,
    anchors,
    require_tool,
    self_metrics,
    yaml_docs,
)

DOCS = [
    REPO / "docs" / "configuration.md",
    REPO / "docs" / "operations.md",
    REPO / "docs" / "rules.md",
    REPO / "docs" / "central-prometheus.md",
    K8S / "README.md",
]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _k8s_config() -> dict[str, Any]:
    (cm,) = [d for d in yaml_docs(K8S / "configmap.yaml") if d["kind"] == "ConfigMap"]
    cfg: dict[str, Any] = yaml.safe_load(cm["data"]["chatwatch.yaml"])
    return cfg


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(doc: Path) -> None:
    for target in LINK.findall(doc.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        assert path.exists(), f"{doc.name}: link to missing {file}"
        if anchor:
            assert anchor in anchors(path), f"{doc.name}: {path.name} has no #{anchor}"


def test_rules_doc_lists_every_alert_of_the_pack() -> None:
    text = (REPO / "docs" / "rules.md").read_text()
    listed = set(re.findall(r"^\| \[(\w+)\]\(operations\.md#", text, re.M))
    assert listed == {r["alert"] for r in alerting_rules()}


def test_rules_doc_metric_definitions_are_the_example_configs() -> None:
    text = (REPO / "docs" / "rules.md").read_text()
    blocks = re.findall(r"```yaml\n(metrics:\n.*?)```", text, re.S)
    assert len(blocks) == 1
    assert yaml.safe_load(blocks[0])["metrics"] == _k8s_config()["metrics"]


def test_operations_doc_explains_every_self_metric() -> None:
    text = (REPO / "docs" / "operations.md").read_text()
    registered = {n for n in self_metrics() if not n.endswith(("_bucket", "_sum", "_count"))}
    missing = sorted(n for n in registered if f"`{n}`" not in text)
    assert not missing, f"docs/operations.md does not explain {missing}"


def test_alerting_section_pastes_into_alertmanager(tmp_path: Path) -> None:
    """central-prometheus.md says route and receivers copy into alertmanager.yml as they are."""
    amtool = require_tool("amtool")
    alerting = _k8s_config()["alerting"]
    secrets: dict[str, str] = {}
    text = yaml.safe_dump({"route": alerting["route"], "receivers": alerting["receivers"]})
    for path in sorted(set(re.findall(r"/var/run/secrets/chatwatch/[\w-]+", text))):
        file = tmp_path / Path(path).name
        file.write_text("https://hooks.slack.com/services/T0/B0/x\n")
        secrets[path] = str(file)
    for path, local in secrets.items():
        text = text.replace(path, local)
    assert secrets, "the example reads its secrets from files"
    config = tmp_path / "alertmanager.yml"
    config.write_text(text)
    result = subprocess.run(
        [amtool, "check-config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_scrape_config_in_central_prometheus_doc_is_valid(tmp_path: Path) -> None:
    """promtool checks the relabelling; Debian's Prometheus is built without Kubernetes
    discovery, so there the discovery block is swapped for static targets first."""
    promtool = require_tool("promtool")
    text = (REPO / "docs" / "central-prometheus.md").read_text()
    (block,) = re.findall(r"```yaml\n(scrape_configs:\n.*?)```", text, re.S)
    config = tmp_path / "prometheus.yml"

    def check(config_text: str) -> subprocess.CompletedProcess[str]:
        config.write_text(config_text)
        return subprocess.run(
            [promtool, "check", "config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    result = check(block)
    if "field kubernetes_sd_configs not found" in result.stdout + result.stderr:
        discovery = "kubernetes_sd_configs: [{role: pod}]"
        assert discovery in block
        result = check(block.replace(discovery, 'static_configs: [{targets: ["10.0.0.1:9317"]}]'))
    assert result.returncode == 0, result.stdout + result.stderr
