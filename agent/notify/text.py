"""Text helpers the chat and paging integrations share: Alertmanager's truncation, and a
notification whose text from logs is escaped for the markup it will land in.

Alertmanager renders its default templates over the alerts as they are, so a label such
as `user="**boss** [x](https://evil)"` becomes formatting and a link in Discord or Teams.
chatwatch renders the same default templates over `escaped(notification, escape)`, where
every label and annotation (name and value) is escaped, so it shows as written. A field
the user templated renders over the notification as it is, as in Alertmanager: what it
prints is the template's business (Telegram's HTML mode escapes whatever is printed, as
Alertmanager's html/template does).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from agent.notify.notification import Notification
from agent.notify.template import TemplateSet, template_data

Escape = Callable[[str], str]


def truncate(text: str, limit: int) -> tuple[str, bool]:
    """Alertmanager's `TruncateInRunes`: at most `limit` characters, the last one `…`."""
    if len(text) <= limit:
        return text, False
    if limit <= 3:
        return text[:limit], True
    return text[: limit - 1] + "…", True


def escaped(n: Notification, escape: Escape) -> Notification:
    """A copy of `n` with every label and annotation name and value passed through
    `escape` (group key, fingerprints, times and URLs unchanged)."""

    def esc(d: dict[str, str]) -> dict[str, str]:
        return {escape(k): escape(v) for k, v in d.items()}

    return dataclasses.replace(
        n,
        group_labels=esc(n.group_labels),
        alerts=[
            dataclasses.replace(a, labels=esc(a.labels), annotations=esc(a.annotations))
            for a in n.alerts
        ],
    )


class Fields:
    """Renders the text fields of one message through the notification templates.

    A field left unset renders Alertmanager's default template (`default`), over the
    escaped notification when the integration gives an `escape`; a field the user set
    renders over the notification as it is, and if it fails, the default instead, with
    the failure logged and counted by the template set and kept for `error_lines()`, which
    the integration puts into the message so nobody gets an empty or silently wrong one.
    """

    def __init__(
        self,
        templates: TemplateSet,
        n: Notification,
        escape: Escape | None = None,
        html: bool = False,
        values: Escape = str,
    ) -> None:
        # `values`: applied to label and annotation values under the user's templates too
        # (what must never pass through from logs, such as a mention)
        self.user = templates.renderer(template_data(n, value=values), n.integration)
        self.default = (
            self.user
            if escape is None
            else templates.renderer(template_data(escaped(n, escape)), n.integration)
        )
        self.html = html

    def text(self, field: str, text: str | None, default: str) -> str:
        if text is None:
            return self.default.text(field, default, html=self.html)
        failures = len(self.user.errors)
        out = self.user.text(field, text, html=self.html)
        if len(self.user.errors) > failures:
            return self.default.text(field, default, html=self.html) if default else ""
        return out

    def error_lines(self) -> list[str]:
        lines = self.user.error_lines()
        if self.default is not self.user:
            lines += self.default.error_lines()
        return lines
