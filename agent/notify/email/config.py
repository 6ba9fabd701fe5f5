"""`email_configs`: one SMTP smarthost and the message's addresses and headers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator

from agent.notify.common_config import IntegrationConfig, TLSConfig


class EmailConfig(IntegrationConfig):
    secret_fields: ClassVar[tuple[str, ...]] = ("auth_password",)
    to: str
    from_: str = Field(alias="from")
    smarthost: str
    """host:port; port 465 means implicit TLS, anything else plain SMTP (+ STARTTLS)."""
    hello: str = "localhost"
    auth_username: str | None = None
    auth_password: SecretStr | None = None
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
        for key in ("html", "text"):
            value = getattr(self, key)
            if value:
                yield key, value
        for name, value in self.headers.items():
            yield f"headers.{name}", value

    @field_validator("smarthost")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"expected host:port such as smtp.example.org:587, got {value!r}")
        return value
