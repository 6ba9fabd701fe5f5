"""PagerDuty against a stand-in of its Events API v2: one incident per alert group, opened
by `trigger` and closed by `resolve` with the same dedup_key; throttling delays, an
invalid event is dropped, and the routing key is never logged."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.support.selfmetrics import SelfMetrics
from tests.notify_support import alerting, fire, metric, resolve, running, settled, wait_for
from tests.oncall_servers import PagerDutyServer, agent_log_text

pytestmark = pytest.mark.timeout(60)

ROUTING_KEY = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY32"


@pytest.fixture
def pagerduty() -> Iterator[PagerDutyServer]:
    with PagerDutyServer() as server:
        assert isinstance(server, PagerDutyServer)
        yield server


def config(url: str, key: str = ROUTING_KEY, extra: str = "") -> str:
    return f"""
route: {{receiver: oncall, group_by: [alertname], group_interval: 200ms}}
receivers:
  - name: oncall
    pagerduty_configs:
      - routing_key: {key}
        url: {url}
        {extra}
delivery: {{initial_backoff: 300ms, max_backoff: 1s}}
"""


async def test_pagerduty_trigger_then_resolve_closes_the_same_incident(
    tmp_path: Path, pagerduty: PagerDutyServer, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = alerting(
        config(
            pagerduty.url,
            extra="""severity: critical
        class: llm
        component: chatbot
        group: support
        details: {runbook: "https://runbooks.example.org/llm"}
        links: [{href: "https://grafana.example.org/d/llm", text: Dashboard}, {text: no href}]
        images: [{src: "https://grafana.example.org/llm.png", alt: errors}]""",
        )
    )
    now = time.time()
    alert = fire("LLMErrors", now - 5, provider="openai", severity="critical")
    with caplog.at_level(logging.DEBUG):
        async with running(cfg, tmp_path) as n:
            n.send([alert], now)
            await wait_for(lambda: pagerduty.accepted, what="trigger event")
            n.send([resolve(alert, now + 1)], now + 1)
            await wait_for(lambda: len(pagerduty.accepted) >= 2, what="resolve event")
            assert await settled(n) == []

    assert pagerduty.problems == []
    trigger, resolved = pagerduty.accepted
    group_key = '{}:{alertname="LLMErrors"}'
    dedup = hashlib.sha256(group_key.encode()).hexdigest()
    alert_list = (
        "Labels:\n"
        " - alertname = LLMErrors\n"
        " - provider = openai\n"
        " - severity = critical\n"
        "Annotations:\n"
        f" - summary = {alert.annotations['summary']}\n"
        "Source: http://chatwatch.test:9317/graph\n"
    )
    assert trigger == {
        "routing_key": ROUTING_KEY,
        "dedup_key": dedup,
        "event_action": "trigger",
        "payload": {
            "summary": "[FIRING:1] LLMErrors (openai critical)",
            "source": "Alertmanager",
            "severity": "critical",
            "class": "llm",
            "component": "chatbot",
            "group": "support",
            "custom_details": {
                "firing": alert_list,
                "resolved": "",
                "num_firing": "1",
                "num_resolved": "0",
                "runbook": "https://runbooks.example.org/llm",
            },
        },
        "client": "Alertmanager",
        "client_url": "http://chatwatch.test:9317/#/alerts?receiver=oncall",
        "images": [{"src": "https://grafana.example.org/llm.png", "alt": "errors", "href": ""}],
        "links": [{"href": "https://grafana.example.org/d/llm", "text": "Dashboard"}],
    }
    assert resolved["event_action"] == "resolve"
    assert resolved["dedup_key"] == dedup
    assert resolved["payload"]["summary"] == "[RESOLVED] LLMErrors (openai critical)"
    assert resolved["payload"]["custom_details"]["resolved"] == alert_list
    assert resolved["payload"]["custom_details"]["num_resolved"] == "1"
    assert pagerduty.incidents == {dedup: "resolved"}
    assert ROUTING_KEY not in agent_log_text(caplog.records)


async def test_pagerduty_throttled_event_is_retried_not_dropped(
    tmp_path: Path, pagerduty: PagerDutyServer
) -> None:
    pagerduty.rate_limit(2)
    stats = SelfMetrics()
    now = time.time()
    async with running(alerting(config(pagerduty.url)), tmp_path, stats) as n:
        n.send([fire("ChatErrors", now)], now)
        await wait_for(lambda: pagerduty.accepted, what="event accepted after throttling")
        assert await settled(n) == []
    assert [r.body for r in pagerduty.requests[:2]] == [pagerduty.requests[2].body] * 2
    assert len(pagerduty.requests) == 3
    assert (
        metric(stats, "chatwatch_notifications_failed_total", "oncall", "pagerduty", "rate_limited")
        == 2
    )
    assert metric(stats, "chatwatch_notifications_total", "oncall", "pagerduty") == 3


async def test_pagerduty_invalid_event_is_not_retried_and_the_key_is_not_logged(
    tmp_path: Path, pagerduty: PagerDutyServer, caplog: pytest.LogCaptureFixture
) -> None:
    short_key = "sh0rtkey-not-32-characters"
    stats = SelfMetrics()
    now = time.time()
    with caplog.at_level(logging.INFO, logger="chatwatch.notify"):
        async with running(alerting(config(pagerduty.url, short_key)), tmp_path, stats) as n:
            n.send([fire("ChatErrors", now)], now)
            await wait_for(
                lambda: metric(
                    stats,
                    "chatwatch_notifications_failed_total",
                    "oncall",
                    "pagerduty",
                    "client_error",
                ),
                what="rejection counted",
            )
            assert await settled(n) == []
    assert len(pagerduty.requests) == 1
    assert any("routing_key" in p for p in pagerduty.problems)
    rejected = [r for r in caplog.records if "not retrying" in r.getMessage()]
    assert len(rejected) == 1
    error = rejected[0].__dict__["error"]
    assert error.startswith("rejected with 400: Event object is invalid: routing_key")
    assert short_key not in agent_log_text(caplog.records)


async def test_pagerduty_summary_is_cut_at_1024_characters(
    tmp_path: Path, pagerduty: PagerDutyServer
) -> None:
    now = time.time()
    alert = fire("LongLabels", now, conversation="x" * 2000)
    async with running(alerting(config(pagerduty.url)), tmp_path) as n:
        n.send([alert], now)
        await wait_for(lambda: pagerduty.accepted, what="trigger event")
    summary = pagerduty.accepted[0]["payload"]["summary"]
    assert len(summary) == 1024
    assert summary.startswith("[FIRING:1] LongLabels (xxx") and summary.endswith("x…")
