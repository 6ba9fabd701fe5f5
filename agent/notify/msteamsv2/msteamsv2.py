"""Microsoft Teams through Workflows: an Adaptive Card, as Alertmanager's notify/msteamsv2.

Office 365 connectors (incoming webhooks, `msteams_configs`) are being retired; a Teams
Workflow ("Post to a channel when a webhook request is received") takes a `message` whose
attachment is an Adaptive Card. Alertmanager sends a card of two TextBlocks, the title
(bold, coloured `Attention` when firing, `Good` when resolved) and the text, full width.

The title and text render their notification templates (Alertmanager's defaults when
unset); a field whose template fails renders its default and the text ends with an error
line. TextBlocks render a markdown subset (bold, italics, lists, links), so the default
templates render over alerts whose labels and annotations are neutralised: a zero-width
space on both sides of `*`, `_` and `~` keeps them from pairing up, one inside `](` keeps
a label from becoming a link, and one at the start of each line of a value keeps it from
becoming a heading or a list.

Workflows answer 202 Accepted. 429 (with `Retry-After` when given) and 5xx are retried,
other 4xx are not. The webhook URL never appears in an error or a log line.
"""

from __future__ import annotations

from typing import Any

from agent.notify.integration import HTTPReceiver, Result
from agent.notify.msteamsv2.config import DEFAULTS, MSTeamsV2Config
from agent.notify.notification import Notification
from agent.notify.template import TemplateSet
from agent.notify.text import Fields

COLOUR_FIRING = "Attention"
COLOUR_RESOLVED = "Good"

_ZWSP = "\u200b"
_MARKDOWN = str.maketrans(
    {c: f"{_ZWSP}{c}{_ZWSP}" for c in "*_~"}
    | {"[": f"[{_ZWSP}", "]": f"{_ZWSP}]", "(": f"{_ZWSP}(", "\n": f"\n{_ZWSP}"}
)


def escape(text: str) -> str:
    """Log text in a Teams (Adaptive Card) markdown TextBlock: shown as written, inert."""
    return text.translate(_MARKDOWN)


def adaptive_card(title: str, text: str, colour: str) -> dict[str, Any]:
    """Alertmanager's card: schema, version 1.2, title and text TextBlocks, full width."""
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.2",
        "body": [
            {
                "type": "TextBlock",
                "text": title,
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
                "style": "heading",
                "color": colour,
            },
            {"type": "TextBlock", "text": text, "wrap": True},
        ],
        "msteams": {"width": "full"},
    }


def build_message(
    n: Notification, cfg: MSTeamsV2Config, templates: TemplateSet | None = None
) -> dict[str, Any]:
    fields = Fields(templates or TemplateSet.default(), n, escape)
    title = fields.text("title", cfg.title, DEFAULTS["title"])
    text = fields.text("text", cfg.text, DEFAULTS["text"])
    errors = fields.error_lines()
    if errors:
        text = "\n\n".join([text.rstrip("\n"), *(escape(e) for e in errors)])
    colour = COLOUR_FIRING if n.status == "firing" else COLOUR_RESOLVED
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": adaptive_card(title, text, colour),
            }
        ],
    }


class MSTeamsV2(HTTPReceiver[MSTeamsV2Config]):
    kind = "msteamsv2"

    async def notify(self, notification: Notification) -> Result:
        message = build_message(notification, self.cfg, self.templates)
        result, _ = await self.post_json(self.cfg.webhook_url.get_secret_value(), message)
        return result
