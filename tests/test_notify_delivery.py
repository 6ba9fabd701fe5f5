"""Delivery policy pieces: backoff, Retry-After, a full queue, an unreadable state file."""

from __future__ import annotations

import logging
import time
from email.utils import formatdate
from pathlib import Path

import pytest

from agent.notify.config import DeliveryConfig
from agent.notify.integration import check_status, parse_retry_after
from agent.notify.queue import backoff
from agent.support.selfmetrics import SelfMetrics
from tests.notify_support import HookServer, alerting, fire, metric, running, wait_for


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    policy = DeliveryConfig(initial_backoff=1.0, max_backoff=60.0)
    assert [backoff(n, policy, rng=lambda: 1.0) for n in range(1, 9)] == [
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        32.0,
        60.0,
        60.0,
    ]
    assert backoff(3, policy, rng=lambda: 0.0) == 2.0  # jitter keeps at least half
    assert backoff(100, policy, rng=lambda: 0.0) == 30.0


def test_retry_after_seconds_or_http_date() -> None:
    assert parse_retry_after("2") == 2.0
    now = time.time()
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_status_policy_matches_alertmanager_retrier() -> None:
    assert check_status(200, "ok", None) == (False, None)
    retry, err = check_status(429, "rate_limited", "3")
    assert retry and err is not None and err.retry_after == 3.0 and err.reason == "rate_limited"
    retry, err = check_status(503, "", None)
    assert retry and err is not None and err.reason == "server_error"
    retry, err = check_status(404, "channel_not_found", None)
    assert not retry and err is not None and "channel_not_found" in str(err)


async def test_full_queue_drops_oldest_waiting_and_counts_it(tmp_path: Path) -> None:
    hook = HookServer()  # down
    cfg = alerting(f"""
route: {{receiver: hook, group_by: [alertname]}}
receivers: [{{name: hook, webhook_configs: [{{url: "{hook.url}"}}]}}]
delivery: {{initial_backoff: 10s, max_backoff: 10s, queue_capacity: 3}}
""")
    stats = SelfMetrics()
    now = time.time()
    async with running(cfg, tmp_path, stats) as n:
        n.send([fire(f"A{i}", now) for i in range(5)], now)
        await wait_for(
            lambda: (
                metric(
                    stats, "chatwatch_notifications_failed_total", "hook", "webhook", "queue_full"
                )
                == 2
            ),
            what="two drops counted",
        )
        names = [q.group_labels["alertname"] for q in n.queues["hook/webhook[0]"].items]
    assert len(names) == 3
    assert names[0] == "A0"  # the one being retried is kept; A1 and A2 were dropped
    assert names[1:] == ["A3", "A4"]


async def test_unreadable_state_file_is_set_aside_and_agent_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "notifications.json").write_text("{not json")
    hook = HookServer().start()
    cfg = alerting(f"""
route: {{receiver: hook}}
receivers: [{{name: hook, webhook_configs: [{{url: "{hook.url}"}}]}}]
""")
    try:
        with caplog.at_level(logging.ERROR, logger="chatwatch.notify"):
            async with running(cfg, tmp_path) as n:
                n.send([fire("X", time.time())], time.time())
                await wait_for(lambda: hook.requests, what="delivery")
    finally:
        hook.stop()
    assert (tmp_path / "notifications.unreadable").read_text() == "{not json"
    assert "notification state is not readable" in caplog.text
    assert b'"version":1' in (tmp_path / "notifications.json").read_bytes()
