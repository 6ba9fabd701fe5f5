"""Slack incoming webhook: a Block Kit message with a plain `text` fallback.

Everything that came from logs (labels, annotations) is escaped (`&`, `<`, `>`), so a
log line cannot `<!channel>` a workspace or smuggle a link; and mrkdwn's markers are
neutralised, since Slack has no escape for them: a zero-width space on each side of `*`,
`_` and `~` keeps them from pairing up into bold, italics or strike-through, and a
backtick becomes U+02CB (modifier letter grave accent), so a label cannot close the code
span it is shown in. Slack answers 200 `ok`; errors come as 4xx with a short string
(`invalid_payload`, `channel_not_found`), which is logged and not retried; 429 carries
`Retry-After`, which the queue honours.
"""

from __future__ import annotations

from typing import Any

import orjson

from agent.notify.integration import Result, http_client, post
from agent.notify.notification import Notification, NotifiedAlert
from agent.notify.slack.config import SlackConfig

MAX_ALERTS_SHOWN = 10
"""Slack allows 50 blocks per message; the rest are summarised as `and N more`."""

COLOURS = {
    "resolved": "#2EB67D",
    "critical": "#E01E5A",
    "page": "#E01E5A",
    "error": "#E01E5A",
    "warning": "#ECB22E",
}
DEFAULT_COLOUR = "#439FE0"


_ZWSP = "\u200b"
_MRKDWN = str.maketrans({c: f"{_ZWSP}{c}{_ZWSP}" for c in "*_~"} | {"`": "\u02cb"})
_CODE = str.maketrans({"`": "\u02cb"})


def escape(text: str) -> str:
    """Text from logs shown as mrkdwn: Slack's control characters
    (https://api.slack.com/reference/surfaces/formatting#escaping) and its markers."""
    return _control(text).translate(_MRKDWN)


def escape_code(text: str) -> str:
    """Text from logs inside a `code span`: formatting markers are inert there, only a
    backtick could end the span."""
    return _control(text).translate(_CODE)


def _control(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def colour(notification: Notification) -> str:
    if notification.status == "resolved":
        return COLOURS["resolved"]
    severities = {a.labels.get("severity", "") for a in notification.firing}
    for sev in ("critical", "page", "error", "warning"):
        if sev in severities:
            return COLOURS[sev]
    return DEFAULT_COLOUR


def _alert_text(a: NotifiedAlert) -> str:
    summary = a.annotations.get("summary") or a.name
    lines = [f"*{escape(summary)}*" + (" (resolved)" if a.status == "resolved" else "")]
    description = a.annotations.get("description")
    if description:
        lines.append(escape(description))
    labels = ", ".join(f"{k}={v}" for k, v in sorted(a.labels.items()))
    lines.append(f"`{escape_code(labels)}`")
    return "\n".join(lines)[:3000]


def build_message(notification: Notification, cfg: SlackConfig) -> dict[str, Any]:
    title = escape(notification.title())
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*"[:3000]}}
    ]
    for a in notification.alerts[:MAX_ALERTS_SHOWN]:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _alert_text(a)}})
    hidden = len(notification.alerts) - MAX_ALERTS_SHOWN
    if hidden > 0:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"and {hidden} more"}]}
        )
    links = [a.generator_url for a in notification.alerts if a.generator_url][:1]
    if links or notification.external_url:
        parts = []
        if links:
            parts.append(f"<{_control(links[0])}|source>")
        if notification.external_url:
            parts.append(f"<{_control(notification.external_url)}|chatwatch>")
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(parts)}]}
        )
    msg: dict[str, Any] = {
        "text": title,
        "attachments": [{"color": colour(notification), "fallback": title, "blocks": blocks}],
    }
    for key in ("channel", "username", "icon_emoji", "icon_url"):
        value = getattr(cfg, key)
        if value:
            msg[key] = value
    if cfg.link_names:
        msg["link_names"] = True
    return msg


class Slack:
    kind = "slack"

    def __init__(self, receiver: str, index: int, cfg: SlackConfig) -> None:
        self.name = f"{receiver}/slack[{index}]"
        self.receiver = receiver
        self.send_resolved = cfg.send_resolved
        self.min_interval = 1.0 / cfg.max_per_second
        self.cfg = cfg
        self.client = http_client(cfg.timeout)

    async def notify(self, notification: Notification) -> Result:
        body = orjson.dumps(build_message(notification, self.cfg))
        url = self.cfg.api_url.get_secret_value()
        result, _ = await post(self.client, url, body, {"Content-Type": "application/json"}, [url])
        return result

    async def close(self) -> None:
        await self.client.aclose()
