"""Each receiver against a real server on 127.0.0.1: what arrives is what a user would see."""

from __future__ import annotations

import hashlib
import hmac
import io
import itertools
import json
import logging
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from aiosmtpd.controller import Controller

from agent.notify.console.config import ConsoleConfig
from agent.notify.console.console import Console
from agent.notify.notification import Notification, NotifiedAlert
from agent.support.logs import JSONFormatter, TextFormatter
from agent.support.selfmetrics import SelfMetrics
from tests.notify_support import (
    HookServer,
    Mailbox,
    Reply,
    SMTPServer,
    alerting,
    email_config,
    fire,
    free_port,
    metric,
    resolve,
    running,
    settled,
    wait_for,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def hook() -> Iterator[HookServer]:
    server = HookServer().start()
    yield server
    server.stop()


# -- webhook -----------------------------------------------------------------------------------


async def test_webhook_receives_alertmanager_v4_payload_signed(
    tmp_path: Path, hook: HookServer
) -> None:
    cfg = alerting(f"""
route: {{receiver: bridge, group_by: [alertname], group_interval: 200ms}}
receivers:
  - name: bridge
    webhook_configs:
      - url: {hook.url}
        max_alerts: 1
        headers: {{X-Team: chat}}
        signing_secret: topsecret
""")
    stats = SelfMetrics()
    now = time.time()
    a = fire("HighErrorRate", now - 5, route="/chat", severity="page")
    b = fire("HighErrorRate", now - 5, route="/login", severity="page")
    async with running(cfg, tmp_path, stats) as n:
        n.send([a, b], now)
        await wait_for(lambda: hook.requests, what="firing webhook")
        n.send([resolve(a, now + 1), resolve(b, now + 1)], now + 1)
        await wait_for(lambda: len(hook.requests) >= 2, what="resolved webhook")
        # counted once the receiver's answer is in, a moment after it got the request
        await wait_for(
            lambda: metric(stats, "chatwatch_notifications_total", "bridge", "webhook") == 2,
            what="both notifications counted",
        )

    first, second = hook.requests
    body = first.json()
    assert body == {
        "receiver": "bridge",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "HighErrorRate", "route": "/chat", "severity": "page"},
                "annotations": a.annotations,
                "startsAt": body["alerts"][0]["startsAt"],
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://chatwatch.test:9317/graph",
                "fingerprint": body["alerts"][0]["fingerprint"],
            }
        ],
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {"alertname": "HighErrorRate", "severity": "page"},
        "commonAnnotations": {},
        "externalURL": "http://chatwatch.test:9317",
        "version": "4",
        "groupKey": '{}:{alertname="HighErrorRate"}',
        "truncatedAlerts": 1,
    }
    assert len(body["alerts"][0]["fingerprint"]) == 16
    assert body["alerts"][0]["startsAt"].endswith("Z")
    assert first.headers["X-Team"] == "chat"
    expected = "sha256=" + hmac.new(b"topsecret", first.body, hashlib.sha256).hexdigest()
    assert first.headers["X-Chatwatch-Signature"] == expected

    resolved = second.json()
    assert resolved["status"] == "resolved"
    assert resolved["alerts"][0]["status"] == "resolved"
    assert resolved["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
    assert metric(stats, "chatwatch_notifications_total", "bridge", "webhook") == 2
    latency = stats.family("chatwatch_notification_latency_seconds")
    assert latency is not None and latency.get(("bridge", "webhook")) == 2


# -- Slack -------------------------------------------------------------------------------------

SLACK = """
route: {{receiver: slack, group_by: [alertname], group_interval: 200ms}}
receivers:
  - name: slack
    slack_configs: [{{api_url: "{url}", send_resolved: true, channel: "#alerts"}}]
delivery: {{initial_backoff: 200ms, max_backoff: 1s}}
"""


async def test_slack_message_escapes_log_text_so_it_cannot_ping(
    tmp_path: Path, hook: HookServer
) -> None:
    now = time.time()
    alert = fire("BadInput", now, severity="critical", user="<!channel> & <@U123>")
    alert.annotations = {"summary": "user wrote <!here>", "description": "<https://evil|click>"}
    async with running(alerting(SLACK.format(url=hook.url)), tmp_path) as n:
        n.send([alert], now)
        await wait_for(lambda: hook.requests, what="slack message")
    raw = hook.requests[0].body.decode()
    msg = hook.requests[0].json()
    for dangerous in ("<!channel>", "<!here>", "<@U123>", "<https://evil"):
        assert dangerous not in raw
    assert "&lt;!channel&gt; &amp; &lt;@U123&gt;" in raw
    assert msg["text"] == "[FIRING:1] BadInput (critical &lt;!channel&gt; &amp; &lt;@U123&gt;)"
    assert msg["channel"] == "#alerts"
    attachment = msg["attachments"][0]
    assert attachment["color"] == "#E01E5A"
    texts = [b["text"]["text"] for b in attachment["blocks"] if b["type"] == "section"]
    assert texts[0] == f"*{msg['text']}*"
    assert "*user wrote &lt;!here&gt;*" in texts[1]
    assert "&lt;https://evil|click&gt;" in texts[1]


async def test_slack_message_keeps_log_text_from_formatting_or_leaving_its_code_span(
    tmp_path: Path, hook: HookServer
) -> None:
    now = time.time()
    alert = fire("BadInput", now, user="x` *all caps* ~gone~ `y")
    alert.annotations = {"summary": "*urgent* _now_ ~fine~ `code`"}
    async with running(alerting(SLACK.format(url=hook.url)), tmp_path) as n:
        n.send([alert], now)
        await wait_for(lambda: hook.requests, what="slack message")
    msg = hook.requests[0].json()
    blocks = msg["attachments"][0]["blocks"]
    summary, labels = blocks[1]["text"]["text"].split("\n")
    zwsp = "\u200b"
    # outside code: no marker stands next to the text it would format
    for marker in "*_~":
        assert f"{marker}urgent" not in summary and f"{marker}now" not in summary
    assert summary.startswith("*") and summary.endswith("*")  # our own bold stays
    assert summary.replace(zwsp, "").replace("\u02cb", "`") == "**urgent* _now_ ~fine~ `code`*"
    # inside the code span: exactly our two backticks, the label's own are not backticks
    assert labels.count("`") == 2 and labels.startswith("`") and labels.endswith("`")
    assert "\u02cb *all caps* ~gone~ \u02cby" in labels  # no zero-width spaces in code


async def test_slack_invalid_payload_is_not_retried_and_logged(
    tmp_path: Path, hook: HookServer, caplog: pytest.LogCaptureFixture
) -> None:
    hook.script = [Reply(400, "invalid_payload")]
    stats = SelfMetrics()
    now = time.time()
    with caplog.at_level(logging.INFO, logger="chatwatch.notify"):
        async with running(alerting(SLACK.format(url=hook.url)), tmp_path, stats) as n:
            n.send([fire("X", now)], now)
            await wait_for(lambda: hook.requests, what="slack attempt")
            await wait_for(
                lambda: metric(
                    stats, "chatwatch_notifications_failed_total", "slack", "slack", "client_error"
                ),
                what="failure counted",
            )
            assert await settled(n) == []  # dropped from the queue: no retry will come
    assert len(hook.requests) == 1
    rejected = [r for r in caplog.records if "not retrying" in r.getMessage()]
    assert len(rejected) == 1
    assert "invalid_payload" in rejected[0].__dict__["error"]
    assert hook.url not in caplog.text  # the webhook URL is a secret


async def test_slack_server_error_is_retried_then_delivered(
    tmp_path: Path, hook: HookServer
) -> None:
    hook.script = [Reply(500, "oops"), Reply(503, "busy")]
    stats = SelfMetrics()
    now = time.time()
    async with running(alerting(SLACK.format(url=hook.url)), tmp_path, stats) as n:
        n.send([fire("X", now)], now)
        await wait_for(lambda: len(hook.requests) >= 3, what="two retries")
        await wait_for(lambda: not n.queues["slack/slack[0]"].items, what="queue drained")
    bodies = hook.bodies()
    assert bodies[0] == bodies[1] == bodies[2]
    assert (
        metric(stats, "chatwatch_notifications_failed_total", "slack", "slack", "server_error") == 2
    )
    assert metric(stats, "chatwatch_notifications_total", "slack", "slack") == 3


async def test_slack_at_most_one_message_per_second(tmp_path: Path, hook: HookServer) -> None:
    now = time.time()
    async with running(alerting(SLACK.format(url=hook.url)), tmp_path) as n:
        n.send([fire("A", now), fire("B", now), fire("C", now)], now)
        await wait_for(lambda: len(hook.requests) >= 3, what="three messages")
    times = [r.at for r in hook.requests]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(g >= 0.95 for g in gaps), gaps


# -- email -------------------------------------------------------------------------------------


async def test_email_over_starttls_with_auth_html_and_text(tmp_path: Path) -> None:
    now = time.time()
    alert = fire("LLMErrors", now, model="gpt\r\nBcc: victim@example.org")
    alert.annotations = {"summary": "<script>alert(1)</script> & more", "description": "5% errors"}
    with SMTPServer(tmp_path) as smtp:
        async with running(alerting(email_config(smtp)), tmp_path) as n:
            n.send([alert], now)
            await wait_for(lambda: smtp.mailbox.messages, what="email delivered")
    (msg,) = smtp.mailbox.messages
    (envelope,) = smtp.mailbox.envelopes
    assert envelope.rcpt_tos == ["oncall@example.org"]
    assert envelope.mail_from == "chatwatch@example.org"
    assert msg["Subject"] == "[FIRING:1] LLMErrors (gpt Bcc: victim@example.org)"
    assert msg["Bcc"] is None  # the CRLF from the log did not start a new header
    assert msg["X-Priority"] == "1"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    assert "<script>alert(1)</script> & more" in text.get_content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html.get_content()
    assert "<script>" not in html.get_content()


async def test_email_require_tls_fails_when_starttls_not_offered(tmp_path: Path) -> None:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    stats = SelfMetrics()
    try:
        cfg = alerting(f"""
route: {{receiver: mail, group_interval: 200ms}}
receivers:
  - name: mail
    email_configs: [{{to: a@example.org, from: b@example.org, smarthost: "127.0.0.1:{port}"}}]
delivery: {{initial_backoff: 200ms, max_backoff: 1s}}
""")
        async with running(cfg, tmp_path, stats) as n:
            n.send([fire("X", time.time())], time.time())
            await wait_for(
                lambda: (
                    metric(stats, "chatwatch_notifications_failed_total", "mail", "email", "tls")
                    >= 2
                ),
                what="STARTTLS refusal counted and retried",
            )
    finally:
        controller.stop()
    assert mailbox.messages == []


# -- console -----------------------------------------------------------------------------------


async def test_console_logs_notification_as_json(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = alerting("route: {receiver: log}\nreceivers: [{name: log, console_configs: [{}]}]")
    now = time.time()
    with caplog.at_level(logging.INFO, logger="chatwatch.notify.console"):
        async with running(cfg, tmp_path) as n:
            n.send([fire("Demo", now)], now)
            await wait_for(
                lambda: [r for r in caplog.records if r.name == "chatwatch.notify.console"],
                what="console line",
            )
    record = next(r for r in caplog.records if r.name == "chatwatch.notify.console")
    assert record.getMessage() == "[FIRING:1] Demo"
    assert record.__dict__["notification"]["alerts"][0]["labels"] == {"alertname": "Demo"}


async def test_console_prints_one_readable_block_in_text_logs_and_json_in_json_logs() -> None:
    now = time.time()
    alerts = [
        NotifiedAlert(
            labels={"alertname": "ChatbotErrors", "route": "/api/chat", "severity": "page"},
            annotations={"summary": "5xx answers on /api/chat", "value": "0.23"},
            starts_at=now - 125,
            ends_at=None,
            generator_url="http://chatwatch:9317/graph?g0.expr=x&g0.tab=1",
            fingerprint="0123456789abcdef",
        ),
        NotifiedAlert(
            labels={"alertname": "ChatbotErrors", "route": "/api/login", "severity": "page"},
            annotations={"summary": "5xx answers on /api/login"},
            starts_at=now - 600,
            ends_at=now - 60,
            generator_url="",
            fingerprint="fedcba9876543210",
        ),
    ]
    notification = Notification(
        "log", "log/console[0]", '{}:{alertname="ChatbotErrors"}',
        {"alertname": "ChatbotErrors"}, alerts, "http://chatwatch:9317", now,
    )  # fmt: skip
    console = Console("log", 0, ConsoleConfig())
    logger = logging.getLogger("chatwatch.notify.console")
    outputs = {}
    for name, formatter in (("text", TextFormatter()), ("json", JSONFormatter())):
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        logger.addHandler(handler)
        level, logger.level = logger.level, logging.INFO
        try:
            await console.notify(notification)
        finally:
            logger.removeHandler(handler)
            logger.level = level
        outputs[name] = stream.getvalue()

    head, *block = outputs["text"].rstrip("\n").split("\n")
    assert head.endswith("INFO    chatwatch.notify.console: [FIRING:1] ChatbotErrors (page)")
    assert block[0] == "  FIRING    ChatbotErrors  route=/api/chat  severity=page"
    assert block[1] == "            summary  5xx answers on /api/chat"
    assert block[2] == "            value    0.23"
    assert block[3].startswith("            since    ") and block[3].endswith("(2m5s ago)")
    assert block[4] == "            graph    http://chatwatch:9317/graph?g0.expr=x&g0.tab=1"
    assert block[5] == "  RESOLVED  ChatbotErrors  route=/api/login  severity=page"
    assert block[6] == "            summary  5xx answers on /api/login"
    assert block[7].startswith("            resolved ") and block[7].endswith(", after 9m")
    assert len(block) == 8, "one block, no dump of the payload"
    assert "notification=" not in outputs["text"] and "{'" not in outputs["text"]

    (line,) = outputs["json"].splitlines()
    record = json.loads(line)
    assert record["msg"] == "[FIRING:1] ChatbotErrors (page)"
    assert record["notification"]["alerts"][1]["status"] == "resolved"
    assert "_human" not in record


async def test_email_with_implicit_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, ssl_context=ctx)
    controller.start()
    try:
        cfg = alerting(f"""
route: {{receiver: mail}}
receivers:
  - name: mail
    email_configs:
      - to: a@example.org
        from: b@example.org
        smarthost: "127.0.0.1:{port}"
        implicit_tls: true
        tls_config: {{ca_file: {ca_file}}}
""")
        async with running(cfg, tmp_path) as n:
            n.send([fire("Smtps", time.time())], time.time())
            await wait_for(lambda: mailbox.messages, what="email over implicit TLS")
    finally:
        controller.stop()
    assert mailbox.messages[0]["Subject"] == "[FIRING:1] Smtps"
