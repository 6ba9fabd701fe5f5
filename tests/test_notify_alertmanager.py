"""Forwarding to a real Alertmanager (Debian prometheus-alertmanager) on 127.0.0.1.

The alert must show up in Alertmanager's own API, and Alertmanager's own webhook receiver
must deliver it, firing and then resolved.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.support.selfmetrics import SelfMetrics
from tests.notify_support import (
    HookServer,
    alerting,
    fire,
    metric,
    resolve,
    running,
    wait_for,
)
from tests.realservers import running_alertmanager

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def am_hook() -> Iterator[HookServer]:
    server = HookServer().start()
    yield server
    server.stop()


@pytest.fixture
def alertmanager(tmp_path: Path, am_hook: HookServer) -> Iterator[str]:
    config = f"""
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs: [{{url: "{am_hook.url}", send_resolved: true}}]
"""
    with running_alertmanager(config, tmp_path) as url:
        yield url


def am_alerts(url: str, **params: str) -> list[dict[str, Any]]:
    resp = httpx.get(f"{url}/api/v2/alerts", params=params, timeout=5)
    resp.raise_for_status()
    alerts: list[dict[str, Any]] = resp.json()
    return alerts


async def test_alert_forwarded_to_alertmanager_is_listed_and_delivered_by_it(
    tmp_path: Path, alertmanager: str, am_hook: HookServer
) -> None:
    cfg = alerting(f"""
alertmanagers: [{{url: "{alertmanager}", timeout: 5s}}]
resend_delay: 2s
""")
    stats = SelfMetrics()
    started = time.time()
    alert = fire("ChatbotDown", started - 10, severity="critical", job="chatbot")

    def forwarded() -> float:
        return metric(stats, "chatwatch_notifications_total", "alertmanager", "alertmanager")

    async with running(cfg, tmp_path / "state", stats) as n:
        # The rule engine calls send() every evaluation; do the same until the alert was
        # forwarded twice: when it first fires and once more after resend_delay.
        async with asyncio.timeout(20):
            while forwarded() < 2:
                n.send([alert], time.time())
                await asyncio.sleep(0.5)
        listed = await wait_for(
            lambda: [
                a for a in am_alerts(alertmanager) if a["labels"].get("alertname") == "ChatbotDown"
            ],
            what="alert in Alertmanager's /api/v2/alerts",
        )
        assert listed[0]["labels"] == alert.labels
        assert listed[0]["status"]["state"] == "active"
        assert listed[0]["generatorURL"] == alert.generator_url
        ends_at = datetime.fromisoformat(listed[0]["endsAt"].replace("Z", "+00:00")).timestamp()
        # endsAt = last send + 4 * resend_delay, so Alertmanager resolves it if we vanish.
        assert time.time() < ends_at <= time.time() + 4 * 2 + 1

        firing = await wait_for(
            lambda: [b for b in am_hook.bodies() if b["status"] == "firing"],
            what="Alertmanager's webhook delivering the firing alert",
        )
        assert firing[0]["alerts"][0]["labels"] == alert.labels
        assert firing[0]["receiver"] == "hook"

        resolved_at = time.time()
        n.send([resolve(alert, resolved_at)], resolved_at)
        await wait_for(
            lambda: [b for b in am_hook.bodies() if b["status"] == "resolved"],
            what="Alertmanager's webhook delivering the resolve",
        )
        await wait_for(
            lambda: not am_alerts(alertmanager, active="true", filter='alertname="ChatbotDown"'),
            what="alert no longer active in Alertmanager",
        )
    assert forwarded() >= 3
    assert (
        metric(
            stats,
            "chatwatch_notifications_failed_total",
            "alertmanager",
            "alertmanager",
            "connection",
        )
        == 0
    )
