"""Fault: the webhook receiver is down for a while, then comes back.

The issue asks for 60 s; by default this uses the same code path with a 6 s outage (the
backoff cap is lowered to 1 s so the test does not wait a minute for the next try).
`CHATWATCH_TEST_OUTAGE=60` runs the full minute. Every state
change made during the outage must arrive once, in order per alert group, and the agent
must keep taking alerts without blocking.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from agent.alerting.alert import Alert
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

pytestmark = pytest.mark.timeout(180)

OUTAGE = float(os.environ.get("CHATWATCH_TEST_OUTAGE", "6"))


async def test_receiver_down_then_up_delivers_every_change_once_in_order(tmp_path: Path) -> None:
    hook = HookServer()  # not started: connection refused
    cfg = alerting(f"""
route: {{receiver: hook, group_by: [alertname], group_interval: 300ms}}
receivers: [{{name: hook, webhook_configs: [{{url: "{hook.url}", timeout: 2s}}]}}]
delivery: {{initial_backoff: 200ms, max_backoff: 1s}}
""")
    stats = SelfMetrics()
    t0 = time.time()
    a1 = fire("ErrorBurst", t0)
    b = fire("Silence", t0)
    a2 = fire("ErrorBurst", t0 + 1.5)
    # What the rule engine reports, evaluation after evaluation, during the outage.
    timeline: list[tuple[float, list[Alert]]] = [
        (0.0, [a1, b]),
        (0.8, [resolve(a1, t0 + 0.8), b]),
        (1.6, [a2, b]),
        (2.4, [a2, resolve(b, t0 + 2.4)]),
    ]
    slowest_send = 0.0
    try:
        async with running(cfg, tmp_path, stats) as n:
            start = time.monotonic()
            for at, alerts in timeline:
                while time.monotonic() - start < at + 0.8:
                    began = time.perf_counter()
                    n.send(alerts, time.time())
                    slowest_send = max(slowest_send, time.perf_counter() - began)
                    await asyncio.sleep(0.1)
            assert hook.requests == []
            await wait_for(
                lambda: metric(stats, "chatwatch_notification_queue_length", "hook") == 5,
                what="five notifications queued",
            )
            await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - start)))
            assert (
                metric(
                    stats, "chatwatch_notifications_failed_total", "hook", "webhook", "connection"
                )
                >= 3
            )
            hook.start()
            await wait_for(lambda: len(hook.requests) >= 5, what="all changes delivered")
            assert await settled(n) == []  # nothing more may follow
            await wait_for(
                lambda: metric(stats, "chatwatch_notification_queue_length", "hook") == 0,
                what="queue empty",
            )
    finally:
        hook.stop()

    per_group: dict[str, list[tuple[str, str]]] = {}
    for body in hook.bodies():
        per_group.setdefault(body["groupLabels"]["alertname"], []).append(
            (body["status"], body["alerts"][0]["startsAt"])
        )
    assert len(hook.requests) == 5
    a_changes = [s for s, _ in per_group["ErrorBurst"]]
    assert a_changes == ["firing", "resolved", "firing"]
    assert per_group["ErrorBurst"][0][1] != per_group["ErrorBurst"][2][1]  # the re-fire
    assert [s for s, _ in per_group["Silence"]] == ["firing", "resolved"]
    assert slowest_send < 0.05
