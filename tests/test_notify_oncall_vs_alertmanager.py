"""The same alert through a real Alertmanager (0.25, Debian's) and through chatwatch, to the
same PagerDuty, Discord and Telegram stand-ins: the bodies they post must be the same.

What differs on purpose, and is masked: the external URL in PagerDuty's `client_url`
(each its own), and the backslashes chatwatch puts before markdown characters from logs
in Discord's default message (which Alertmanager leaves live).
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.alerting.alert import Alert
from tests.notify_support import alerting, running, wait_for
from tests.oncall_servers import DiscordServer, PagerDutyServer, TelegramServer
from tests.realservers import running_alertmanager, wait_until

pytestmark = pytest.mark.timeout(90)

ROUTING_KEY = "0123456789abcdef0123456789abcdef"

RECEIVERS = """
route: {{receiver: oncall, group_by: [alertname], group_wait: 0s, group_interval: 1s}}
receivers:
  - name: oncall
    pagerduty_configs:
      - routing_key: {routing_key}
        url: {pagerduty}
        severity: critical
        class: llm
        component: chatbot
        group: support
        details: {{runbook: "https://runbooks.example.org/llm"}}
        links: [{{href: "https://grafana.example.org/d/llm", text: Dashboard}}]
        images: [{{src: "https://grafana.example.org/llm.png", alt: errors, href: "https://grafana.example.org"}}]
    discord_configs:
      - webhook_url: "{discord}"
    telegram_configs:
      - api_url: {telegram}
        bot_token: "{token}"
        chat_id: -1001234567890
"""

LABELS = {"alertname": "LLMErrors", "provider": "openai", "severity": "critical"}
ANNOTATIONS = {
    "summary": "LLM errors > 5% for <provider> & 'team' \"oncall\"",
    "description": "Errors from *openai* since 10:02",
}
GENERATOR_URL = "http://chatwatch.test:9317/graph?g0.expr=rate%28x%29&g0.tab=1"


class StandIns:
    def __init__(self) -> None:
        self.pagerduty = PagerDutyServer()
        self.discord = DiscordServer()
        self.telegram = TelegramServer()
        self.all = (self.pagerduty, self.discord, self.telegram)

    def config(self) -> str:
        return RECEIVERS.format(
            routing_key=ROUTING_KEY,
            pagerduty=self.pagerduty.url,
            discord=self.discord.url,
            telegram=self.telegram.url,
            token=self.telegram.token,
        )

    def delivered(self, count: int) -> bool:
        return all(len(s.accepted) >= count for s in self.all)


@pytest.fixture
def alertmanager_side(tmp_path: Path) -> Iterator[StandIns]:
    side = StandIns()
    for s in side.all:
        s.start()
    try:
        yield side
    finally:
        for s in side.all:
            s.stop()


@pytest.fixture
def chatwatch_side() -> Iterator[StandIns]:
    side = StandIns()
    for s in side.all:
        s.start()
    try:
        yield side
    finally:
        for s in side.all:
            s.stop()


def iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat().replace("+00:00", "Z")


def through_alertmanager(side: StandIns, workdir: Path, starts: float) -> None:
    workdir.mkdir()
    alert = {
        "labels": LABELS,
        "annotations": ANNOTATIONS,
        "generatorURL": GENERATOR_URL,
        "startsAt": iso(starts),
    }
    with running_alertmanager(side.config(), workdir) as url:
        r = httpx.post(f"{url}/api/v2/alerts", json=[alert], timeout=5)
        assert r.status_code == 200, r.text
        wait_until(lambda: side.delivered(1), timeout=30, what="Alertmanager's firing posts")
        r = httpx.post(
            f"{url}/api/v2/alerts", json=[alert | {"endsAt": iso(time.time())}], timeout=5
        )
        assert r.status_code == 200, r.text
        wait_until(lambda: side.delivered(2), timeout=30, what="Alertmanager's resolved posts")
    assert side.delivered(2), [(s.name, len(s.accepted), s.problems) for s in side.all]


async def through_chatwatch(side: StandIns, state: Path, starts: float) -> None:
    state.mkdir()
    alert = Alert(dict(LABELS), dict(ANNOTATIONS), starts, None, GENERATOR_URL)
    async with running(alerting(side.config()), state) as n:
        now = time.time()
        n.send([alert], now)
        await wait_for(lambda: side.delivered(1), what="firing notifications")
        ended = Alert(dict(LABELS), dict(ANNOTATIONS), starts, now + 1, GENERATOR_URL)
        n.send([ended], now + 1)
        await wait_for(lambda: side.delivered(2), what="resolved notifications")


def masked_pagerduty(event: dict[str, Any]) -> dict[str, Any]:
    external, _, page = event["client_url"].partition("/#/")
    assert external.startswith("http://") and page == "alerts?receiver=oncall"
    return event | {"client_url": page}


def unescaped_discord(message: dict[str, Any]) -> dict[str, Any]:
    embed = dict(message["embeds"][0])
    for key in ("title", "description"):
        embed[key] = re.sub(r"\\(.)", r"\1", embed[key])
    return message | {"embeds": [embed]}


async def test_pagerduty_discord_and_telegram_bodies_match_alertmanagers(
    tmp_path: Path, alertmanager_side: StandIns, chatwatch_side: StandIns
) -> None:
    starts = float(int(time.time()) - 60)
    through_alertmanager(alertmanager_side, tmp_path / "am", starts)
    await through_chatwatch(chatwatch_side, tmp_path / "cw", starts)

    for side in (alertmanager_side, chatwatch_side):
        assert [s.problems for s in side.all] == [[], [], []]
    am, cw = alertmanager_side, chatwatch_side

    am_events, cw_events = am.pagerduty.accepted[:2], cw.pagerduty.accepted[:2]
    assert [e["event_action"] for e in cw_events] == ["trigger", "resolve"]
    assert [masked_pagerduty(e) for e in cw_events] == [masked_pagerduty(e) for e in am_events]

    assert [unescaped_discord(m) for m in cw.discord.accepted[:2]] == am.discord.accepted[:2]
    assert r"\*openai\*" in cw.discord.accepted[0]["embeds"][0]["description"]

    assert cw.telegram.accepted[:2] == am.telegram.accepted[:2]
    assert (
        "&lt;provider&gt; &amp; &#39;team&#39; &#34;oncall&#34;" in cw.telegram.accepted[0]["text"]
    )
