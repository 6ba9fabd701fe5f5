"""Telegram against a stand-in of the Bot API: Alertmanager's message in HTML that Telegram
parses, log text shown as written, Telegram's 429 `retry_after` honoured, the bot token
(which is in the request URL) never logged."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.support.selfmetrics import SelfMetrics
from tests.notify_support import alerting, fire, metric, resolve, running, settled, wait_for
from tests.oncall_servers import TelegramServer, agent_log_text

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def telegram() -> Iterator[TelegramServer]:
    with TelegramServer() as server:
        assert isinstance(server, TelegramServer)
        yield server


def config(server: TelegramServer, token: str | None = None, extra: str = "") -> str:
    return f"""
route: {{receiver: chat, group_by: [alertname], group_interval: 200ms}}
receivers:
  - name: chat
    telegram_configs:
      - api_url: {server.url}
        bot_token: "{token or server.token}"
        chat_id: -1001234567890
        {extra}
delivery: {{initial_backoff: 5s, max_backoff: 5s}}
"""


async def test_telegram_sends_alertmanagers_message_to_the_topic_silently(
    tmp_path: Path, telegram: TelegramServer
) -> None:
    now = time.time()
    alert = fire("ChatErrors", now - 5, route="/chat")
    alert.annotations = {"summary": "Errors > 5% & rising"}
    cfg = alerting(
        config(telegram, extra="message_thread_id: 42\n        disable_notifications: true")
    )
    async with running(cfg, tmp_path) as n:
        n.send([alert], now)
        await wait_for(lambda: telegram.accepted, what="firing message")
        n.send([resolve(alert, now + 1)], now + 1)
        await wait_for(lambda: len(telegram.accepted) >= 2, what="resolved message")
        assert await settled(n) == []
    assert telegram.problems == []
    alert_list = (
        "Labels:\n"
        " - alertname = ChatErrors\n"
        " - route = /chat\n"
        "Annotations:\n"
        " - summary = Errors &gt; 5% &amp; rising\n"
        "Source: http://chatwatch.test:9317/graph\n"
    )
    assert telegram.accepted[0] == {
        "chat_id": "-1001234567890",
        "text": f"\n\nAlerts Firing:\n{alert_list}\n\n\n",
        "parse_mode": "HTML",
        "disable_web_page_preview": "true",
        "disable_notification": "true",
        "message_thread_id": "42",
    }
    assert telegram.accepted[1]["text"] == f"\n\n\nAlerts Resolved:\n{alert_list}\n\n"
    seen = telegram.messages[0]
    assert seen["chat"]["id"] == -1001234567890
    assert seen["message_thread_id"] == 42 and seen["silent"]
    assert " - summary = Errors > 5% & rising\n" in seen["text"]


async def test_telegram_shows_html_from_logs_as_text(
    tmp_path: Path, telegram: TelegramServer
) -> None:
    now = time.time()
    alert = fire("BadInput", now, user='<b>boss</b> <a href="https://evil.example">x</a> &amp')
    async with running(alerting(config(telegram)), tmp_path) as n:
        n.send([alert], now)
        await wait_for(lambda: telegram.accepted or telegram.problems, what="message")
    assert telegram.problems == []
    # Telegram parsed it (no "can't parse entities") and shows the label as it was logged.
    text = telegram.messages[0]["text"]
    assert ' - user = <b>boss</b> <a href="https://evil.example">x</a> &amp\n' in text


async def test_telegram_429_waits_for_retry_after_then_delivers(
    tmp_path: Path, telegram: TelegramServer
) -> None:
    telegram.rate_limit()  # parameters.retry_after: 1
    stats = SelfMetrics()
    now = time.time()
    async with running(alerting(config(telegram)), tmp_path, stats) as n:
        n.send([fire("ChatErrors", now)], now)
        await wait_for(lambda: telegram.accepted, what="delivery after 429")
        assert await settled(n) == []
    first, second = telegram.requests
    assert 0.95 <= second.at - first.at < 4.0  # retry_after, not the 5s backoff
    assert first.body == second.body
    assert (
        metric(stats, "chatwatch_notifications_failed_total", "chat", "telegram", "rate_limited")
        == 1
    )


async def test_telegram_wrong_token_is_not_retried_and_no_token_is_logged(
    tmp_path: Path, telegram: TelegramServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "987654321:AAWr0ngT0kenWr0ngT0ken"
    stats = SelfMetrics()
    now = time.time()
    with caplog.at_level(logging.DEBUG):
        async with running(alerting(config(telegram, token=wrong)), tmp_path, stats) as n:
            n.send([fire("ChatErrors", now)], now)
            await wait_for(
                lambda: metric(
                    stats,
                    "chatwatch_notifications_failed_total",
                    "chat",
                    "telegram",
                    "client_error",
                ),
                what="rejection counted",
            )
            assert await settled(n) == []
    assert len(telegram.requests) == 1
    logged = agent_log_text(caplog.records)
    assert "Unauthorized" in logged
    assert "Wr0ngT0ken" not in logged


async def test_telegram_server_down_error_does_not_show_the_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    down = TelegramServer()  # never started: connection refused
    stats = SelfMetrics()
    now = time.time()
    with caplog.at_level(logging.DEBUG):
        async with running(alerting(config(down)), tmp_path, stats) as n:
            n.send([fire("ChatErrors", now)], now)
            await wait_for(
                lambda: metric(
                    stats, "chatwatch_notifications_failed_total", "chat", "telegram", "connection"
                ),
                what="connection failure counted",
            )
    logged = agent_log_text(caplog.records)
    assert "will retry" in logged
    assert down.token not in logged and down.token.split(":")[1] not in logged


async def test_telegram_html_message_over_4096_characters_becomes_alertmanagers_notice(
    tmp_path: Path, telegram: TelegramServer
) -> None:
    now = time.time()
    alert = fire("LongText", now)
    alert.annotations = {"description": "<" * 4000}  # 16000 bytes as &lt;, 4000 visible
    alert.labels["extra"] = "z" * 200
    async with running(alerting(config(telegram)), tmp_path) as n:
        n.send([alert], now)
        await wait_for(lambda: telegram.accepted or telegram.problems, what="message")
    assert telegram.problems == []
    assert telegram.messages[0]["text"].startswith(
        "Alertmanager notification could not be sent: message length exceeds Telegram limits."
    )


async def test_telegram_markdown_mode_escapes_log_text_in_the_default_message(
    tmp_path: Path, telegram: TelegramServer
) -> None:
    now = time.time()
    alert = fire("BadInput", now, user="snake_case *bold* [link")
    async with running(alerting(config(telegram, extra="parse_mode: Markdown")), tmp_path) as n:
        n.send([alert], now)
        await wait_for(lambda: telegram.accepted, what="message")
    sent = telegram.accepted[0]
    assert sent["parse_mode"] == "Markdown"
    assert " - user = snake\\_case \\*bold\\* \\[link\n" in sent["text"]
