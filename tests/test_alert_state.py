"""The alert state machine, scenario by scenario, with vectors built by hand.

Each test feeds the rule what its expression returned at each evaluation time and checks
what a user would see: the alert's state, its labels and annotations, and what is handed
to notification (firing alerts and recent resolves, as Prometheus sends Alertmanager).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from agent.alerting.alerting_rule import RESOLVED_RETENTION, AlertingRule
from agent.alerting.promql.values import EvalError
from agent.alerting.template.exec import Template


@dataclass
class S:
    labels: dict[str, str]
    value: float


ERR = {"__name__": "chatbot_errors", "route": "/chat"}


def make_rule(**kw: object) -> AlertingRule:
    labels = {k: Template(v) for k, v in dict(kw.pop("labels", {})).items()}  # type: ignore[call-overload]
    annotations = {k: Template(v) for k, v in dict(kw.pop("annotations", {})).items()}  # type: ignore[call-overload]
    return AlertingRule(
        name="ChatbotErrors",
        expr_text="chatbot_errors > 1",
        expr=None,
        labels=labels,
        annotations=annotations,
        **kw,  # type: ignore[arg-type]
    )


def states(rule: AlertingRule) -> list[str]:
    return [a.state for a in rule.active_alerts()]


def test_without_for_an_alert_fires_on_the_first_evaluation() -> None:
    rule = make_rule()
    changes = rule.apply([S(ERR, 5.0)], now=100.0)
    assert states(rule) == ["firing"]
    assert [(c.old, c.new) for c in changes] == [("inactive", "pending"), ("pending", "firing")]
    [sent] = rule.alerts_to_send()
    assert sent.labels == {"alertname": "ChatbotErrors", "route": "/chat"}
    assert (sent.starts_at, sent.ends_at) == (100.0, None)


def test_pending_until_for_has_passed_then_firing() -> None:
    rule = make_rule(hold=30.0)
    for t in (0.0, 10.0, 29.0):
        rule.apply([S(ERR, 5.0)], now=t)
        assert states(rule) == ["pending"]
        assert rule.alerts_to_send() == []  # pending alerts are not sent
    rule.apply([S(ERR, 5.0)], now=30.0)
    assert states(rule) == ["firing"]
    [alert] = rule.active_alerts()
    assert (alert.active_at, alert.fired_at) == (0.0, 30.0)
    assert rule.alerts_to_send()[0].starts_at == 30.0


def test_pending_alert_that_disappears_is_forgotten() -> None:
    rule = make_rule(hold=30.0)
    rule.apply([S(ERR, 5.0)], now=0.0)
    rule.apply([], now=10.0)
    assert rule.active == {}
    assert rule.alerts_to_send() == []
    # it comes back: `for` starts over
    rule.apply([S(ERR, 5.0)], now=20.0)
    rule.apply([S(ERR, 5.0)], now=45.0)
    assert states(rule) == ["pending"]
    rule.apply([S(ERR, 5.0)], now=50.0)
    assert states(rule) == ["firing"]


def test_resolved_alert_is_sent_for_15_minutes_then_forgotten() -> None:
    rule = make_rule()
    rule.apply([S(ERR, 5.0)], now=0.0)
    changes = rule.apply([], now=60.0)
    assert [(c.old, c.new) for c in changes] == [("firing", "resolved")]
    assert rule.active_alerts() == []
    [sent] = rule.alerts_to_send()
    assert (sent.starts_at, sent.ends_at) == (0.0, 60.0)
    rule.apply([], now=60.0 + RESOLVED_RETENTION)
    assert [a.ends_at for a in rule.alerts_to_send()] == [60.0]  # still within retention
    rule.apply([], now=60.0 + RESOLVED_RETENTION + 1)
    assert rule.alerts_to_send() == []
    assert rule.active == {}


def test_resolved_alert_that_comes_back_starts_over_as_pending() -> None:
    rule = make_rule(hold=10.0)
    rule.apply([S(ERR, 5.0)], now=0.0)
    rule.apply([S(ERR, 5.0)], now=10.0)
    rule.apply([], now=20.0)
    rule.apply([S(ERR, 5.0)], now=30.0)
    [alert] = rule.active_alerts()
    assert (alert.state, alert.active_at, alert.resolved_at) == ("pending", 30.0, None)
    assert rule.alerts_to_send() == []  # the resolved one was replaced


def test_flapping_is_absorbed_by_keep_firing_for() -> None:
    rule = make_rule(keep_firing_for=60.0)
    rule.apply([S(ERR, 5.0)], now=0.0)
    # flaps: gone for 30 s, back, gone again
    for t in (10.0, 20.0, 30.0):
        assert rule.apply([], now=t) == []
        assert states(rule) == ["firing"]
    rule.apply([S(ERR, 5.0)], now=40.0)
    rule.apply([], now=50.0)  # keep_firing_since restarts here
    rule.apply([], now=109.0)
    assert states(rule) == ["firing"]
    assert [a.ends_at for a in rule.alerts_to_send()] == [None]
    changes = rule.apply([], now=110.0)
    assert [(c.old, c.new) for c in changes] == [("firing", "resolved")]
    assert [a.ends_at for a in rule.alerts_to_send()] == [110.0]


def test_without_keep_firing_for_a_flap_resolves_and_fires_again() -> None:
    rule = make_rule()
    rule.apply([S(ERR, 5.0)], now=0.0)
    rule.apply([], now=1.0)
    rule.apply([S(ERR, 5.0)], now=2.0)
    [sent] = rule.alerts_to_send()
    assert (sent.starts_at, sent.ends_at) == (2.0, None)


def test_keep_firing_for_does_not_hold_pending_alerts() -> None:
    rule = make_rule(hold=30.0, keep_firing_for=60.0)
    rule.apply([S(ERR, 5.0)], now=0.0)
    rule.apply([], now=1.0)
    assert rule.active == {}


def test_labels_are_series_labels_plus_rule_labels_plus_alertname() -> None:
    rule = make_rule(
        labels={"severity": "page", "route": "overridden-{{ $labels.route }}", "empty": ""}
    )
    rule.apply([S({"__name__": "x", "route": "/a", "instance": "i1"}, 2.0)], now=0.0)
    [alert] = rule.active_alerts()
    assert alert.labels == {
        "alertname": "ChatbotErrors",
        "instance": "i1",
        "route": "overridden-/a",
        "severity": "page",
    }


def test_annotations_are_rendered_per_alert_with_the_current_value() -> None:
    rule = make_rule(
        hold=10.0,
        annotations={"summary": "{{ $labels.route }}: {{ $value | humanize }} errors/s"},
    )
    rule.apply([S({"route": "/a"}, 1500.0), S({"route": "/b"}, 0.25)], now=0.0)
    got = {a.labels["route"]: a.annotations["summary"] for a in rule.active_alerts()}
    assert got == {"/a": "/a: 1.5k errors/s", "/b": "/b: 250m errors/s"}
    rule.apply([S({"route": "/a"}, 3.0)], now=5.0)  # value and annotation follow the data
    [alert] = rule.active_alerts()
    assert (alert.value, alert.annotations["summary"]) == (3.0, "/a: 3 errors/s")
    assert alert.active_at == 0.0


def test_template_that_fails_on_the_data_does_not_give_an_empty_message() -> None:
    rule = make_rule(annotations={"summary": "{{ $labels.route | humanize }}"})
    rule.apply([S({"route": "/a"}, 1.0)], now=0.0)
    summary = rule.active_alerts()[0].annotations["summary"]
    assert summary.startswith("<error expanding template: error calling humanize")


def test_two_series_mapping_to_the_same_alert_is_an_error() -> None:
    rule = make_rule(labels={"route": "all"})
    with pytest.raises(EvalError, match="same labelset"):
        rule.apply([S({"route": "/a"}, 1.0), S({"route": "/b"}, 1.0)], now=0.0)


def test_alerts_and_for_state_series() -> None:
    rule = make_rule(hold=10.0)
    rule.apply([S(ERR, 5.0)], now=100.25)
    assert rule.alerts_series() == [
        ({"alertname": "ChatbotErrors", "route": "/chat", "alertstate": "pending"}, 1.0)
    ]
    assert rule.for_state_series() == [({"alertname": "ChatbotErrors", "route": "/chat"}, 100.0)]
    rule.apply([S(ERR, 5.0)], now=110.25)
    assert rule.alerts_series()[0][0]["alertstate"] == "firing"
    rule.apply([], now=120.0)
    assert rule.alerts_series() == [] and rule.for_state_series() == []


def test_cooldown_and_generator_url_travel_with_the_alert() -> None:
    rule = make_rule(cooldown=900.0, generator_url="http://cw/graph?g0.expr=x")
    rule.apply([S(ERR, 5.0)], now=0.0)
    [sent] = rule.alerts_to_send()
    assert (sent.cooldown, sent.generator_url) == (900.0, "http://cw/graph?g0.expr=x")


def test_state_is_kept_by_a_replacement_rule() -> None:
    old = make_rule(hold=30.0)
    old.apply([S(ERR, 5.0)], now=0.0)
    new = make_rule(hold=30.0)
    assert new.identity == old.identity
    new.take_state_from(old)
    new.apply([S(ERR, 5.0)], now=30.0)
    assert states(new) == ["firing"]
    assert new.active_alerts()[0].active_at == 0.0


def test_rule_state_is_the_most_severe_alert() -> None:
    rule = make_rule(hold=10.0)
    assert rule.state() == "inactive"
    rule.apply([S({"r": "a"}, 1.0)], now=0.0)
    assert rule.state() == "pending"
    rule.apply([S({"r": "a"}, 1.0), S({"r": "b"}, 1.0)], now=10.0)
    assert sorted(states(rule)) == ["firing", "pending"]
    assert rule.state() == "firing"
