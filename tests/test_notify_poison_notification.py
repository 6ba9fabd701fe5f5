"""A poison notification: a label value the email integration could not put in a header
(VT, FF, U+2028 from a log line) used to crash it on every retry, across restarts, while
every later email waited behind it. Now the header is sanitised, and a notification
that keeps crashing an integration is dropped after CRASH_LIMIT attempts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from agent.notify.config import DeliveryConfig
from agent.notify.integration import Result
from agent.notify.metrics import NotifyMetrics
from agent.notify.notification import Notification, NotifiedAlert, fingerprint
from agent.notify.queue import CRASH_LIMIT, DeliveryQueue
from agent.support.selfmetrics import SelfMetrics
from tests.notify_support import (
    SMTPServer,
    alerting,
    email_config,
    fire,
    metric,
    running,
    wait_for,
)

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("breaker", ["\x0b", "\x0c", "\u2028", "\x85", "\x1c"])
async def test_a_label_with_a_line_breaking_character_is_mailed_and_the_next_one_too(
    tmp_path: Path, breaker: str
) -> None:
    now = time.time()
    poison = fire("LLMErrors", now, model=f"gpt{breaker}Bcc: victim@example.org")
    later = fire("ChatErrors", now)
    with SMTPServer(tmp_path) as smtp:
        cfg = alerting(email_config(smtp))
        async with running(cfg, tmp_path) as n:
            n.send([poison, later], now)
            await wait_for(lambda: len(smtp.mailbox.messages) == 2, what="both emails")
    subjects = sorted(m["Subject"] for m in smtp.mailbox.messages)
    assert subjects == [
        "[FIRING:1] ChatErrors",
        "[FIRING:1] LLMErrors (gpt Bcc: victim@example.org)",
    ]
    assert all(m["Bcc"] is None for m in smtp.mailbox.messages)


class _Crashing:
    """An integration with a bug: it raises for alerts named Poison, delivers the rest."""

    kind = "webhook"
    name = "hook/webhook[0]"
    receiver = "hook"
    send_resolved = True
    min_interval = 0.0

    def __init__(self) -> None:
        self.delivered: list[str] = []
        self.calls = 0

    async def notify(self, n: Notification) -> Result:
        self.calls += 1
        name = n.group_labels["alertname"]
        if name == "Poison":
            raise KeyError("a payload field this integration forgot")
        self.delivered.append(name)
        return False, None

    async def close(self) -> None:
        pass


def _notification(name: str) -> Notification:
    now = time.time()
    alert = NotifiedAlert({"alertname": name}, {}, now, None, "", fingerprint({"alertname": name}))
    return Notification(
        receiver="hook",
        integration="hook/webhook[0]",
        group_key=f'{{}}:{{alertname="{name}"}}',
        group_labels={"alertname": name},
        alerts=[alert],
        external_url="",
        created_at=now,
    )


async def test_an_integration_that_keeps_crashing_drops_the_notification_and_moves_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stats = SelfMetrics()
    integration = _Crashing()
    policy = DeliveryConfig.model_validate({"initial_backoff": "10ms", "max_backoff": "20ms"})
    queue = DeliveryQueue(integration, policy, NotifyMetrics(stats), lambda: None)
    queue.put(_notification("Poison"))
    queue.put(_notification("Later"))
    task = asyncio.create_task(queue.run())
    try:
        await wait_for(lambda: integration.delivered == ["Later"], what="the next one delivered")
    finally:
        task.cancel()
    assert integration.calls == CRASH_LIMIT + 1
    failed = "chatwatch_notifications_failed_total"
    assert metric(stats, failed, "hook", "webhook", "integration_error") == 1
    dropped = [r for r in caplog.records if "not retrying" in r.getMessage()]
    assert dropped and dropped[0].__dict__["group_key"] == '{}:{alertname="Poison"}'
