"""The bundled rule pack (rules/*.yml) and its promtool-format tests (rules/tests/*.yml).

promtool is the reference: it must accept the pack and pass the tests, and notice a
wrong expectation. `chatwatch test rules` must reach the same verdicts on the same files.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.support.duration import parse_duration
from tests.deploy_support import (
    K8S,
    REPO,
    RULES,
    RUNBOOK_BASE,
    alerting_rules,
    anchors,
    defined_names,
    metric_names,
    ranges,
    require_tool,
    selectors,
    yaml_docs,
)

PACK = sorted(RULES.glob("*.yml"))
PACK_TESTS = sorted((RULES / "tests").glob("*.yml"))
EXPECTED_ALERTS = {
    "ChatbotHighErrorRate",
    "ChatbotHighLatencyP95",
    "ChatbotRateLimited",
    "LLMHighErrorRate",
    "LLMProviderRateLimited",
    "LLMCostOverBudget",
    "LLMSpendOverHourlyBudget",
    "ChatbotExceptionsByType",
    "ChatbotAuthFailureBurst",
    "ChatbotLogSilence",
    "ChatbotNoLogs",
    "ChatbotNoSuccessfulConversation",
}
MAX_RANGE = 15 * 60


def _promtool(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    promtool = require_tool("promtool")
    return subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _broken_copy(tmp_path: Path) -> Path:
    """The pack and its tests in tmp_path, with one expected annotation made wrong."""
    shutil.copytree(RULES, tmp_path / "rules")
    test_file = tmp_path / "rules" / "tests" / "chatbot_test.yml"
    text = test_file.read_text()
    good = 'summary: "Chatbot error rate is 9.091%"'
    assert good in text
    test_file.write_text(text.replace(good, 'summary: "Chatbot error rate is 8%"'))
    return test_file


def test_the_pack_has_every_rule_the_issue_asks_for() -> None:
    assert {r["alert"] for r in alerting_rules()} == EXPECTED_ALERTS


def test_promtool_check_rules_accepts_the_pack() -> None:
    result = _promtool("check", "rules", *map(str, PACK))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(EXPECTED_ALERTS)} rules found" in result.stdout


def test_promtool_passes_the_pack_tests() -> None:
    result = _promtool("test", "rules", *map(str, PACK_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_fails_the_pack_tests_on_a_wrong_expectation(tmp_path: Path) -> None:
    broken = _broken_copy(tmp_path)
    result = _promtool("test", "rules", str(broken), cwd=tmp_path)
    assert result.returncode == 1
    assert "Chatbot error rate is 9.091%" in result.stdout + result.stderr


def _chatwatch_test_rules(*files: Path) -> tuple[int, str]:
    """`chatwatch test rules FILES`, in process: (exit code, everything it printed)."""
    try:
        from agent.alerting.ruletest import run_tests
    except ImportError as exc:
        pytest.skip(f"`chatwatch test rules` (agent.alerting.ruletest) is not importable: {exc}")
    out = io.StringIO()
    code = run_tests([str(f) for f in files], out=out, err=out)
    return code, out.getvalue()


def test_chatwatch_test_rules_agrees_with_promtool_on_the_pack() -> None:
    code, output = _chatwatch_test_rules(*PACK_TESTS)
    assert code == 0, output


def test_chatwatch_test_rules_agrees_with_promtool_on_a_wrong_expectation(
    tmp_path: Path,
) -> None:
    broken = _broken_copy(tmp_path)
    code, output = _chatwatch_test_rules(broken)
    assert code == 1, output
    assert "9.091%" in output


def test_chatwatch_loads_the_pack() -> None:
    from agent.alerting.rule_file import load_rule_files

    groups = load_rule_files([str(p) for p in PACK])
    assert sum(len(g.rules) for g in groups) == len(EXPECTED_ALERTS)


@pytest.mark.parametrize("rule", alerting_rules(), ids=lambda r: r["alert"])
def test_every_alert_has_severity_summary_description_and_runbook(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    annotations = rule["annotations"]
    assert annotations["summary"].strip()
    assert len(annotations["description"]) > len(annotations["summary"])
    url = annotations["runbook_url"]
    assert url.startswith(RUNBOOK_BASE), url
    doc, _, anchor = url.removeprefix(RUNBOOK_BASE).partition("#")
    assert (REPO / doc).is_file(), f"{rule['alert']}: runbook_url names {doc}, which is missing"
    assert anchor == rule["alert"].lower()
    assert anchor in anchors(REPO / doc), f"{doc} has no heading for #{anchor}"


@pytest.mark.parametrize("rule", alerting_rules(), ids=lambda r: r["alert"])
def test_every_alert_reads_at_most_15_minutes_of_history(rule: dict[str, Any]) -> None:
    """chatwatch keeps every series for the longest range any rule reads."""
    assert max(ranges(rule["expr"]), default=0) <= MAX_RANGE


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in PACK_TESTS:
        for case in yaml_docs(path)[0]["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert firing == EXPECTED_ALERTS
    assert quiet == EXPECTED_ALERTS


def _config_metrics(path: Path) -> list[dict[str, Any]]:
    """`metrics:` of a chatwatch config, or of the config inside a ConfigMap, with the
    definitions its `metrics_presets:` add (name, type and every label name)."""
    from agent.metrics.presets import PresetConfig, expand

    for doc in yaml_docs(path):
        config = (
            yaml.safe_load(doc["data"]["chatwatch.yaml"]) if doc.get("kind") == "ConfigMap" else doc
        )
        metrics = list(config["metrics"])
        priced = bool(config.get("pricing") or config.get("pricing_file"))
        for preset in config.get("metrics_presets", []):
            for m in expand(PresetConfig.model_validate(preset), priced=priced):
                labels = {*m.labels, *m.static_labels, *filter(None, [m.value_label])}
                metrics.append({"name": m.name, "type": m.type, "labels": dict.fromkeys(labels)})
        return metrics
    raise AssertionError(f"{path}: no config")


def _pack_selectors() -> list[tuple[str, str, set[str]]]:
    """(alert, metric name, label names its matchers use) for every selector in the pack."""
    out = []
    for rule in alerting_rules():
        for sel in selectors(rule["expr"]):
            labels = {m.name for m in sel.matchers.matchers}
            assert sel.name, f"{rule['alert']}: every selector names its metric"
            out.append((rule["alert"], sel.name, labels))
    return out


@pytest.mark.parametrize(
    "config",
    [K8S / "configmap.yaml", K8S / "node-logs" / "configmap.yaml"],
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_our_configs_define_every_metric_and_label_the_pack_reads(config: Path) -> None:
    metrics = _config_metrics(config)
    labels_of: dict[str, set[str]] = {}
    for m in metrics:
        names = [m["name"]] + (
            [m["name"] + s for s in ("_bucket", "_sum", "_count")]
            if m["type"] == "histogram"
            else []
        )
        for n in names:
            labels_of[n] = set(m.get("labels", {})) | ({"le"} if n.endswith("_bucket") else set())
    for alert, name, labels in _pack_selectors():
        assert name in labels_of, f"{alert} reads {name}, which {config.name} does not define"
        assert labels <= labels_of[name], f"{alert} matches on {labels - labels_of[name]} of {name}"


def test_the_example_config_defines_every_metric_the_pack_reads() -> None:
    example = REPO / "examples" / "chatwatch.yaml"
    if not example.exists():
        pytest.skip("examples/chatwatch.yaml is not written yet")
    defined = defined_names(_config_metrics(example))
    used = {name for rule in alerting_rules() for name in metric_names(rule["expr"])}
    assert used <= defined, f"not defined in examples/chatwatch.yaml: {sorted(used - defined)}"


def test_rule_windows_parse_as_durations() -> None:
    for rule in alerting_rules():
        if "for" in rule:
            assert parse_duration(rule["for"]) <= MAX_RANGE
