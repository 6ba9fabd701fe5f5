"""Microsoft Teams against a stand-in of a Workflows webhook (Adaptive Card) and of the
legacy Office 365 connector (MessageCard): Alertmanager's cards, log text that cannot
format or link, 429 `Retry-After` honoured, the signed webhook URL never logged."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.support.selfmetrics import SelfMetrics
from tests.notify_support import alerting, fire, metric, resolve, running, settled, wait_for
from tests.oncall_servers import TeamsServer, agent_log_text

pytestmark = pytest.mark.timeout(60)

ZWSP = "\u200b"


@pytest.fixture
def teams() -> Iterator[TeamsServer]:
    with TeamsServer() as server:
        assert isinstance(server, TeamsServer)
        yield server


def config(kind: str, url: str) -> str:
    return f"""
route: {{receiver: team, group_by: [alertname], group_interval: 200ms}}
receivers:
  - name: team
    {kind}_configs: [{{webhook_url: "{url}"}}]
delivery: {{initial_backoff: 5s, max_backoff: 5s}}
"""


ALERT_LIST = (
    "\nLabels:\n"
    "  - alertname = ChatErrors\n"
    "  - route = /chat\n"
    "\nAnnotations:\n"
    "  - summary = Chat errors above 5%\n"
    "\nSource: http://chatwatch.test:9317/graph\n"
    "\n"
)


async def test_teams_workflow_gets_alertmanagers_adaptive_card(
    tmp_path: Path, teams: TeamsServer
) -> None:
    now = time.time()
    alert = fire("ChatErrors", now - 5, route="/chat")
    alert.annotations = {"summary": "Chat errors above 5%"}
    async with running(alerting(config("msteamsv2", teams.url)), tmp_path) as n:
        n.send([alert], now)
        await wait_for(lambda: teams.accepted, what="firing card")
        n.send([resolve(alert, now + 1)], now + 1)
        await wait_for(lambda: len(teams.accepted) >= 2, what="resolved card")
        assert await settled(n) == []
    assert teams.problems == []
    firing, resolved = teams.accepted
    assert firing == {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.2",
                    "body": [
                        {
                            "type": "TextBlock",
                            "text": "[FIRING:1] ChatErrors (/chat)",
                            "weight": "Bolder",
                            "size": "Medium",
                            "wrap": True,
                            "style": "heading",
                            "color": "Attention",
                        },
                        {
                            "type": "TextBlock",
                            "text": f"\n\n# Alerts Firing:\n{ALERT_LIST}\n\n\n",
                            "wrap": True,
                        },
                    ],
                    "msteams": {"width": "full"},
                },
            }
        ],
    }
    title, text = resolved["attachments"][0]["content"]["body"]
    assert title["text"] == "[RESOLVED] ChatErrors (/chat)" and title["color"] == "Good"
    assert text["text"] == f"\n\n\n# Alerts Resolved:\n{ALERT_LIST}\n\n"


async def test_teams_card_keeps_log_text_from_formatting_or_linking(
    tmp_path: Path, teams: TeamsServer
) -> None:
    now = time.time()
    alert = fire("BadInput", now, user="**boss** [click](https://evil.example)\n# big")
    async with running(alerting(config("msteamsv2", teams.url)), tmp_path) as n:
        n.send([alert], now)
        await wait_for(lambda: teams.accepted, what="card")
    text = teams.accepted[0]["attachments"][0]["content"]["body"][1]["text"]
    for raw in ("**boss**", "](", "\n# big"):
        assert raw not in text
    shown = text.replace(ZWSP, "")
    assert "  - user = **boss** [click](https://evil.example)\n# big\n" in shown


async def test_teams_429_waits_for_retry_after_then_delivers(
    tmp_path: Path, teams: TeamsServer
) -> None:
    teams.rate_limit()  # Retry-After: 1
    stats = SelfMetrics()
    now = time.time()
    async with running(alerting(config("msteamsv2", teams.url)), tmp_path, stats) as n:
        n.send([fire("ChatErrors", now)], now)
        await wait_for(lambda: teams.accepted, what="delivery after 429")
        assert await settled(n) == []
    first, second = teams.requests
    assert 0.95 <= second.at - first.at < 4.0  # Retry-After, not the 5s backoff
    assert (
        metric(stats, "chatwatch_notifications_failed_total", "team", "msteamsv2", "rate_limited")
        == 1
    )


async def test_teams_rejected_card_is_not_retried_and_the_url_not_logged(
    tmp_path: Path, teams: TeamsServer, caplog: pytest.LogCaptureFixture
) -> None:
    unsigned = teams.url.replace("sig=s3cr3tSig", "sig=f0rgedSig")
    stats = SelfMetrics()
    now = time.time()
    with caplog.at_level(logging.DEBUG):
        async with running(alerting(config("msteamsv2", unsigned)), tmp_path, stats) as n:
            n.send([fire("ChatErrors", now)], now)
            await wait_for(
                lambda: metric(
                    stats,
                    "chatwatch_notifications_failed_total",
                    "team",
                    "msteamsv2",
                    "client_error",
                ),
                what="rejection counted",
            )
            assert await settled(n) == []
    assert len(teams.requests) == 1
    logged = agent_log_text(caplog.records)
    assert "DirectApiAuthorizationRequired" in logged
    assert "f0rgedSig" not in logged


async def test_teams_legacy_connector_gets_alertmanagers_message_card(
    tmp_path: Path, teams: TeamsServer
) -> None:
    now = time.time()
    alert = fire("ChatErrors", now - 5, route="/chat")
    alert.annotations = {"summary": "Chat errors above 5%"}
    async with running(alerting(config("msteams", teams.connector_url)), tmp_path) as n:
        n.send([alert], now)
        await wait_for(lambda: teams.accepted, what="message card")
        n.send([resolve(alert, now + 1)], now + 1)
        await wait_for(lambda: len(teams.accepted) >= 2, what="resolved card")
    assert teams.problems == []
    assert teams.accepted[0] == {
        "@context": "http://schema.org/extensions",
        "type": "MessageCard",
        "title": "[FIRING:1] ChatErrors (/chat)",
        "summary": "[FIRING:1] ChatErrors (/chat)",
        "text": f"\n\n# Alerts Firing:\n{ALERT_LIST}\n\n\n",
        "themeColor": "8C1A1A",
    }
    assert teams.accepted[1]["themeColor"] == "2DC72D"
    assert teams.accepted[1]["title"] == "[RESOLVED] ChatErrors (/chat)"


async def test_teams_legacy_card_shows_html_from_logs_as_text(
    tmp_path: Path, teams: TeamsServer
) -> None:
    """A connector card renders limited HTML besides markdown: a label cannot become a
    link or a tracking image there."""
    now = time.time()
    alert = fire("BadInput", now, user='<a href="https://evil.example">x</a><img src=t> &amp;')
    async with running(alerting(config("msteams", teams.connector_url)), tmp_path) as n:
        n.send([alert], now)
        await wait_for(lambda: teams.accepted, what="message card")
    card = teams.accepted[0]
    assert "<a " not in card["text"] and "<img" not in card["text"]
    assert "&lt;a href=" in card["text"] and "&lt;img src=t&gt;" in card["text"]
    assert "&amp;amp;" in card["text"]  # an entity from logs is shown, not decoded
