"""Telegram: one `sendMessage` per notification, as Alertmanager's notify/telegram sends it.

Alertmanager talks to the Bot API through telebot, which POSTs JSON whose values are all
strings to `<api_url>/bot<token>/sendMessage`; this sends the same body. The bot token is
in the URL, so every error is redacted before it is logged.

The message renders its notification template (Alertmanager's default when unset). With
`parse_mode: HTML` (the default) whatever the template prints is HTML-escaped, as
Alertmanager's html/template does, so a label cannot open a tag or break the message; a
template that fails renders the default with an error line at the end. A message longer
than Telegram's 4096 visible characters (or 32 KiB of HTML) is replaced by Alertmanager's
notice, since cutting HTML could leave it unparseable. Other modes are cut at 4096
characters (`…` last). In the Markdown modes labels and annotations are escaped in the
default message (Telegram rejects a message whose markup does not parse); a template of
the user's must escape what it prints itself, and Alertmanager's default message does
not parse as MarkdownV2 at all (its ` - ` lines), as in Alertmanager.

The Bot API answers `{"ok": true, "result": {...}}`; errors are `{"ok": false,
"error_code": N, "description": ...}` with the same HTTP status. 429 carries
`parameters.retry_after` (seconds), which the queue waits for; 5xx is retried; other
errors (400 bad request, 401 bad token, 403 bot not in the chat) are not.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import orjson

from agent.notify.integration import DeliveryError, HTTPReceiver, Result, post, redact
from agent.notify.notification import Notification
from agent.notify.telegram.config import DEFAULT_MESSAGE, TelegramConfig
from agent.notify.template import TemplateSet, html_escape
from agent.notify.text import Fields, truncate

log = logging.getLogger("chatwatch.notify")

MAX_CHARACTERS = 4096
MAX_HTML_BYTES = 1 << 15
TOO_LONG = (
    "Alertmanager notification could not be sent: message length exceeds Telegram limits.\n"
    "\t\t\tPlease check the template used for producing the message content."
)
"""Alertmanager's replacement for an HTML message over the limits, byte for byte."""

_TAG = re.compile(r"<[^>]*>")
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});?")
_MARKDOWN = {
    "Markdown": str.maketrans({c: "\\" + c for c in "_*`["}),
    "MarkdownV2": str.maketrans({c: "\\" + c for c in "\\_*[]()~`>#+-=|{}.!"}),
}


def markdown_escaper(parse_mode: str) -> Callable[[str], str] | None:
    """Telegram's escaping of text in its Markdown modes (https://core.telegram.org/bots/
    api#formatting-options), for labels and annotations in the default message."""
    table = _MARKDOWN.get(parse_mode)
    return None if table is None else (lambda text: text.translate(table))


def visible_length(html: str) -> int:
    """Characters Telegram counts in an HTML message: tags are not, an entity is one."""
    return len(_ENTITY.sub("&", _TAG.sub("", html)))


def message_text(n: Notification, cfg: TelegramConfig, templates: TemplateSet) -> str:
    html = cfg.parse_mode == "HTML"
    fields = Fields(templates, n, markdown_escaper(cfg.parse_mode), html=html)
    text = fields.text("message", cfg.message, DEFAULT_MESSAGE)
    errors = fields.error_lines()
    if errors:
        lines = [html_escape(e) for e in errors] if html else errors
        text = "\n".join([text.rstrip("\n"), *lines])
    if html:
        if len(text.encode()) > MAX_HTML_BYTES or visible_length(text) > MAX_CHARACTERS:
            log.warning(
                "Telegram message too long; sent Alertmanager's notice instead",
                extra={"integration": n.integration, "max_characters": MAX_CHARACTERS},
            )
            return TOO_LONG
        return text
    cut, truncated = truncate(text, MAX_CHARACTERS)
    if truncated:
        log.warning(
            "Telegram message truncated",
            extra={"integration": n.integration, "max_characters": MAX_CHARACTERS},
        )
    return cut


def build_request(
    n: Notification, cfg: TelegramConfig, templates: TemplateSet | None = None
) -> dict[str, str]:
    """telebot's sendMessage parameters for Alertmanager's options (all strings)."""
    text = message_text(n, cfg, templates or TemplateSet.default())
    params = {"chat_id": str(cfg.chat_id), "text": text}
    if cfg.parse_mode:
        params["parse_mode"] = cfg.parse_mode
    params["disable_web_page_preview"] = "true"
    if cfg.disable_notifications:
        params["disable_notification"] = "true"
    if cfg.message_thread_id:
        params["message_thread_id"] = str(cfg.message_thread_id)
    return params


def _parameters(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


class Telegram(HTTPReceiver[TelegramConfig]):
    kind = "telegram"

    async def notify(self, notification: Notification) -> Result:
        token = self.cfg.bot_token.get_secret_value()
        url = f"{self.cfg.api_url.rstrip('/')}/bot{token}/sendMessage"
        body = orjson.dumps(build_request(notification, self.cfg, self.templates))
        secrets = [url, token, *self.cfg.http_config.secrets()]
        headers = {"Content-Type": "application/json"}
        (retry, err), resp = await post(self.client, url, body, headers, secrets)
        if resp is None:
            return retry, err
        answer = _parameters(resp.content)
        if err is None and answer.get("ok") is False:
            # A 2xx that says it failed: trust the body, as telebot does.
            description = str(answer.get("description", ""))[:200]
            return False, DeliveryError(redact(f"rejected: {description}", secrets), "client_error")
        if err is not None and resp.status_code == 429:
            parameters = answer.get("parameters")
            wait = parameters.get("retry_after") if isinstance(parameters, dict) else None
            if isinstance(wait, int | float) and wait >= 0:
                err.retry_after = float(wait)
        return retry, err
