"""Config of the HTTP server (kept apart from server.py so config loading stays light)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr, field_validator

from agent.configtypes import Model


class TLSConfig(Model):
    cert_file: str
    key_file: str


class BasicAuthConfig(Model):
    secret_fields: ClassVar[tuple[str, ...]] = ("password",)
    username: str
    password: SecretStr


class ServerConfig(Model):
    listen: str = "0.0.0.0:9317"
    tls: TLSConfig | None = None
    basic_auth: BasicAuthConfig | None = None
    """Protects /metrics and the API; health endpoints stay open for the kubelet."""
    external_url: str | None = None

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"expected host:port such as 0.0.0.0:9317, got {value!r}")
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]") or "0.0.0.0"

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])
