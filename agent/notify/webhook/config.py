"""`webhook_configs`: one generic webhook receiver."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator

from agent.notify.common_config import BasicAuth, HTTPConfig, IntegrationConfig
from agent.support.configmodel import secret_http_url


class WebhookConfig(IntegrationConfig):
    """Alertmanager's webhook v4 payload, so existing webhook bridges keep working."""

    secret_fields: ClassVar[tuple[str, ...]] = ("url", "signing_secret")
    send_resolved: bool = True
    url: SecretStr
    max_alerts: int = Field(default=0, ge=0)
    """0 sends every alert; otherwise the first N and `truncatedAlerts` counts the rest."""
    headers: dict[str, str] = {}
    signing_secret: SecretStr | None = None
    """HMAC-SHA256 of the body, sent as `<signature_header>: sha256=<hex>`."""
    signature_header: str = "X-Chatwatch-Signature"
    basic_auth: BasicAuth | None = None
    """chatwatch's older spelling of `http_config: {basic_auth: ...}`."""
    http_config: HTTPConfig = HTTPConfig()
    """Alertmanager's client settings: authorization, basic_auth, tls_config, proxy_url,
    follow_redirects."""

    _url_is_http = field_validator("url")(secret_http_url)

    @model_validator(mode="after")
    def _one_basic_auth(self) -> WebhookConfig:
        h = self.http_config
        if self.basic_auth is not None and (h.basic_auth or h.authorization or h.bearer_token):
            raise ValueError("give credentials once: basic_auth or http_config, not both")
        return self
