"""Metric definitions a user gets wrong are rejected at load, naming file and key path."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
import yaml

from agent.config import ConfigError, loads


def problems(*metrics: Mapping[str, object]) -> list[str]:
    text = yaml.safe_dump({"sources": [{"name": "bot", "stdin": True}], "metrics": list(metrics)})
    try:
        loads(text, "chatwatch.yaml")
    except ConfigError as exc:
        return exc.problems
    return []


OK_COUNTER = {"name": "ok_total", "type": "counter"}


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        (
            {"name": "lat_seconds", "type": "histogram", "value": "ms", "buckets": [0.1, 1, 0.5]},
            "metrics[1].buckets: bucket bounds must strictly increase: 1 is followed by 0.5",
        ),
        (
            {"name": "lat_seconds", "type": "histogram"},
            "metrics[1].value: a histogram needs `value`",
        ),
        (
            {"name": "errors", "type": "counter"},
            "metrics[1].name: counter names end in _total",
        ),
        (
            {"name": "bad-name_total", "type": "counter"},
            "metrics[1].name: not a valid Prometheus metric name",
        ),
        (
            {"name": "job:errors:rate5m", "type": "gauge", "value": "v"},
            "metrics[1].name: colons in metric names are reserved for recording rules",
        ),
        (
            {"name": "chatwatch_mine_total", "type": "counter"},
            "metrics[1].name: names starting with chatwatch_ are reserved",
        ),
        (
            {"name": "x_total", "type": "counter", "labels": {"status-code": "status"}},
            "metrics[1].labels.status-code: not a valid label name",
        ),
        (
            {"name": "x_total", "type": "counter", "labels": {"__meta": "a"}},
            "metrics[1].labels.__meta: label names starting with __ are reserved",
        ),
        (
            {"name": "x_seconds", "type": "histogram", "value": "v", "labels": {"le": "a"}},
            "metrics[1].labels.le: `le` is the bucket label of histograms",
        ),
        (
            {
                "name": "x_total",
                "type": "counter",
                "labels": {"a": "a"},
                "static_labels": {"a": "b"},
            },
            "metrics[1].static_labels.a: label 'a' is also set in labels",
        ),
        (
            {
                "name": "x_total",
                "type": "counter",
                "labels": {"source": "s"},
                "origin_labels": ["source"],
            },
            "metrics[1].origin_labels[0]: label 'source' is also set in labels",
        ),
        (
            {"name": "x_total", "type": "counter", "origin_labels": ["host"]},
            "metrics[1].origin_labels[0]: expected one of 'source' or 'path'",
        ),
        (
            {"name": "x_total", "type": "counter", "match": {"status": {"regex": "5(.."}}},
            "metrics[1].match.status.regex: not a valid regular expression",
        ),
        (
            {"name": "x_total", "type": "counter", "match": {"status": {"above": 3}}},
            "metrics[1].match.status.above: unknown operator; expected one of in, not, regex",
        ),
        (
            {"name": "x_total", "type": "counter", "match": {"status": {"gt": "lots"}}},
            "metrics[1].match.status.gt: expected a number",
        ),
        (
            {"name": "x_total", "type": "counter", "match": {"status": [500, 503]}},
            "metrics[1].match.status: a list is not a value to compare with; use {in: [...]}",
        ),
        (
            {"name": "x_total", "type": "counter", "match": {"status": {"in": []}}},
            "metrics[1].match.status.in: expected a non-empty list of values",
        ),
        (
            {"name": "x_total", "type": "counter", "match": {"a..b": 1}},
            "metrics[1].match.a..b: not a field path",
        ),
        (
            {
                "name": "x_total",
                "type": "counter",
                "labels": {"cls": {"field": "status", "regex": "(\\d)..", "replacement": "$1xx"}},
            },
            "metrics[1].labels.cls.replacement: refers to group '1xx', which the regex does not "
            "have (write ${1}xx for group 1)",
        ),
        (
            {
                "name": "x_total",
                "type": "counter",
                "labels": {"cls": {"field": "status", "regex": "(\\d)..", "replacement": "$2"}},
            },
            "metrics[1].labels.cls.replacement: refers to group $2 but the regex has 1 group(s)",
        ),
        (
            {"name": "x_total", "type": "counter", "labels": {"cls": {"field": "s", "regex": "("}}},
            "metrics[1].labels.cls.regex: not a valid regular expression",
        ),
        (
            {
                "name": "x_total",
                "type": "counter",
                "labels": {"cls": {"field": "s", "reggex": "a"}},
            },
            "metrics[1].labels.cls.reggex: unknown key",
        ),
        (
            {"name": "x_total", "type": "counter", "labels": {"cls": 5}},
            "metrics[1].labels.cls: expected a field path or {field, regex, replacement, default}",
        ),
        (
            {"name": "sessions", "type": "gauge", "action": {"start": "inc", "stop": "decrement"}},
            "metrics[1].action.stop: unknown action 'decrement'; expected one of set, inc, dec",
        ),
        (
            {
                "name": "sessions",
                "type": "gauge",
                "match": {"event": "s", "kind": "k"},
                "action": {"start": "inc", "stop": "dec"},
            },
            "metrics[1].action_field: an action mapping needs `action_field`",
        ),
        (
            {"name": "sessions", "type": "gauge"},
            "metrics[1].action: a gauge needs `value` (to set it) or an `action`",
        ),
        (
            {"name": "sessions", "type": "gauge", "action": "set"},
            "metrics[1].value: action `set` needs `value`",
        ),
        (
            {"name": "x_total", "type": "counter", "action": "inc"},
            "metrics[1].action: `action` applies to gauges only",
        ),
        (
            {"name": "x_total", "type": "counter", "buckets": [1]},
            "metrics[1].buckets: `buckets` applies to histograms only",
        ),
        (
            {"name": "x_total", "type": "counter", "max_series": 0},
            "metrics[1].max_series: Input should be greater than 0",
        ),
        (
            {"name": "x_total", "type": "counter", "expire_after": "soon"},
            "metrics[1].expire_after: expected a duration",
        ),
        (
            {"name": "x_total", "type": "summary"},
            "metrics[1].type: expected one of 'counter', 'gauge' or 'histogram'",
        ),
    ],
)
def test_invalid_definitions_are_reported_with_their_key_path(
    metric: dict[str, object], expected: str
) -> None:
    found = problems(OK_COUNTER, metric)
    assert any(p.startswith("chatwatch.yaml: " + expected) for p in found), found


def test_every_problem_is_reported_not_only_the_first() -> None:
    found = problems(
        {"name": "a_seconds", "type": "histogram", "buckets": [2, 1]},
        {"name": "b", "type": "counter", "labels": {"x-y": "x"}},
    )
    assert found == [
        "chatwatch.yaml: metrics[0].buckets: bucket bounds must strictly increase: "
        "2 is followed by 1",
        "chatwatch.yaml: metrics[1].labels.x-y: not a valid label name: 'x-y'",
        "chatwatch.yaml: metrics[1].name: counter names end in _total (Prometheus convention, "
        "required by OpenMetrics): use b_total",
    ]


def test_a_full_valid_definition_set_loads() -> None:
    assert (
        problems(
            OK_COUNTER,
            {
                "name": "chatbot_active_sessions",
                "type": "gauge",
                "match": {"event": {"in": ["session_started", "session_ended"]}},
                "action": {"session_started": "inc", "session_ended": "dec"},
                "max_series": 10,
                "expire_after": "15m",
            },
            {
                "name": "chatbot_http_request_duration_seconds",
                "type": "histogram",
                "match": {"event": "http_request", "status": {"gte": 200, "lt": 600}},
                "value": "duration_ms",
                "scale": 0.001,
                "buckets": [0.05, 0.1, 1, float("inf")],
                "labels": {
                    "route": "route",
                    "status_class": {
                        "field": "status",
                        "regex": "(?P<d>\\d)\\d\\d",
                        # `${...}` expands environment variables; `$$` escapes it.
                        "replacement": "$${d}xx",
                    },
                },
                "static_labels": {"app": "bot"},
                "origin_labels": ["source", "path"],
            },
        )
        == []
    )
