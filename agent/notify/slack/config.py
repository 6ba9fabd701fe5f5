"""`slack_configs`: one Slack incoming webhook."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, field_validator

from agent.notify.common_config import IntegrationConfig
from agent.support.configmodel import secret_http_url


class SlackConfig(IntegrationConfig):
    """A Slack incoming webhook (Block Kit message with a `text` fallback)."""

    secret_fields: ClassVar[tuple[str, ...]] = ("api_url",)
    api_url: SecretStr
    channel: str | None = None
    username: str | None = None
    icon_emoji: str | None = None
    icon_url: str | None = None
    link_names: bool = False
    max_per_second: float = Field(default=1.0, gt=0)
    """Slack allows about one message per second per webhook."""

    _api_url_is_http = field_validator("api_url")(secret_http_url)
