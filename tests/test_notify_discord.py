"""Discord against a stand-in of its webhook API: Alertmanager's embed, log text that
cannot format or link, Discord's 429 `retry_after` honoured, the webhook token never
logged."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.support.selfmetrics import SelfMetrics
from tests.notify_support import alerting, fire, metric, resolve, running, settled, wait_for
from tests.oncall_servers import DiscordServer, agent_log_text

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def discord() -> Iterator[DiscordServer]:
    with DiscordServer() as server:
        assert isinstance(server, DiscordServer)
        yield server


def config(url: str, extra: str = "") -> str:
    return f"""
route: {{receiver: chat, group_by: [alertname], group_interval: 200ms}}
receivers:
  - name: chat
    discord_configs:
      - webhook_url: "{url}"
        {extra}
delivery: {{initial_backoff: 5s, max_backoff: 5s}}
"""


async def test_discord_gets_alertmanagers_embed_red_then_green(
    tmp_path: Path, discord: DiscordServer
) -> None:
    now = time.time()
    alert = fire("ChatErrors", now - 5, route="/chat", severity="warning")
    alert.annotations = {"summary": "Chat errors above 5%"}
    cfg = alerting(
        config(discord.url, "content: '<@&123456> on call'\n        username: chatwatch")
    )
    async with running(cfg, tmp_path) as n:
        n.send([alert], now)
        await wait_for(lambda: discord.accepted, what="firing message")
        n.send([resolve(alert, now + 1)], now + 1)
        await wait_for(lambda: len(discord.accepted) >= 2, what="resolved message")
        assert await settled(n) == []
    assert discord.problems == []
    firing, resolved = discord.accepted
    alert_list = (
        "Labels:\n"
        " - alertname = ChatErrors\n"
        " - route = /chat\n"
        " - severity = warning\n"
        "Annotations:\n"
        " - summary = Chat errors above 5%\n"
        "Source: http://chatwatch.test:9317/graph\n"
    )
    assert firing == {
        "content": "<@&123456> on call",
        "embeds": [
            {
                "title": "[FIRING:1] ChatErrors (/chat warning)",
                "description": f"\n\nAlerts Firing:\n{alert_list}\n\n\n",
                "color": 0x992D22,
            }
        ],
        "username": "chatwatch",
    }
    assert resolved["embeds"] == [
        {
            "title": "[RESOLVED] ChatErrors (/chat warning)",
            "description": f"\n\n\nAlerts Resolved:\n{alert_list}\n\n",
            "color": 0x2ECC71,
        }
    ]


async def test_discord_message_keeps_log_text_from_formatting_or_linking(
    tmp_path: Path, discord: DiscordServer
) -> None:
    now = time.time()
    alert = fire("BadInput", now, user="**bold** [click](https://evil.example) `x` @everyone")
    async with running(alerting(config(discord.url)), tmp_path) as n:
        n.send([alert], now)
        await wait_for(lambda: discord.accepted, what="message")
    embed = discord.accepted[0]["embeds"][0]
    escaped = r"\*\*bold\*\* \[click\]\(https\://evil.example\) \`x\` \@everyone"
    assert f" - user = {escaped}\n" in embed["description"]
    assert embed["title"] == f"[FIRING:1] BadInput ({escaped})"
    for raw in ("**bold**", "[click](", "`x`"):
        assert raw not in embed["description"]


async def test_discord_429_waits_for_retry_after_from_the_body_then_delivers(
    tmp_path: Path, discord: DiscordServer
) -> None:
    discord.rate_limit()  # retry_after 0.5 in the body, Retry-After: 1 header
    stats = SelfMetrics()
    now = time.time()
    async with running(alerting(config(discord.url)), tmp_path, stats) as n:
        n.send([fire("ChatErrors", now)], now)
        await wait_for(lambda: discord.accepted, what="delivery after 429")
        assert await settled(n) == []
    first, second = discord.requests
    # The body's fractional retry_after wins over the rounded header and the 5s backoff.
    assert 0.45 <= second.at - first.at < 1.0
    assert first.body == second.body
    assert (
        metric(stats, "chatwatch_notifications_failed_total", "chat", "discord", "rate_limited")
        == 1
    )


async def test_discord_unknown_webhook_is_not_retried_and_its_token_not_logged(
    tmp_path: Path, discord: DiscordServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = discord.url.replace(discord.token, "wr0ngT0ken-abcdef")
    stats = SelfMetrics()
    now = time.time()
    with caplog.at_level(logging.DEBUG):
        async with running(alerting(config(wrong)), tmp_path, stats) as n:
            n.send([fire("ChatErrors", now)], now)
            await wait_for(lambda: discord.requests, what="attempt")
            await wait_for(
                lambda: metric(
                    stats, "chatwatch_notifications_failed_total", "chat", "discord", "client_error"
                ),
                what="rejection counted",
            )
            assert await settled(n) == []
    assert len(discord.requests) == 1
    logged = agent_log_text(caplog.records)
    assert "Unknown Webhook" in logged
    assert "wr0ngT0ken" not in logged


async def test_discord_description_is_cut_at_4096_characters(
    tmp_path: Path, discord: DiscordServer
) -> None:
    now = time.time()
    alert = fire("LongText", now)
    alert.annotations = {"description": "y" * 5000}
    async with running(alerting(config(discord.url)), tmp_path) as n:
        n.send([alert], now)
        await wait_for(lambda: discord.accepted, what="message")
    assert discord.problems == []
    description = discord.accepted[0]["embeds"][0]["description"]
    assert len(description) == 4096 and description.endswith("y…")


async def test_discord_user_template_prints_log_text_but_cannot_ping(
    tmp_path: Path, discord: DiscordServer
) -> None:
    """Under the user's own templates values print as they are (markdown included, as in
    Alertmanager), except that a mention from a log line is broken up: it pings nobody.
    The mention the template itself writes is kept."""
    now = time.time()
    alert = fire("BadInput", now, user="@everyone <@&123> **x** <#42> @here bob@example.com")
    extra = "content: '<@&999> {{ .CommonLabels.user }}'"
    async with running(alerting(config(discord.url, extra)), tmp_path) as n:
        n.send([alert], now)
        await wait_for(lambda: discord.accepted, what="message")
    content = discord.accepted[0]["content"]
    z = "\u200b"
    assert content == (f"<@&999> @{z}everyone <{z}@&123> **x** <{z}#42> @{z}here bob@example.com")
