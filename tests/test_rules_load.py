"""Rule files load as Prometheus reads them, and every mistake is reported at load time
with the file, the group, the rule and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.alerting.alerting_rule import AlertingRule
from agent.alerting.recording_rule import RecordingRule
from agent.alerting.rule_file import RuleError, load_rule_files, parse_rule_file

GOOD = """
groups:
  - name: chatbot
    interval: 5s
    limit: 10
    rules:
      - record: route:chatbot_errors:rate1m
        expr: sum by (route) (rate(chatbot_errors_total[1m]))
        labels: {team: bots}
      - alert: ChatbotErrors
        expr: route:chatbot_errors:rate1m > 1
        for: 30s
        keep_firing_for: 2m
        cooldown: 15m
        labels: {severity: page}
        annotations:
          summary: "{{ $labels.route }}: {{ $value | humanize }} errors/s"
  - name: second
    rules:
      - alert: NoTraffic
        expr: absent(chatbot_requests_total)
"""


def problems(text: str, file: str = "rules/bot.yml") -> list[str]:
    _, found = parse_rule_file(text, file)
    return found


def one_problem(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


def test_a_prometheus_rule_file_loads_with_every_field(tmp_path: Path) -> None:
    path = tmp_path / "bot.yml"
    path.write_text(GOOD)
    groups = load_rule_files([str(path)])
    assert [(g.name, g.interval, g.limit, g.file) for g in groups] == [
        ("chatbot", 5.0, 10, str(path)),
        ("second", None, 0, str(path)),
    ]
    record, alert = groups[0].rules
    assert isinstance(record, RecordingRule)
    assert (record.name, record.labels) == ("route:chatbot_errors:rate1m", {"team": "bots"})
    assert isinstance(alert, AlertingRule)
    assert (alert.hold, alert.keep_firing_for, alert.cooldown) == (30.0, 120.0, 900.0)
    assert alert.labels["severity"].text == "page"
    assert alert.expr_text == "route:chatbot_errors:rate1m > 1"
    assert "g0.expr=route%3Achatbot_errors%3Arate1m%20%3E%201" in alert.generator_url


def test_globs_relative_to_a_base_dir_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a.yml").write_text(GOOD)
    (tmp_path / "rules" / "b.yml").write_text("groups: []\n")
    groups = load_rule_files(["rules/*.yml", "none/*.yml"], base_dir=tmp_path)
    assert len(groups) == 2
    with pytest.raises(RuleError) as info:
        load_rule_files(["rules/missing.yml"], base_dir=tmp_path)
    assert info.value.problems == [f"{tmp_path}/rules/missing.yml: rule file not found"]


def test_all_problems_of_all_files_are_reported_together(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("groups: [{name: a, rules: [{alert: A}]}]")
    (tmp_path / "b.yml").write_text("groups: [{name: b, rules: [{record: b}]}]")
    with pytest.raises(RuleError) as info:
        load_rule_files([str(tmp_path / "*.yml")])
    reason = "expr: every rule needs an expression"
    assert info.value.problems == [
        f"{tmp_path}/a.yml: group 'a': alerting rule 'A' (rules[0]): {reason}",
        f"{tmp_path}/b.yml: group 'b': recording rule 'b' (rules[0]): {reason}",
    ]


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("{alert: A, expr: up, bogus: 1}", "alerting rule 'A' (rules[0]): unknown key 'bogus'"),
        ("{record: r, expr: up, for: 1m}", "recording rule 'r' (rules[0]): 'for' is not allowed"),
        (
            "{record: r, expr: up, annotations: {a: b}}",
            "recording rule 'r' (rules[0]): 'annotations' is not allowed",
        ),
        ("{record: r, expr: up, cooldown: 1m}", "'cooldown' is not allowed in a recording rule"),
        ("{record: 'a b', expr: up}", "record: 'a b' is not a valid metric name"),
        (
            "{alert: A, record: r, expr: up}",
            "rules[0]: only one of `record` and `alert` can be set",
        ),
        ("{expr: up}", "rules[0]: one of `record` or `alert` must be set"),
        ("{alert: A}", "alerting rule 'A' (rules[0]): expr: every rule needs an expression"),
        ("{alert: A, expr: up, for: 5}", "for: expected a duration such as 30s"),
        ("{alert: A, expr: up, keep_firing_for: 1x}", "keep_firing_for: expected a duration"),
        ("{alert: A, expr: up, cooldown: soon}", "cooldown: expected a duration"),
        ("{alert: A, expr: up, labels: {a-b: c}}", "labels: 'a-b' is not a valid label name"),
        ("{alert: A, expr: up, labels: {__name__: c}}", "'__name__' is not a valid label name"),
        ("{alert: A, expr: up, annotations: {a-b: c}}", "'a-b' is not a valid annotation name"),
        ("{alert: A, expr: up, labels: {a: [1]}}", "labels.a: expected a string value"),
        ("{alert: A, expr: 'sum(up'}", "expr: invalid PromQL expression"),
        (
            "{alert: A, expr: 'sort_by_label(up, \"job\") > 0'}",
            "expr: function sort_by_label() is not supported",
        ),
        (
            "{alert: A, expr: up, annotations: {summary: '{{ humanise $value }}'}}",
            "annotation 'summary': template: line 1, column 4: function 'humanise' not defined",
        ),
        (
            "{alert: A, expr: up, annotations: {summary: '{{ $labls.x }}'}}",
            "annotation 'summary': template: line 1, column 4: undefined variable '$labls'",
        ),
        (
            "{alert: A, expr: up, labels: {team: '{{ $labels.x'}}",
            "label 'team': template: line 1, column 1: unclosed action",
        ),
        ("{alert: A, expr: up, annotations: {s: '{{ .Valu }}'}}", "can't evaluate field Valu"),
    ],
)
def test_each_rule_problem_names_file_group_rule_and_reason(rule: str, reason: str) -> None:
    problem = one_problem(f"groups: [{{name: g, rules: [{rule}]}}]")
    assert problem.startswith("rules/bot.yml: group 'g': ")
    assert reason in problem


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("groups: [{name: g, bogus: 1}]", "group 'g': unknown key 'bogus'"),
        ("groups: [{rules: []}]", "groups[0]: name: every group needs a non-empty name"),
        (
            "groups: [{name: g}, {name: g}]",
            "group 'g': the group name is repeated in the same file",
        ),
        ("groups: [{name: g, interval: 10}]", "group 'g': interval: expected a duration"),
        ("groups: [{name: g, interval: 0s}]", "interval: the interval must be more than 0"),
        ("groups: [{name: g, limit: -1}]", "group 'g': limit: expected a whole number >= 0"),
        ("groups: [{name: g, rules: {a: 1}}]", "group 'g': rules: expected a list of rules"),
        ("groups: {name: g}", "groups: expected a list of groups"),
        ("grups: []", "unknown key 'grups'"),
        ("groups: [{name: g, rules: [{alert: A, expr: up, expr: down}]}]", "already defined"),
        ("groups:\n  - name: g\n   rules: []", "line 3, column 4: not valid YAML"),
        ("- a\n- b", "expected a mapping with a `groups:` list"),
    ],
)
def test_each_file_or_group_problem_is_named(text: str, reason: str) -> None:
    problem = one_problem(text)
    assert problem.startswith("rules/bot.yml: ")
    assert reason in problem


def test_an_empty_file_has_no_groups() -> None:
    assert parse_rule_file("", "x.yml") == ([], [])


def test_expr_given_as_a_number_is_read_as_its_text() -> None:
    groups, found = parse_rule_file("groups: [{name: g, rules: [{record: one, expr: 1}]}]", "x")
    assert found == []
    assert groups[0].rules[0].expr_text == "1"
