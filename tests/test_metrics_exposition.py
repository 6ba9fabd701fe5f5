"""The text a scraper gets: valid for promtool, for OpenMetrics, named as configured."""

from __future__ import annotations

import platform
from typing import Any

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

from agent import __version__
from bench.workload import METRICS
from tests.metrics_support import Pipeline, promtool_check

EVENTS: list[dict[str, Any]] = [
    {"event": "http_request", "level": "info", "route": "/api/chat", "status_code": 200,
     "duration_ms": 120.5},
    {"event": "http_request", "level": "error", "route": "/api/chat", "status_code": 503,
     "duration_ms": 3000},
    {"event": "llm_call", "level": "info", "model": "gpt-4o", "cost_usd": 0.002,
     "usage": {"prompt_tokens": 100, "completion_tokens": 20}, "latency_ms": 800},
    {"event": "conversation_ended", "level": "info", "category": "billing",
     "resolution": "resolved"},
    {"event": "auth_failed", "level": "warning", "reason": 'bad "token"\nsecond line'},
]  # fmt: skip


def reference_pipeline() -> Pipeline:
    p = Pipeline(
        *METRICS,
        {
            "name": "chatbot_active_sessions",
            "type": "gauge",
            "help": "Sessions open now.",
            "match": {"event": {"in": ["session_started", "session_ended"]}},
            "action": {"session_started": "inc", "session_ended": "dec"},
        },
        {"name": "chatbot_unlabelled_total", "type": "counter", "labels": {"x": "missing"}},
    )
    p.feed(*EVENTS, {"event": "session_started"})
    p.feed({"event": "http_request", "duration_ms": "not a number"})
    p.extractor.errors.inc(("chatbot_x", "internal"), 0)  # an error family with a zero sample
    p.store.set_family("job:errors:rate5m", "gauge", "Recorded.", [({"route": "/a"}, 0.5)])
    p.store.set_family("ALERTS", "gauge", "", [({"alertname": "A", "alertstate": "firing"}, 1)])
    return p


def test_promtool_check_metrics_passes_on_the_text_format() -> None:
    text = reference_pipeline().text()
    # Recording-rule names (`level:metric:operation`) contain colons by convention, which
    # promtool's linter reports as a style problem; every other line must pass cleanly.
    result = promtool_check(text)
    assert result.returncode == 3, result.stdout + result.stderr + "\n" + text
    assert result.stderr.strip() == "job:errors:rate5m metric names should not contain ':'"
    without_recorded = "\n".join(line for line in text.splitlines() if "job:errors" not in line)
    result = promtool_check(without_recorded + "\n")
    assert result.returncode == 0, result.stdout + result.stderr + "\n" + text
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


def test_promtool_catches_what_we_guard_against() -> None:
    # The check is real: a counter without _total is reported.
    result = promtool_check("# HELP x X.\n# TYPE x counter\nx 1\n")
    assert result.returncode != 0
    assert "_total" in result.stdout + result.stderr


def test_counter_names_keep_total_in_text_and_openmetrics() -> None:
    p = reference_pipeline()
    text = p.text()
    assert "# TYPE chatbot_http_requests_total counter" in text
    assert 'chatbot_http_requests_total{route="/api/chat",status_code="200"} 1.0' in text
    assert "_total_total" not in text
    om = p.openmetrics()
    assert om.endswith("# EOF\n")
    assert "# TYPE chatbot_http_requests counter" in om
    assert 'chatbot_http_requests_total{route="/api/chat",status_code="200"} 1.0' in om
    families = {f.name: f for f in parse_om(om)}
    assert families["chatbot_http_requests"].type == "counter"
    assert families["chatbot_http_request_duration_seconds"].type == "histogram"
    assert families["chatbot_active_sessions"].type == "gauge"
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    key = ("chatbot_http_request_duration_seconds_bucket", (("le", "+Inf"), ("route", "/api/chat")))
    assert samples[key] == 2.0
    assert samples[("chatbot_auth_failures_total", (("reason", 'bad "token"\nsecond line'),))] == 1


def test_help_texts_build_info_and_self_metrics_are_exposed() -> None:
    p = reference_pipeline()
    text = p.text()
    assert "# HELP chatbot_http_requests_total HTTP requests handled by the chatbot." in text
    assert "# HELP chatbot_unlabelled_total chatbot_unlabelled_total: a counter" in text
    build = p.value("chatwatch_build_info", version=__version__, python=platform.python_version())
    assert build == 1.0
    assert p.value("chatwatch_series", metric="chatbot_http_requests_total") == 3.0
    reason = {"metric": "chatbot_http_request_duration_seconds", "reason": "not_a_number"}
    assert p.value("chatwatch_extract_errors_total", **reason) == 1.0
    assert p.value("chatbot_active_sessions") == 1.0
    assert p.value("job:errors:rate5m", route="/a") == 0.5


def test_an_empty_store_still_exposes_valid_text() -> None:
    p = Pipeline()
    result = promtool_check(p.text())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "chatwatch_build_info" in p.text()
