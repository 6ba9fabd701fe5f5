"""`msteams_configs`: one Microsoft Teams channel through an Office 365 connector
(incoming webhook), which Microsoft is retiring; prefer `msteamsv2_configs`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from pydantic import SecretStr, field_validator

from agent.notify.common_config import HTTPConfig, IntegrationConfig
from agent.support.configmodel import secret_http_url

DEFAULTS = {
    "title": '{{ template "msteams.default.title" . }}',
    "summary": '{{ template "msteams.default.summary" . }}',
    "text": '{{ template "msteams.default.text" . }}',
}
"""Alertmanager's `DefaultMSTeamsConfig`."""


class MSTeamsConfig(IntegrationConfig):
    """Alertmanager's `msteams_config`, field for field.

    `title`, `summary` and `text` are notification templates, by default Alertmanager's
    `msteams.default.*` (the subject, the subject, the alert list in markdown).
    """

    secret_fields: ClassVar[tuple[str, ...]] = ("webhook_url",)
    send_resolved: bool = True
    webhook_url: SecretStr
    title: str | None = None
    """Default `{{ template "msteams.default.title" . }}`."""
    summary: str | None = None
    """Default `{{ template "msteams.default.summary" . }}`."""
    text: str | None = None
    """Default `{{ template "msteams.default.text" . }}`."""
    http_config: HTTPConfig = HTTPConfig()

    _url_is_http = field_validator("webhook_url")(secret_http_url)

    def template_fields(self) -> Iterator[tuple[str, str]]:
        for key in ("title", "summary", "text"):
            text = getattr(self, key)
            if text:
                yield key, text
