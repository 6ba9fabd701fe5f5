"""`discord_configs`: one Discord channel webhook."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from pydantic import SecretStr, field_validator

from agent.notify.common_config import HTTPConfig, IntegrationConfig
from agent.support.configmodel import secret_http_url

DEFAULTS = {
    "title": '{{ template "discord.default.title" . }}',
    "message": '{{ template "discord.default.message" . }}',
}
"""Alertmanager's `DefaultDiscordConfig`."""


class DiscordConfig(IntegrationConfig):
    """Alertmanager's `discord_config`, field for field.

    `title`, `message` and `content` are notification templates; `title` and `message`
    default to Alertmanager's `discord.default.title` (the subject) and
    `discord.default.message` (the alert list). `content`, the plain message above the
    embed (where a role can be mentioned), defaults to none.
    """

    secret_fields: ClassVar[tuple[str, ...]] = ("webhook_url",)
    send_resolved: bool = True
    webhook_url: SecretStr
    """`https://discord.com/api/webhooks/<id>/<token>`: the token makes it a secret."""
    title: str | None = None
    """Default `{{ template "discord.default.title" . }}`."""
    message: str | None = None
    """Default `{{ template "discord.default.message" . }}`."""
    content: str = ""
    username: str = ""
    avatar_url: str = ""
    http_config: HTTPConfig = HTTPConfig()

    _url_is_http = field_validator("webhook_url")(secret_http_url)

    def template_fields(self) -> Iterator[tuple[str, str]]:
        for key in ("title", "message", "content"):
            text = getattr(self, key)
            if text:
                yield key, text
