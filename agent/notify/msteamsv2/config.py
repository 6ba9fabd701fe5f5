"""`msteamsv2_configs`: one Microsoft Teams channel through a Workflows (Power Automate)
webhook."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from pydantic import SecretStr, field_validator

from agent.notify.common_config import HTTPConfig, IntegrationConfig
from agent.support.configmodel import secret_http_url

DEFAULTS = {
    "title": '{{ template "msteamsv2.default.title" . }}',
    "text": '{{ template "msteamsv2.default.text" . }}',
}
"""Alertmanager's `DefaultMSTeamsV2Config`."""


class MSTeamsV2Config(IntegrationConfig):
    """Alertmanager's `msteamsv2_config`, field for field.

    `title` and `text` are notification templates, by default Alertmanager's
    `msteamsv2.default.title` (the subject) and `msteamsv2.default.text` (the alert list,
    markdown).
    """

    secret_fields: ClassVar[tuple[str, ...]] = ("webhook_url",)
    send_resolved: bool = True
    webhook_url: SecretStr
    """The workflow's "When a Teams webhook request is received" URL (it carries a
    signature, `sig=...`, so it is a secret)."""
    title: str | None = None
    """Default `{{ template "msteamsv2.default.title" . }}`."""
    text: str | None = None
    """Default `{{ template "msteamsv2.default.text" . }}`."""
    http_config: HTTPConfig = HTTPConfig()

    _url_is_http = field_validator("webhook_url")(secret_http_url)

    def template_fields(self) -> Iterator[tuple[str, str]]:
        for key in ("title", "text"):
            text = getattr(self, key)
            if text:
                yield key, text
