"""Slack incoming webhook: chatwatch's Block Kit message, or Alertmanager's attachment.

Which one: a config that sets any of Alertmanager's attachment fields (`title`, `text`,
`fields`, ... see slack/config.py) gets Alertmanager's message, every field rendered from
its notification template (or Alertmanager's default) and encoded as Go's encoding/json
does (`<` as `\u003c`, a final newline), so what Slack receives is what Alertmanager
would have posted. Such a message shows what the templates make of the data, with one
difference from Alertmanager: label and annotation values (text from logs) have Slack's
control characters escaped (`&`, `<`, `>`, as Slack asks), so a log line cannot
`<!channel>` a workspace or smuggle a link through a template; mrkdwn markers in them
are left as they are (templates decide the formatting there). A field whose template
fails at send time falls back to Alertmanager's default and the attachment's text ends
with an error line naming it.

Otherwise chatwatch's own Block Kit message, described below (`channel`, `username`,
`icon_emoji` and `icon_url` are templates in both).

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
from agent.notify.slack.config import DEFAULTS, SlackConfig
from agent.notify.template import Renderer, TemplateSet, template_data

MAX_TITLE_RUNES = 1024
"""Slack's limit for an attachment title; Alertmanager cuts longer ones and adds `…`."""

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


def build_message(
    notification: Notification, cfg: SlackConfig, templates: TemplateSet | None = None
) -> dict[str, Any]:
    """The message for Slack: Alertmanager's when the config asks for it, else ours."""
    templates = templates or TemplateSet.default()
    if cfg.alertmanager_style:
        data = template_data(notification, value=_control)
        return alertmanager_message(cfg, templates.renderer(data, notification.integration))
    render = templates.renderer(template_data(notification), notification.integration)
    return block_message(notification, cfg, render)


def alertmanager_message(cfg: SlackConfig, render: Renderer) -> dict[str, Any]:
    """Alertmanager's notify/slack request, field for field and in its JSON key order."""

    def field(key: str) -> str:
        return render.text(key, cfg.template(key), DEFAULTS.get(key, ""))

    channel = render.text("channel", cfg.channel or "")
    title = field("title")
    if len(title) > MAX_TITLE_RUNES:
        title = title[: MAX_TITLE_RUNES - 1] + "…"
    att: dict[str, Any] = {
        "title": title,
        "title_link": field("title_link"),
        "pretext": field("pretext"),
        "text": field("text"),
        "fallback": field("fallback"),
        "callback_id": field("callback_id"),
    }
    if cfg.fields:
        att["fields"] = [
            _omit_empty(
                {
                    "title": render.text(f"fields[{i}].title", f.title),
                    "value": render.text(f"fields[{i}].value", f.value),
                    "short": f.short if f.short is not None else cfg.short_fields,
                },
                keep=("short",),  # a *bool in Alertmanager: false is still sent
            )
            for i, f in enumerate(cfg.fields)
        ]
    if cfg.actions:
        att["actions"] = [_action(render, i, a) for i, a in enumerate(cfg.actions)]
    att["image_url"] = field("image_url")
    att["thumb_url"] = field("thumb_url")
    att["footer"] = field("footer")
    att["color"] = field("color")
    att["mrkdwn_in"] = cfg.mrkdwn_in or ["fallback", "pretext", "text"]
    errors = render.error_lines()
    if errors:  # visible in the message, never an empty or silently wrong one
        att["text"] = "\n".join([att["text"], *errors] if att["text"] else errors)
    req: dict[str, Any] = {
        "channel": channel,
        "username": field("username"),
        "icon_emoji": field("icon_emoji"),
        "icon_url": field("icon_url"),
        "link_names": cfg.link_names,
        "attachments": [_omit_empty(att, keep=("text", "fallback", "callback_id", "footer"))],
    }
    return _omit_empty(req, keep=("attachments",))


def _action(render: Renderer, i: int, a: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        key: render.text(f"actions[{i}].{key}", getattr(a, key))
        for key in ("type", "text", "url", "style", "name", "value")
    }
    if a.confirm is not None:
        out["confirm"] = _omit_empty(
            {
                key: render.text(f"actions[{i}].confirm.{key}", getattr(a.confirm, key))
                for key in ("text", "title", "ok_text", "dismiss_text")
            }
        )
    return _omit_empty(out)


def _omit_empty(obj: dict[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """Go's `omitempty`: empty strings, false, empty lists and nil left out."""
    return {k: v for k, v in obj.items() if k in keep or v not in ("", False, None, [])}


def go_json(payload: dict[str, Any]) -> bytes:
    """Go's json.Encoder.Encode: HTML characters and U+2028/9 escaped, newline at the end."""
    body = orjson.dumps(payload)
    for raw, escaped in (
        (b"<", b"\\u003c"),
        (b">", b"\\u003e"),
        (b"&", b"\\u0026"),
        ("\u2028".encode(), b"\\u2028"),
        ("\u2029".encode(), b"\\u2029"),
    ):
        body = body.replace(raw, escaped)
    return body + b"\n"


def block_message(notification: Notification, cfg: SlackConfig, render: Renderer) -> dict[str, Any]:
    """chatwatch's own message: Block Kit sections, text from logs escaped."""
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
        value = render.text(key, cfg.template(key))
        if value:
            msg[key] = value
    errors = render.error_lines()
    if errors:
        text = "\n".join(escape(e) for e in errors)[:3000]
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": text}]})
    if cfg.link_names:
        msg["link_names"] = True
    return msg


class Slack:
    kind = "slack"

    def __init__(
        self, receiver: str, index: int, cfg: SlackConfig, templates: TemplateSet | None = None
    ) -> None:
        self.name = f"{receiver}/slack[{index}]"
        self.receiver = receiver
        self.send_resolved = cfg.send_resolved
        self.min_interval = 1.0 / cfg.max_per_second
        self.cfg = cfg
        self.templates = templates or TemplateSet.default()
        self.client = http_client(cfg.timeout, http_config=cfg.http_config)

    async def notify(self, notification: Notification) -> Result:
        message = build_message(notification, self.cfg, self.templates)
        body = go_json(message) if self.cfg.alertmanager_style else orjson.dumps(message)
        url = self.cfg.api_url.get_secret_value()
        secrets = [url, *self.cfg.http_config.secrets()]
        headers = {"Content-Type": "application/json"}
        result, _ = await post(self.client, url, body, headers, secrets)
        return result

    async def close(self) -> None:
        await self.client.aclose()
