"""`email_configs`: one SMTP smarthost and the message's addresses and headers.

`smarthost`, `from` and the authentication keys may come from `alerting.global`
(`smtp_smarthost`, `smtp_from`, ...: agent/notify/global_config.py). `to` and `from` are
notification templates, as in Alertmanager (`to: '{{ .GroupLabels.team }}@example.org'`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator

from agent.notify.common_config import IntegrationConfig, TLSConfig
from agent.support.configmodel import host_port


class EmailConfig(IntegrationConfig):
    secret_fields: ClassVar[tuple[str, ...]] = ("auth_password", "auth_secret")
    to: str = Field(min_length=1)
    """Recipients, comma-separated (`Name <address>` allowed); a notification template."""
    from_: str = Field(alias="from", min_length=1)
    """The sender (one address); a notification template. Default: `global.smtp_from`."""
    smarthost: str
    """host:port; port 465 means implicit TLS, anything else plain SMTP (+ STARTTLS).
    Default: `global.smtp_smarthost`."""
    hello: str = "localhost"
    auth_username: str | None = None
    """Authenticate as this user (with the first mechanism the server offers that a
    credential is given for: CRAM-MD5 with `auth_secret`, PLAIN or LOGIN with
    `auth_password`)."""
    auth_password: SecretStr | None = None
    auth_identity: str | None = None
    """PLAIN authentication's identity (authzid); usually left out."""
    auth_secret: SecretStr | None = None
    """CRAM-MD5 authentication's secret."""
    implicit_tls: bool | None = None
    """TLS from the first byte (SMTPS). Default: true when the port is 465."""
    require_tls: bool = True
    """Upgrade with STARTTLS and fail if the server does not offer it (Alertmanager's default)."""
    tls_config: TLSConfig = TLSConfig()
    headers: dict[str, str] = {}
    """Every value is a notification template; `Subject` replaces chatwatch's subject."""
    html: str | None = None
    """HTML body template (Alertmanager's is `{{ template "email.default.html" . }}`);
    values printed by its actions are HTML-escaped (html/template). Unset: chatwatch's."""
    text: str | None = None
    """Plain-text body template. Unset: chatwatch's text body."""

    def template_fields(self) -> Iterator[tuple[str, str]]:
        yield "to", self.to
        yield "from", self.from_
        for key in ("html", "text"):
            value = getattr(self, key)
            if value:
                yield key, value
        for name, value in self.headers.items():
            yield f"headers.{name}", value

    @field_validator("smarthost")
    @classmethod
    def _host_port(cls, value: str) -> str:
        return host_port(value)
