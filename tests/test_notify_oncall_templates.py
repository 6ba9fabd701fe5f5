"""The on-call receivers' text fields are Alertmanager notification templates: checked at
load, rendered at send time, and a template that fails then sends the default message
with a visible error line rather than an empty one (alertmanager#4118)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.support.selfmetrics import SelfMetrics
from tests.notify_support import alerting, fire, metric, running, wait_for
from tests.oncall_servers import DiscordServer, PagerDutyServer, TeamsServer, TelegramServer

pytestmark = pytest.mark.timeout(60)

BROKEN = "{{ (index .Alerts 3).Labels.route }}"
"""Parses (so it passes the load check) but fails at send time: there is one alert."""


@pytest.fixture
def services() -> Iterator[tuple[PagerDutyServer, DiscordServer, TelegramServer, TeamsServer]]:
    servers = (PagerDutyServer(), DiscordServer(), TelegramServer(), TeamsServer())
    for s in servers:
        s.start()
    yield servers
    for s in servers:
        s.stop()


def config(
    pd: str, discord: str, telegram: TelegramServer, teams: str, fields: str, extra: str = ""
) -> str:
    f = dict(line.split("=", 1) for line in fields.strip().splitlines())
    return f"""
{extra}
route: {{receiver: oncall, group_by: [alertname], group_interval: 200ms}}
receivers:
  - name: oncall
    pagerduty_configs:
      - routing_key: 0123456789abcdef0123456789abcdef
        url: {pd}
        description: '{f["pagerduty"]}'
        details: {{route: '{{{{ .CommonLabels.route }}}}'}}
    discord_configs:
      - webhook_url: "{discord}"
        title: '{f["discord"]}'
    telegram_configs:
      - api_url: {telegram.url}
        bot_token: "{telegram.token}"
        chat_id: 42
        message: '{f["telegram"]}'
    msteamsv2_configs:
      - webhook_url: "{teams}"
        text: '{f["teams"]}'
"""


async def test_templated_fields_render_alertmanagers_data(
    tmp_path: Path,
    services: tuple[PagerDutyServer, DiscordServer, TelegramServer, TeamsServer],
) -> None:
    pd, discord, telegram, teams = services
    (tmp_path / "oncall.tmpl").write_text(
        '{{ define "oncall.title" }}{{ .Status | toUpper }}: '
        "{{ .CommonAnnotations.summary }}{{ end }}"
    )
    fields = """
pagerduty={{ .CommonLabels.alertname }} on {{ .CommonLabels.route }}
discord={{ template "oncall.title" . }}
telegram=<b>{{ .CommonLabels.alertname }}</b> {{ .CommonAnnotations.summary }}
teams=**{{ len .Alerts.Firing }}** firing on {{ .CommonLabels.route }}
"""
    templates = f"templates: [{tmp_path / '*.tmpl'}]"
    cfg = alerting(config(pd.url, discord.url, telegram, teams.url, fields, templates))
    now = time.time()
    alert = fire("ChatErrors", now, route="/chat")
    alert.annotations = {"summary": "errors <5% & rising"}
    async with running(cfg, tmp_path) as n:
        n.send([alert], now)
        await wait_for(lambda: all(s.accepted for s in services), what="every service")
    assert [s.problems for s in services] == [[], [], [], []]
    assert pd.accepted[0]["payload"]["summary"] == "ChatErrors on /chat"
    assert pd.accepted[0]["payload"]["custom_details"]["route"] == "/chat"
    assert discord.accepted[0]["embeds"][0]["title"] == "FIRING: errors <5% & rising"
    # HTML mode: what the template prints is escaped, the template's own tags are kept.
    assert telegram.accepted[0]["text"] == "<b>ChatErrors</b> errors &lt;5% &amp; rising"
    assert telegram.messages[0]["text"] == "ChatErrors errors <5% & rising"
    card = teams.accepted[0]["attachments"][0]["content"]
    assert card["body"][1]["text"] == "**1** firing on /chat"


async def test_a_template_failing_at_send_time_sends_the_default_with_an_error_line(
    tmp_path: Path,
    services: tuple[PagerDutyServer, DiscordServer, TelegramServer, TeamsServer],
) -> None:
    pd, discord, telegram, teams = services
    fields = "\n".join(f"{k}={BROKEN}" for k in ("pagerduty", "discord", "telegram", "teams"))
    cfg = alerting(config(pd.url, discord.url, telegram, teams.url, fields))
    stats = SelfMetrics()
    now = time.time()
    async with running(cfg, tmp_path, stats) as n:
        n.send([fire("ChatErrors", now, route="/chat")], now)
        await wait_for(lambda: all(s.accepted for s in services), what="every service")
    assert [s.problems for s in services] == [[], [], [], []]
    event = pd.accepted[0]
    assert event["payload"]["summary"] == "[FIRING:1] ChatErrors (/chat)"
    assert "template error in description" in event["payload"]["custom_details"]["template_errors"]
    embed = discord.accepted[0]["embeds"][0]
    assert embed["title"] == "[FIRING:1] ChatErrors (/chat)"
    # the error line is escaped for Discord's markdown like any text chatwatch adds
    assert "\nchatwatch\\: template error in title\\: error calling index" in embed["description"]
    text = telegram.accepted[0]["text"]
    assert text.startswith("\n\nAlerts Firing:\nLabels:\n - alertname = ChatErrors\n")
    assert "\nchatwatch: template error in message: " in text
    card_text = teams.accepted[0]["attachments"][0]["content"]["body"][1]["text"]
    assert "# Alerts Firing:" in card_text and "template error in text" in card_text
    for kind in ("pagerduty", "discord", "telegram", "msteamsv2"):
        errors = metric(stats, "chatwatch_notification_template_errors_total", "oncall", kind)
        assert errors == 1, kind


def test_a_template_that_cannot_render_is_a_config_error() -> None:
    with pytest.raises(ValidationError) as exc:
        alerting("""
route: {receiver: oncall}
receivers:
  - name: oncall
    telegram_configs: [{bot_token: t, chat_id: 1, message: "{{ .Status | tolower }}"}]
    pagerduty_configs: [{routing_key: k, details: {x: '{{ template "nope" . }}'}}]
""")
    problems = {".".join(map(str, e["loc"])): e["msg"] for e in exc.value.errors()}
    assert "tolower" in problems["receivers.0.telegram_configs.0.message"]
    assert "nope" in problems["receivers.0.pagerduty_configs.0.details.x"]
