"""`telegram_configs`: one Telegram chat, written to by a bot."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Literal

from pydantic import SecretStr, field_validator

from agent.notify.common_config import HTTPConfig, IntegrationConfig
from agent.support.configmodel import http_url

API_URL = "https://api.telegram.org"
"""Alertmanager's global `telegram_api_url`."""
DEFAULT_MESSAGE = '{{ template "telegram.default.message" . }}'


class TelegramConfig(IntegrationConfig):
    """Alertmanager's `telegram_config`, field for field.

    `message` is a notification template, by default Alertmanager's
    `telegram.default.message` (the alert list), sent with `parse_mode: HTML` unless told
    otherwise; in HTML mode whatever the template prints is HTML-escaped (`safeHtml`
    opts out), as Alertmanager renders it with html/template.
    """

    secret_fields: ClassVar[tuple[str, ...]] = ("bot_token", "chat_id")
    send_resolved: bool = True
    api_url: str = API_URL
    bot_token: SecretStr
    """The bot's token (`123456:ABC-...`); it is part of every request URL."""
    chat_id: int
    """`chat_id_file` is read as a secret file too (a number)."""
    message_thread_id: int = 0
    """A topic of a forum supergroup; 0 sends to the chat itself."""
    message: str | None = None
    """Default `{{ template "telegram.default.message" . }}`."""
    disable_notifications: bool = False
    parse_mode: Literal["", "HTML", "Markdown", "MarkdownV2"] = "HTML"
    http_config: HTTPConfig = HTTPConfig()

    @field_validator("api_url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        return http_url(value)

    @field_validator("chat_id")
    @classmethod
    def _chat(cls, value: int) -> int:
        if value == 0:
            raise ValueError("missing chat_id or chat_id_file on telegram_config")
        return value

    def template_fields(self) -> Iterator[tuple[str, str]]:
        if self.message:
            yield "message", self.message
