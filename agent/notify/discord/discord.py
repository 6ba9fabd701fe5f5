"""Discord: one embed per notification, as Alertmanager's notify/discord sends it.

`{"content": ..., "embeds": [{"title", "description", "color"}]}`, the title and
description rendered from their notification templates (Alertmanager's defaults when
unset), with Alertmanager's limits (title 256, description 4096, content 2000
characters, `…` last) and colours (red firing, green resolved). Discord renders markdown
there, so the default templates render over alerts whose labels and annotations are
backslash-escaped: a label cannot bold, strike, link, quote or mention. Under the user's
own templates values print as they are, except mentions (`@everyone`, `<@id>`), which get
a zero-width space so that a log line cannot ping anyone (Alertmanager passes them). A
field whose template fails renders its default and the description ends with an error
line.

Discord answers 204. Its rate limit is a 429 whose JSON body says how long to wait
(`retry_after`, seconds, fractional) besides the `Retry-After` header; the body wins, and
the queue waits that long. 5xx is retried; other 4xx (unknown webhook, invalid form body)
are not. Alertmanager gives up on a 429; chatwatch waits and delivers. The webhook URL
(which holds its token) never appears in an error or a log line.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson

from agent.notify.discord.config import DEFAULTS, DiscordConfig
from agent.notify.integration import HTTPReceiver, Result
from agent.notify.notification import Notification
from agent.notify.template import TemplateSet
from agent.notify.text import Fields, truncate

log = logging.getLogger("chatwatch.notify")

MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_CONTENT = 2000
COLOUR_FIRING = 0x992D22
COLOUR_RESOLVED = 0x2ECC71

_MARKDOWN = str.maketrans({c: "\\" + c for c in "\\*_~`|[]()<>#-:@"})


def escape(text: str) -> str:
    """Log text in Discord markdown: each character that could start formatting, a link,
    a heading, a list, a quote, an emoji or a mention is backslash-escaped, which Discord
    renders as the character itself."""
    return text.translate(_MARKDOWN)


_MENTION = re.compile(r"@(?=everyone|here)|<(?=[@#])")


def no_mentions(text: str) -> str:
    """Log text under the user's own templates: mentions (`@everyone`, `@here`, `<@id>`,
    `<@&role>`, `<#channel>`) get a zero-width space after their first character, so a
    log line cannot ping anyone; everything else stays as the template prints it."""
    return _MENTION.sub(lambda m: m.group(0) + "\u200b", text)


def build_message(
    n: Notification, cfg: DiscordConfig, templates: TemplateSet | None = None
) -> dict[str, Any]:
    fields = Fields(templates or TemplateSet.default(), n, escape, values=no_mentions)
    title = fields.text("title", cfg.title, DEFAULTS["title"])
    description = fields.text("message", cfg.message, DEFAULTS["message"])
    content = fields.text("content", cfg.content, "")
    errors = fields.error_lines()
    if errors:
        description = "\n".join([description.rstrip("\n"), *(escape(e) for e in errors)])
    cut = []
    for field, text, limit in (
        ("title", title, MAX_TITLE),
        ("message", description, MAX_DESCRIPTION),
        ("content", content, MAX_CONTENT),
    ):
        text, truncated = truncate(text, limit)
        if truncated:
            log.warning(
                "Discord message field truncated",
                extra={"integration": n.integration, "field": field, "max_characters": limit},
            )
        cut.append(text)
    title, description, content = cut
    colour = COLOUR_FIRING if n.status == "firing" else COLOUR_RESOLVED
    msg: dict[str, Any] = {
        "content": content,
        "embeds": [{"title": title, "description": description, "color": colour}],
    }
    if cfg.username:
        msg["username"] = cfg.username
    if cfg.avatar_url:
        msg["avatar_url"] = cfg.avatar_url
    return msg


def retry_after(body: bytes) -> float | None:
    """`retry_after` (seconds) from Discord's 429 body, if it has one."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    value = data.get("retry_after") if isinstance(data, dict) else None
    if isinstance(value, int | float) and value >= 0:
        return float(value)
    return None


class Discord(HTTPReceiver[DiscordConfig]):
    kind = "discord"

    async def notify(self, notification: Notification) -> Result:
        message = build_message(notification, self.cfg, self.templates)
        url = self.cfg.webhook_url.get_secret_value()
        (retry, err), resp = await self.post_json(url, message)
        if err is not None and resp is not None and resp.status_code == 429:
            wait = retry_after(resp.content)
            if wait is not None:
                err.retry_after = wait
        return retry, err
