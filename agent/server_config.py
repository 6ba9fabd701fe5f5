"""Config of the HTTP server (kept apart from server.py so config loading stays light)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr, field_validator

from agent.configtypes import Model


class TLSConfig(Model):
    cert_file: str
    key_file: str


class BasicAuthConfig(Model):
    """One user for `Authorization: Basic`; `password_file` reads a mounted secret."""

    secret_fields: ClassVar[tuple[str, ...]] = ("password",)
    username: str
    password: SecretStr

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        if not value or ":" in value:
            raise ValueError("expected a non-empty user name without ':' (Basic auth splits on it)")
        return value

    @field_validator("password")
    @classmethod
    def _password(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("the password is empty (is the password_file empty?)")
        return value


class ServerConfig(Model):
    listen: str = "0.0.0.0:9317"
    tls: TLSConfig | None = None
    basic_auth: BasicAuthConfig | None = None
    """Protects /metrics and the API; health endpoints stay open for the kubelet."""
    external_url: str | None = None

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        _, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"expected host:port such as 0.0.0.0:9317, got {value!r}")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]") or "0.0.0.0"

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])
