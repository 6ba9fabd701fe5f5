"""RuleManager over a real History, the real PromQL evaluator and a real Store.

Samples go into the history as the app puts them there (one snapshot per evaluation
interval); the tests look at what a user sees: /metrics text, the alerts handed to the
notifier, the /api/v1/alerts and /api/v1/rules data, and chatwatch's own metrics.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from agent.alerting.alert import Alert
from agent.alerting.api import rfc3339
from agent.alerting.group import RuleGroup
from agent.alerting.history import History
from agent.alerting.manager import LogNotifier, RuleManager
from agent.alerting.rule_file import parse_rule_file
from agent.metrics.exposition import collector
from agent.metrics.store import Store
from agent.support.selfmetrics import SelfMetrics

RULES = """
groups:
  - name: chatbot
    rules:
      - record: route:chatbot_errors:rate10s
        expr: sum by (route) (rate(chatbot_errors_total[10s]))
      - alert: ChatbotErrors
        expr: route:chatbot_errors:rate10s > 1
        for: 3s
        labels: {severity: page}
        annotations:
          summary: "{{ $labels.route }}: {{ $value | humanize }} errors/s"
"""

T0 = 1_700_000_000.0


def load(text: str = RULES) -> list[RuleGroup]:
    groups, problems = parse_rule_file(text, "rules/bot.yml")
    assert problems == []
    return groups


def errors_key(route: str) -> tuple[tuple[str, str], ...]:
    return (("__name__", "chatbot_errors_total"), ("route", route))


class Harness:
    def __init__(self, text: str = RULES) -> None:
        self.stats = SelfMetrics()
        self.store = Store(self.stats)
        self.history = History(retention=600)
        self.sent: list[tuple[float, list[Alert]]] = []
        self.manager = RuleManager(
            load(text),
            self.history,
            store=self.store,
            stats=self.stats,
            notify=lambda alerts, now: self.sent.append((now, alerts)),
            evaluation_interval=1.0,
        )
        self.count = 0.0

    def tick(self, now: float, errors_per_s: float) -> list[Alert]:
        """One app cycle: the counter grew, snapshot into history, rules evaluated."""
        self.count += errors_per_s
        self.history.append(now, [(errors_key("/chat"), self.count)])
        return self.manager.evaluate(now)

    def metrics_text(self) -> str:
        return collector(self.store, self.stats, runtime=False).text()

    def states(self) -> list[str]:
        return [a["state"] for a in self.manager.alerts_api()["alerts"]]


def test_alert_fires_after_for_and_resolves_when_errors_stop() -> None:
    h = Harness()
    for i in range(12):
        h.tick(T0 + i, 0.0)
    assert h.states() == []
    # errors start at 5/s: the 10 s rate crosses 1/s on the next evaluation
    timeline = []
    for i in range(12, 40):
        h.tick(T0 + i, 5.0)
        timeline.append((i, tuple(h.states())))
    first_pending = next(i for i, s in timeline if s == ("pending",))
    first_firing = next(i for i, s in timeline if s == ("firing",))
    # the 10 s rate grows by 0.5/s each second: 1.5 > 1 on the third evaluation
    assert first_pending == 14
    assert first_firing == first_pending + 3  # for: 3s
    now, alerts = h.sent[-1]
    assert now == T0 + 39
    [alert] = alerts
    assert alert.labels == {"alertname": "ChatbotErrors", "route": "/chat", "severity": "page"}
    assert alert.annotations == {"summary": "/chat: 5 errors/s"}
    assert (alert.starts_at, alert.ends_at) == (T0 + first_firing, None)
    # errors stop: the rate falls below 1/s after ~8 s, and the resolve is sent
    for i in range(40, 60):
        h.tick(T0 + i, 0.0)
    assert h.states() == []
    [resolved] = h.sent[-1][1]
    assert resolved.ends_at is not None and resolved.ends_at < T0 + 60


def test_recording_rule_and_alerts_series_appear_on_metrics() -> None:
    h = Harness()
    for i in range(25):
        h.tick(T0 + i, 0.0 if i < 12 else 5.0)
    text = h.metrics_text()
    assert 'route:chatbot_errors:rate10s{route="/chat"} 5.0' in text
    assert (
        'ALERTS{alertname="ChatbotErrors",alertstate="firing",route="/chat",severity="page"} 1.0'
        in text
    )
    assert (
        'ALERTS_FOR_STATE{alertname="ChatbotErrors",route="/chat",severity="page"} 1.700000014e+09'
        in text
    )
    # and later rules and queries can read the recorded series from the history
    from agent.alerting.history import Matcher

    name = Matcher("__name__", "=", "route:chatbot_errors:rate10s")
    [(_, points)] = h.history.select([name], T0 + 19, T0 + 21)
    assert [v for _, v in points] == [4.0, 4.5, 5.0]


def test_self_metrics_count_evaluations() -> None:
    h = Harness(
        "groups: [{name: g, rules: [{record: one, expr: vector(1)}, {alert: A, expr: one}]}]"
    )
    for i in range(3):
        h.tick(T0 + i, 0.0)
    text = h.metrics_text()
    group = 'rule_group="rules/bot.yml;g"'
    assert f"chatwatch_rule_evaluations_total{{{group}}} 6.0" in text
    assert f"chatwatch_rule_evaluation_failures_total{{{group}}}" not in text
    last = f"chatwatch_rule_group_last_evaluation_timestamp_seconds{{{group}}} 1.700000002e+09"
    assert last in text
    assert f"chatwatch_rule_evaluation_duration_seconds_count{{{group}}} 3.0" in text
    assert 'ALERTS{alertname="A",alertstate="firing"} 1.0' in text


def test_failing_rule_is_counted_and_reported_in_the_rules_api() -> None:
    h = Harness(
        """
groups:
  - name: g
    rules:
      - alert: SameLabels
        expr: sum by (route) (chatbot_errors_total) > -1 or vector(1)
        labels: {route: fixed}
"""
    )
    h.history.append(T0, [(errors_key("/a"), 1.0), (errors_key("/b"), 1.0)])
    h.manager.evaluate(T0)
    [rule] = h.manager.rules_api()["groups"][0]["rules"]
    assert rule["health"] == "err"
    assert "same labelset" in rule["lastError"]
    assert 'chatwatch_rule_evaluation_failures_total{rule_group="rules/bot.yml;g"} 1.0' in (
        h.metrics_text()
    )


def test_api_shapes_match_prometheus() -> None:
    h = Harness()
    for i in range(15):
        h.tick(T0 + i, 0.0 if i < 12 else 5.0)
    alerts = h.manager.alerts_api()
    assert alerts == {
        "alerts": [
            {
                "labels": {"alertname": "ChatbotErrors", "route": "/chat", "severity": "page"},
                "annotations": {"summary": "/chat: 1.5 errors/s"},
                "state": "pending",
                "activeAt": rfc3339(T0 + 14),
                "value": "1.5e+00",
            }
        ]
    }
    [group] = h.manager.rules_api()["groups"]
    assert (group["name"], group["file"], group["interval"], group["limit"]) == (
        "chatbot",
        "rules/bot.yml",
        1.0,
        0,
    )
    assert group["lastEvaluation"] == "2023-11-14T22:13:34Z"
    record, alert = group["rules"]
    assert record == {
        "name": "route:chatbot_errors:rate10s",
        "query": "sum by (route) (rate(chatbot_errors_total[10s]))",
        "health": "ok",
        "evaluationTime": record["evaluationTime"],
        "lastEvaluation": "2023-11-14T22:13:34Z",
        "type": "recording",
    }
    assert alert["type"] == "alerting"
    assert (alert["state"], alert["duration"], alert["keepFiringFor"]) == ("pending", 3.0, 0.0)
    assert alert["annotations"] == {
        "summary": "{{ $labels.route }}: {{ $value | humanize }} errors/s"
    }
    assert alert["alerts"] == alerts["alerts"]


def test_reload_keeps_state_of_unchanged_rules_and_resets_changed_ones() -> None:
    h = Harness()
    for i in range(20):
        h.tick(T0 + i, 0.0 if i < 12 else 5.0)
    assert h.states() == ["firing"]
    h.manager.reload(load())  # same rules: the alert keeps firing, since the same time
    h.tick(T0 + 20, 5.0)
    [alert] = h.manager.alerts_api()["alerts"]
    assert (alert["state"], alert["activeAt"]) == ("firing", rfc3339(T0 + 14))
    h.manager.reload(load(RULES.replace("for: 3s", "for: 3s\n        keep_firing_for: 1m")))
    h.tick(T0 + 21, 5.0)  # identity ignores for/keep_firing_for: state kept
    assert h.states() == ["firing"]
    h.manager.reload(load(RULES.replace("> 1", "> 2")))  # a new expression starts over
    h.tick(T0 + 22, 5.0)
    [alert] = h.manager.alerts_api()["alerts"]
    assert (alert["state"], alert["activeAt"]) == ("pending", rfc3339(T0 + 22))


def test_reload_removes_the_metrics_of_deleted_recording_rules() -> None:
    h = Harness()
    for i in range(3):
        h.tick(T0 + i, 1.0)
    assert "route:chatbot_errors:rate10s" in h.metrics_text()
    h.manager.reload(load("groups: [{name: chatbot, rules: [{alert: X, expr: vector(0) > 1}]}]"))
    h.tick(T0 + 3, 1.0)
    assert "route:chatbot_errors:rate10s" not in h.metrics_text()


def test_group_interval_is_respected() -> None:
    h = Harness(RULES.replace("- name: chatbot", "- name: chatbot\n    interval: 5s"))
    evaluated: list[float | None] = []
    for i in range(12):
        h.tick(T0 + i, 0.0)
        evaluated.append(h.manager.groups[0].last_evaluation)
    assert evaluated == [T0] * 5 + [T0 + 5] * 5 + [T0 + 10] * 2
    assert [now for now, _ in h.sent] == [T0, T0 + 5, T0 + 10]


def test_default_notifier_logs_firing_and_resolved_once(caplog: pytest.LogCaptureFixture) -> None:
    notifier = LogNotifier()
    firing = Alert(labels={"alertname": "A"}, annotations={"s": "x"}, starts_at=T0)
    resolved = Alert(labels={"alertname": "A"}, starts_at=T0, ends_at=T0 + 5)
    with caplog.at_level(logging.INFO, logger="chatwatch.alerts"):
        for _ in range(3):
            notifier([firing], T0)
        for _ in range(3):
            notifier([resolved], T0 + 5)
    records = [(r.getMessage(), getattr(r, "status", None)) for r in caplog.records]
    assert records == [("alert firing", "firing"), ("alert resolved", "resolved")]
    assert caplog.records[0].__dict__["labels"] == {"alertname": "A"}


def test_group_limit_drops_all_alerts_of_a_rule_over_it() -> None:
    h = Harness(
        """
groups:
  - name: g
    limit: 1
    rules:
      - alert: PerRoute
        expr: chatbot_errors_total > 0
"""
    )
    h.history.append(T0, [(errors_key("/a"), 1.0)])
    h.manager.evaluate(T0)
    assert h.states() == ["firing"]
    h.history.append(T0 + 1, [(errors_key("/a"), 1.0), (errors_key("/b"), 1.0)])
    h.manager.evaluate(T0 + 1)
    [rule] = h.manager.rules_api()["groups"][0]["rules"]
    assert (rule["health"], rule["lastError"]) == ("err", "exceeded limit of 1 with 2 alerts")
    assert h.states() == []


def test_reload_can_change_the_evaluation_interval() -> None:
    h = Harness()
    h.manager.reload(load(), evaluation_interval=5.0)
    assert h.manager.rules_api()["groups"][0]["interval"] == 5.0


def test_schedule_survives_a_stall_and_a_clock_going_back() -> None:
    h = Harness(RULES.replace("- name: chatbot", "- name: chatbot\n    interval: 5s"))
    h.tick(T0, 0.0)
    h.tick(T0 + 60, 0.0)  # the agent was stalled for a minute: evaluate now, once
    h.tick(T0 + 61, 0.0)
    assert [now for now, _ in h.sent] == [T0, T0 + 60]
    h.manager.evaluate(T0 - 3600)  # the wall clock was set back an hour
    assert h.sent[-1][0] == T0 - 3600


def test_api_values_are_formatted_as_prometheus_does() -> None:
    from agent.support.goformat import format_float

    got = [format_float(v) for v in (1.5, 5.0, 0.0, -0.000123, 1234567.891, float("nan"))]
    assert got == ["1.5e+00", "5e+00", "0e+00", "-1.23e-04", "1.234567891e+06", "NaN"]


def test_firing_alert_survives_a_restart_with_the_same_start(tmp_path: Path) -> None:
    h = Harness()
    for i in range(20):
        h.tick(T0 + i, 0.0 if i < 12 else 5.0)
    [before] = h.sent[-1][1]
    h.manager.save_state(tmp_path / "alerts.json", T0 + 19)

    restarted = Harness()  # a new process: new rules, empty history
    assert restarted.manager.restore_state(tmp_path / "alerts.json", T0 + 30) == 1
    restarted.count = 100.0
    for i in range(30, 42):
        restarted.tick(T0 + i, 5.0)
    [after] = restarted.sent[-1][1]
    assert after.ends_at is None
    assert after.starts_at == before.starts_at == T0 + 17  # the same alert, not a new one


def test_downtime_does_not_count_toward_for(tmp_path: Path) -> None:
    text = "groups: [{name: g, rules: [{alert: A, expr: vector(1), for: 10s}]}]"
    h = Harness(text)
    for i in range(5):
        h.tick(T0 + i, 0.0)
    h.manager.save_state(tmp_path / "alerts.json", T0 + 4)
    restarted = Harness(text)
    assert restarted.manager.restore_state(tmp_path / "alerts.json", T0 + 104) == 1
    restarted.tick(T0 + 104, 0.0)
    assert restarted.states() == ["pending"]  # 4 s of `for` done before the restart
    restarted.tick(T0 + 109, 0.0)
    assert restarted.states() == ["pending"]
    restarted.tick(T0 + 110, 0.0)
    assert restarted.states() == ["firing"]


def test_state_of_a_changed_rule_or_an_unreadable_file_is_not_restored(tmp_path: Path) -> None:
    h = Harness("groups: [{name: g, rules: [{alert: A, expr: vector(1), for: 1m}]}]")
    h.tick(T0, 0.0)
    path = tmp_path / "alerts.json"
    h.manager.save_state(path, T0)
    changed = Harness("groups: [{name: g, rules: [{alert: A, expr: vector(2), for: 1m}]}]")
    assert changed.manager.restore_state(path, T0 + 1) == 0
    path.write_text("{not json")
    assert Harness().manager.restore_state(path, T0) == 0
    assert Harness().manager.restore_state(tmp_path / "missing.json", T0) == 0


def test_restored_alert_resolves_once_the_history_has_refilled(tmp_path: Path) -> None:
    h = Harness()
    for i in range(20):
        h.tick(T0 + i, 0.0 if i < 12 else 5.0)
    h.manager.save_state(tmp_path / "alerts.json", T0 + 19)
    restarted = Harness()
    restarted.manager.restore_state(tmp_path / "alerts.json", T0 + 30)
    resolved_at = None
    for i in range(30, 400):
        for alert in restarted.tick(T0 + i, 0.0):  # the errors stopped while we were down
            if alert.ends_at is not None and resolved_at is None:
                resolved_at = alert.ends_at
    # held while the recording rule's 10 s window refills (a partial window would
    # understate the rate), then resolved at once: the recorded series has data again
    assert resolved_at == T0 + 30 + 10


def test_restored_alert_is_held_while_its_series_has_no_data_yet(tmp_path: Path) -> None:
    text = "groups: [{name: g, rules: [{alert: QueueLong, expr: queue_length > 10}]}]"
    key = (("__name__", "queue_length"),)
    h = Harness(text)
    h.history.append(T0, [(key, 50.0)])
    h.manager.evaluate(T0)
    h.manager.save_state(tmp_path / "alerts.json", T0)
    restarted = Harness(text)
    restarted.manager.restore_state(tmp_path / "alerts.json", T0 + 10)
    for i in range(10, 100):  # no log line about the queue since the restart
        restarted.history.append(T0 + i, [])
        restarted.manager.evaluate(T0 + i)
    assert restarted.states() == ["firing"]
    restarted.history.append(T0 + 100, [(key, 0.0)])  # the next line says it is empty
    [resolved] = restarted.manager.evaluate(T0 + 100)
    assert resolved.ends_at == T0 + 100
    assert restarted.states() == []
