"""Config every integration shares (Alertmanager's config/common, Prometheus' http_config).

`IntegrationConfig` is the base of each integration's own model (`slack/config.py` ...);
`TLSConfig`, `BasicAuth` and `HTTPConfig` configure the HTTP and SMTP clients built in
integration.py. `HTTPConfig` is the part of Prometheus' HTTPClientConfig that
Alertmanager's receivers use: `authorization` (or the older `bearer_token`),
`basic_auth`, `tls_config`, `proxy_url` and `follow_redirects`; every secret also takes
`<name>_file`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar
from urllib.parse import urlsplit

from pydantic import SecretStr, field_validator, model_validator

from agent.support.configmodel import Duration, Model, http_url


class TLSConfig(Model):
    ca_file: str | None = None
    cert_file: str | None = None
    """Client certificate (with key_file) for receivers that ask for one."""
    key_file: str | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False

    @model_validator(mode="after")
    def _pair(self) -> TLSConfig:
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("cert_file and key_file go together: give both or neither")
        return self


class BasicAuth(Model):
    secret_fields: ClassVar[tuple[str, ...]] = ("password",)
    username: str
    password: SecretStr = SecretStr("")


class Authorization(Model):
    """`Authorization: <type> <credentials>` on every request."""

    secret_fields: ClassVar[tuple[str, ...]] = ("credentials",)
    type: str = "Bearer"
    credentials: SecretStr | None = None

    @field_validator("type")
    @classmethod
    def _not_basic(cls, value: str) -> str:
        if value.strip().lower() == "basic":
            raise ValueError("use basic_auth instead of authorization type Basic")
        return value.strip() or "Bearer"


class HTTPConfig(Model):
    """Alertmanager's `http_config` of a receiver (Prometheus' HTTPClientConfig subset)."""

    secret_fields: ClassVar[tuple[str, ...]] = ("bearer_token",)
    authorization: Authorization | None = None
    bearer_token: SecretStr | None = None
    """The older spelling of `authorization: {credentials: ...}`."""
    basic_auth: BasicAuth | None = None
    tls_config: TLSConfig = TLSConfig()
    proxy_url: str | None = None
    follow_redirects: bool = True
    """Prometheus' default; a redirect to another host does not carry the credentials."""

    @field_validator("proxy_url")
    @classmethod
    def _proxy(cls, value: str | None) -> str | None:
        return http_url(value) if value else value

    @model_validator(mode="after")
    def _one_auth(self) -> HTTPConfig:
        given = [
            name
            for name, set_ in (
                ("authorization", self.authorization is not None),
                ("bearer_token", self.bearer_token is not None),
                ("basic_auth", self.basic_auth is not None),
            )
            if set_
        ]
        if len(given) > 1:
            raise ValueError(f"at most one of authorization, bearer_token, basic_auth: got {given}")
        return self

    def auth_header(self) -> str | None:
        """The Authorization header value, if any (basic auth is left to the client)."""
        if self.authorization is not None and self.authorization.credentials is not None:
            return f"{self.authorization.type} {self.authorization.credentials.get_secret_value()}"
        if self.bearer_token is not None:
            return f"Bearer {self.bearer_token.get_secret_value()}"
        return None

    def secrets(self) -> list[str]:
        """Every secret this config sends, to keep them out of logs and errors."""
        out = []
        if self.authorization is not None and self.authorization.credentials is not None:
            out.append(self.authorization.credentials.get_secret_value())
        if self.bearer_token is not None:
            out.append(self.bearer_token.get_secret_value())
        if self.basic_auth is not None:
            out.append(self.basic_auth.password.get_secret_value())
        if self.proxy_url:
            out.append(urlsplit(self.proxy_url).password or "")
        return [s for s in out if s]


class IntegrationConfig(Model):
    send_resolved: bool = False
    timeout: Duration = 10.0
    """Per request; a receiver slower than this counts as failed and is retried."""

    def template_fields(self) -> Iterator[tuple[str, str]]:
        """(key, text) of every field rendered as a notification template, so the config
        can check them all at load; `key` is the path below this config (`fields[0].value`)."""
        return iter(())
