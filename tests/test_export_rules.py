"""`chatwatch export-rules` hands rules to a central Prometheus: the real `promtool check
rules` must accept the output, and chatwatch's extension keys must be gone."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agent.alerting.rule_file import RuleError, load_rule_files
from agent.commands.check import check_all
from agent.commands.export_rules import export_rules
from agent.config import load

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")

RULES = """\
groups:
  - name: chatbot
    interval: 30s
    rules:
      - record: route:chatbot_errors:rate5m
        expr: sum by (route) (rate(chatbot_errors_total[5m]))
        labels: {team: bots}
      - alert: ChatbotErrors
        expr: |
          route:chatbot_errors:rate5m
            > 1
        for: 2m
        keep_firing_for: 5m
        cooldown: 15m
        labels: {severity: page}
        annotations:
          summary: "{{ $labels.route }}: {{ $value | humanize }} errors/s"
          description: >-
            Errors on {{ $labels.route }} are at {{ printf "%.2f" $value }}/s.
  - name: latency
    rules:
      - alert: SlowReplies
        expr: histogram_quantile(0.99, sum by (le) (rate(chatbot_reply_seconds_bucket[5m]))) > 2
        annotations: {summary: "p99 {{ $value | humanizeDuration }}"}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "bot.yml").write_text(RULES)
    cfg = tmp_path / "chatwatch.yml"
    cfg.write_text(
        "sources: [{name: bot, paths: ['/var/log/bot/*.log']}]\nrule_files: ['rules/*.yml']\n"
    )
    return cfg


def chatwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args], capture_output=True, text=True, timeout=60
    )


def promtool_check(path: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )


@needs_promtool
def test_exported_rule_file_passes_promtool(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "exported.yml"
    result = chatwatch("export-rules", "-c", str(config), "-o", str(out))
    assert result.returncode == 0, result.stderr
    check = promtool_check(out)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 3 rules found" in check.stdout


@needs_promtool
def test_promtool_rejects_the_unexported_file_because_of_cooldown(config: Path) -> None:
    # why export exists: Prometheus does not know chatwatch's `cooldown`
    check = promtool_check(config.parent / "rules" / "bot.yml")
    assert check.returncode != 0
    assert "cooldown" in check.stdout + check.stderr


def test_export_removes_extension_keys_and_keeps_everything_else(config: Path) -> None:
    result = chatwatch("export-rules", "-c", str(config))
    assert result.returncode == 0, result.stderr
    exported = yaml.safe_load(result.stdout)
    original = yaml.safe_load(RULES)
    del original["groups"][0]["rules"][1]["cooldown"]
    assert exported == original
    assert "cooldown" not in result.stdout


@needs_promtool
def test_prometheusrule_resource_wraps_the_same_groups(config: Path, tmp_path: Path) -> None:
    result = chatwatch(
        "export-rules",
        "-c",
        str(config),
        "--format",
        "prometheusrule",
        "--name",
        "bot-rules",
        "--namespace",
        "chat",
    )
    assert result.returncode == 0, result.stderr
    resource = yaml.safe_load(result.stdout)
    assert resource["apiVersion"] == "monitoring.coreos.com/v1"
    assert resource["kind"] == "PrometheusRule"
    assert resource["metadata"]["name"] == "bot-rules"
    assert resource["metadata"]["namespace"] == "chat"
    spec = tmp_path / "spec.yml"
    spec.write_text(yaml.safe_dump(resource["spec"]))
    check = promtool_check(spec)
    assert check.returncode == 0, check.stdout + check.stderr


def test_export_of_bad_rules_fails_with_the_problems(config: Path) -> None:
    (config.parent / "rules" / "bad.yml").write_text(
        "groups: [{name: x, rules: [{alert: A, expr: 'rate(x)'}]}]"
    )
    result = chatwatch("export-rules", "-c", str(config))
    assert result.returncode == 1
    assert "bad.yml: group 'x': alerting rule 'A' (rules[0]): expr:" in result.stderr
    assert result.stdout == ""


def test_export_refuses_one_group_name_in_two_files(config: Path) -> None:
    (config.parent / "rules" / "more.yml").write_text(
        "groups: [{name: chatbot, rules: [{record: r, expr: vector(1)}]}]"
    )
    cfg = load(config)
    groups = load_rule_files(cfg.rule_files, base_dir=cfg.base_dir)
    with pytest.raises(RuleError) as info:
        export_rules(groups)
    assert "group 'chatbot': also defined in" in info.value.problems[0]


def test_chatwatch_check_reports_rule_problems(config: Path) -> None:
    (config.parent / "rules" / "bad.yml").write_text(
        "groups: [{name: x, rules: [{alert: A, expr: up, annotations: {s: '{{ $valu }}'}}]}]"
    )
    problems = check_all(str(config))
    assert len(problems) == 1
    assert (
        "bad.yml: group 'x': alerting rule 'A' (rules[0]): annotation 's': template:"
        in (problems[0])
    )
    result = chatwatch("check", "-c", str(config))
    assert result.returncode == 1
    assert "undefined variable '$valu'" in result.stderr


def test_check_rejects_a_recording_rule_named_like_a_configured_metric(tmp_path: Path) -> None:
    (tmp_path / "r.yml").write_text("groups: [{name: g, rules: [{record: bot_total, expr: up}]}]")
    cfg = tmp_path / "c.yml"
    cfg.write_text(
        "sources: [{name: bot, stdin: true}]\n"
        "metrics: [{name: bot_total, type: counter}]\nrule_files: [r.yml]\n"
    )
    problems = check_all(str(cfg))
    assert problems == [
        f"{tmp_path}/r.yml: group 'g': recording rule 'bot_total': the name is a metric "
        "defined in metrics:; choose another name"
    ]
