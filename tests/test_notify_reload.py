"""Config reload while alerts fire: routes change, nothing already announced is repeated."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from agent.support.selfmetrics import SelfMetrics
from tests.notify_support import HookServer, alerting, fire, running, settled, wait_for

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def hooks() -> Iterator[tuple[HookServer, HookServer]]:
    a, b = HookServer().start(), HookServer().start()
    yield a, b
    a.stop()
    b.stop()


def config(default: str, db: str, with_db_route: bool) -> str:
    routes = "routes: [{match: {team: db}, receiver: db}]" if with_db_route else ""
    return f"""
route: {{receiver: default, group_by: [alertname], group_interval: 200ms, {routes}}}
receivers:
  - {{name: default, webhook_configs: [{{url: "{default}"}}]}}
  - {{name: db, webhook_configs: [{{url: "{db}"}}]}}
"""


class _Stats(Collector):
    def __init__(self, stats: SelfMetrics) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        return self.stats.collect()


async def test_reload_reroutes_firing_alert_without_repeating_it(
    tmp_path: Path, hooks: tuple[HookServer, HookServer]
) -> None:
    default, db = hooks
    stats = SelfMetrics()
    now = time.time()
    web = fire("Latency", now, team="web")
    dba = fire("SlowQueries", now, team="db")
    async with running(alerting(config(default.url, db.url, False)), tmp_path, stats) as n:
        n.send([web, dba], now)
        await wait_for(lambda: len(default.requests) >= 2, what="both alerts to default")
        n.reload(alerting(config(default.url, db.url, True)))
        # Evaluations every 100 ms go on until the db alert reached the new db receiver.
        async with asyncio.timeout(20):
            while not db.requests:
                n.send([web, dba], time.time())
                await asyncio.sleep(0.1)
        assert await settled(n) == []  # and nothing already announced goes out again
    assert sorted(b["groupLabels"]["alertname"] for b in default.bodies()) == [
        "Latency",
        "SlowQueries",
    ]
    assert [b["groupLabels"]["alertname"] for b in db.bodies()] == ["SlowQueries"]

    # What an operator reads on /metrics.
    registry = CollectorRegistry()
    registry.register(_Stats(stats))
    text = generate_latest(registry).decode()
    assert 'chatwatch_notifications_total{integration="webhook",receiver="default"} 2.0' in text
    assert 'chatwatch_notifications_total{integration="webhook",receiver="db"} 1.0' in text
    assert (
        'chatwatch_notification_latency_seconds_count{integration="webhook",receiver="db"} 1.0'
        in text
    )
    assert 'chatwatch_notification_queue_length{receiver="default"} 0.0' in text
