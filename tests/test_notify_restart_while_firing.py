"""Fault: the agent restarts while an alert fires.

After the restart no second firing message goes out for the same alert, and the resolve
that comes later is still delivered, whether the rule engine reports it or the alert
simply stops being reported. Notifications still undelivered at shutdown are delivered
once by the next run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.support.selfmetrics import SelfMetrics
from tests.notify_support import (
    HookServer,
    alerting,
    fire,
    metric,
    resolve,
    running,
    settled,
    wait_for,
)

pytestmark = pytest.mark.timeout(60)


def config(url: str, resolve_timeout: str = "5m") -> str:
    return f"""
route: {{receiver: hook, group_by: [alertname], group_interval: 200ms}}
receivers: [{{name: hook, webhook_configs: [{{url: "{url}"}}]}}]
resolve_timeout: {resolve_timeout}
delivery: {{initial_backoff: 200ms, max_backoff: 1s}}
"""


@pytest.fixture
def hook() -> Iterator[HookServer]:
    server = HookServer().start()
    yield server
    server.stop()


async def test_restart_sends_no_duplicate_firing_and_delivers_later_resolve(
    tmp_path: Path, hook: HookServer
) -> None:
    cfg = alerting(config(hook.url))
    t0 = time.time()
    alert = fire("HighLatency", t0, route="/chat")
    async with running(cfg, tmp_path) as n:
        n.send([alert], t0)
        await wait_for(lambda: hook.requests, what="firing message")
    assert (tmp_path / "notifications.json").exists()

    async with running(cfg, tmp_path) as n:
        # The restarted rule engine reports the same alert again (new start time even).
        refired = fire("HighLatency", time.time(), route="/chat")
        for _ in range(3):
            n.send([refired], time.time())
            await asyncio.sleep(0.1)
        assert await settled(n) == []  # nothing queued, nothing due while it fires on
        assert len(hook.requests) == 1
        n.send([resolve(refired, time.time())], time.time())
        await wait_for(lambda: len(hook.requests) >= 2, what="resolved message")
        assert await settled(n) == []
    statuses = [b["status"] for b in hook.bodies()]
    assert statuses == ["firing", "resolved"]


async def test_restart_resolves_alert_no_longer_reported(tmp_path: Path, hook: HookServer) -> None:
    cfg = alerting(config(hook.url, resolve_timeout="1s"))
    t0 = time.time()
    alert = fire("QueueBacklog", t0)
    async with running(cfg, tmp_path) as n:
        n.send([alert], t0)
        await wait_for(lambda: hook.requests, what="firing message")
    # While the agent was down the condition went away: the new run never reports it.
    async with running(cfg, tmp_path) as n:
        await wait_for(lambda: len(hook.requests) >= 2, what="resolve from the saved state")
    firing, resolved = hook.bodies()
    assert resolved["status"] == "resolved"
    assert resolved["alerts"][0]["fingerprint"] == firing["alerts"][0]["fingerprint"]


async def test_undelivered_notification_survives_restart(tmp_path: Path) -> None:
    hook = HookServer()  # down during the first run
    cfg = alerting(config(hook.url))
    stats = SelfMetrics()
    t0 = time.time()
    async with running(cfg, tmp_path, stats) as n:
        n.send([fire("AuthFailures", t0)], t0)
        await wait_for(lambda: n.queues["hook/webhook[0]"].items, what="queued")
        await wait_for(
            lambda: metric(
                stats, "chatwatch_notifications_failed_total", "hook", "webhook", "connection"
            ),
            what="a failed attempt",
        )
    hook.start()
    try:
        async with running(cfg, tmp_path) as n:
            await wait_for(lambda: hook.requests, what="delivery after restart")
            assert await settled(n) == []
    finally:
        hook.stop()
    assert [b["status"] for b in hook.bodies()] == ["firing"]
