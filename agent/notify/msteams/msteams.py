"""Microsoft Teams through an Office 365 connector: a MessageCard, as Alertmanager's
notify/msteams sends it.

`{"@context", "type": "MessageCard", "title", "summary", "text", "themeColor"}`, red
(`8C1A1A`) firing and green (`2DC72D`) resolved. A connector card's text is markdown and
also renders limited HTML (links, images), so text from logs has `&`, `<` and `>` turned
into entities and its markdown neutralised as for Workflows (msteamsv2.escape). 429 and
5xx are retried, other 4xx are not; the webhook URL never appears in an error or a log
line.
"""

from __future__ import annotations

from typing import Any

from agent.notify.integration import HTTPReceiver, Result
from agent.notify.msteams.config import DEFAULTS, MSTeamsConfig
from agent.notify.msteamsv2.msteamsv2 import escape as escape_markdown
from agent.notify.notification import Notification
from agent.notify.template import TemplateSet
from agent.notify.text import Fields


def escape(text: str) -> str:
    """Log text in a connector card: no HTML tag or entity, no markdown, shown as written."""
    return escape_markdown(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


COLOUR_FIRING = "8C1A1A"
COLOUR_RESOLVED = "2DC72D"


def build_message(
    n: Notification, cfg: MSTeamsConfig, templates: TemplateSet | None = None
) -> dict[str, Any]:
    fields = Fields(templates or TemplateSet.default(), n, escape)
    title = fields.text("title", cfg.title, DEFAULTS["title"])
    summary = fields.text("summary", cfg.summary, DEFAULTS["summary"])
    text = fields.text("text", cfg.text, DEFAULTS["text"])
    errors = fields.error_lines()
    if errors:
        text = "\n\n".join([text.rstrip("\n"), *(escape(e) for e in errors)])
    return {
        "@context": "http://schema.org/extensions",
        "type": "MessageCard",
        "title": title,
        "summary": summary,
        "text": text,
        "themeColor": COLOUR_FIRING if n.status == "firing" else COLOUR_RESOLVED,
    }


class MSTeams(HTTPReceiver[MSTeamsConfig]):
    kind = "msteams"

    async def notify(self, notification: Notification) -> Result:
        message = build_message(notification, self.cfg, self.templates)
        result, _ = await self.post_json(self.cfg.webhook_url.get_secret_value(), message)
        return result
