"""Fault: Slack answers 429 with `Retry-After: 2`. We wait that long, then deliver."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.support.selfmetrics import SelfMetrics
from tests.notify_support import HookServer, Reply, alerting, fire, metric, running, wait_for

pytestmark = pytest.mark.timeout(60)


async def test_slack_429_retry_after_is_honoured_then_delivered(tmp_path: Path) -> None:
    hook = HookServer().start()
    hook.script = [Reply(429, "rate_limited", (("Retry-After", "2"),))]
    cfg = alerting(f"""
route: {{receiver: slack, group_interval: 200ms}}
receivers: [{{name: slack, slack_configs: [{{api_url: "{hook.url}"}}]}}]
delivery: {{initial_backoff: 100ms, max_backoff: 200ms}}
""")
    stats = SelfMetrics()
    now = time.time()
    try:
        async with running(cfg, tmp_path, stats) as n:
            n.send([fire("TooManyErrors", now)], now)
            await wait_for(lambda: len(hook.requests) >= 2, what="retry after 429")
            await wait_for(lambda: not n.queues["slack/slack[0]"].items, what="delivered")
    finally:
        hook.stop()
    first, second = hook.requests
    # Retry-After wins over the (much shorter) configured backoff.
    assert second.at - first.at >= 1.95
    assert first.body == second.body
    assert (
        metric(stats, "chatwatch_notifications_failed_total", "slack", "slack", "rate_limited") == 1
    )
    assert metric(stats, "chatwatch_notifications_total", "slack", "slack") == 2
