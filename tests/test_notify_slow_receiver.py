"""Fault: the receiver answers far slower than our timeout.

Requests time out and are retried one at a time per integration: no pile-up of
concurrent requests, alerts keep being accepted, and once the receiver is fast again
every group is delivered.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest

from agent.support.selfmetrics import SelfMetrics
from tests.notify_support import HookServer, Reply, alerting, fire, metric, running, wait_for

pytestmark = pytest.mark.timeout(90)


async def test_slow_receiver_times_out_without_pile_up(tmp_path: Path) -> None:
    hook = HookServer().start()
    hook.default = Reply(delay=3.0)
    cfg = alerting(f"""
route: {{receiver: hook, group_by: [alertname], group_interval: 200ms}}
receivers: [{{name: hook, webhook_configs: [{{url: "{hook.url}", timeout: 500ms}}]}}]
delivery: {{initial_backoff: 100ms, max_backoff: 500ms}}
""")
    stats = SelfMetrics()
    now = time.time()
    alerts = [fire(name, now) for name in ("A", "B", "C")]

    def timeouts() -> float:
        return metric(stats, "chatwatch_notifications_failed_total", "hook", "webhook", "timeout")

    try:
        async with running(cfg, tmp_path, stats) as n:
            slowest = 0.0
            # Evaluations every 100 ms while the receiver crawls, until three tries of the
            # head have timed out (about 2 s).
            async with asyncio.timeout(20):
                while timeouts() < 3:
                    began = time.perf_counter()
                    n.send(alerts, time.time())
                    slowest = max(slowest, time.perf_counter() - began)
                    await asyncio.sleep(0.1)
            slow_phase = list(hook.requests)
            assert metric(stats, "chatwatch_notification_queue_length", "hook") == 3
            assert timeouts() >= 3
            hook.default = Reply()
            await wait_for(
                lambda: metric(stats, "chatwatch_notification_queue_length", "hook") == 0,
                what="queue drained once the receiver is fast",
            )
    finally:
        hook.stop()

    # One request at a time: each next try starts only after the previous timed out.
    starts = [r.at for r in slow_phase]
    assert 3 <= len(starts) <= 10, len(starts)
    assert all(b - a >= 0.45 for a, b in itertools.pairwise(starts)), starts
    assert slowest < 0.05
    delivered = [b["groupLabels"]["alertname"] for b in hook.bodies()[len(slow_phase) :]]
    # Retries of the head came first, in order: A (until it got through), then B and C.
    assert [k for k, _ in itertools.groupby(delivered)][-3:] == ["A", "B", "C"]
    assert {b["groupLabels"]["alertname"] for b in hook.bodies()} == {"A", "B", "C"}
