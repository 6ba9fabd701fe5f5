"""Config of the HTTP server (kept apart from serve.py so config loading stays light), and
`ServerError`: a valid config the server still cannot use."""

from __future__ import annotations

import platform
from typing import ClassVar, Literal

from pydantic import SecretStr, field_validator, model_validator

from agent.support.configmodel import Model


class ServerError(Exception):
    """The server cannot start for a reason the user can fix (port taken, bad TLS files).

    The message names the config key (`server.listen`, `server.tls.cert_file`)."""


class TLSConfig(Model):
    """HTTPS for every endpoint, named as in Prometheus' web config (`tls_server_config`).

    Paths are relative to the config file's folder. With `client_auth_type:
    RequireAndVerifyClientCert` the kubelet's HTTPS probes, which present no client
    certificate, fail: use tcpSocket probes or `VerifyClientCertIfGiven` then.
    """

    cert_file: str
    key_file: str
    client_ca_file: str | None = None
    client_auth_type: Literal[
        "NoClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"
    ] = "NoClientCert"
    min_version: Literal["TLS12", "TLS13"] = "TLS12"

    @model_validator(mode="after")
    def _client_ca(self) -> TLSConfig:
        if self.client_auth_type != "NoClientCert" and not self.client_ca_file:
            raise ValueError(
                f"client_auth_type {self.client_auth_type} needs client_ca_file: "
                "the CA that signed the client certificates"
            )
        return self


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
    enable_admin_api: bool = False
    """Without basic auth or required client certificates, the write endpoints (POST
    /-/reload, creating and expiring silences) answer 403 unless this is true: set it only
    on a network where everyone who can reach chatwatch may change it."""

    @property
    def writes_allowed(self) -> bool:
        """Whether write endpoints are on: clients authenticate, or the user said so."""
        client_certs = self.tls is not None and self.tls.client_auth_type == (
            "RequireAndVerifyClientCert"
        )
        return self.enable_admin_api or self.basic_auth is not None or client_certs

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

    @property
    def advertised_url(self) -> str:
        """`external_url`, or this host and the listen port: the URL alerts link to
        (`generatorURL`, `$externalURL`) and notifications carry as `externalURL`.
        `chatwatch run` and `chatwatch replay` both take it from here, so a replay
        renders and routes alerts exactly as the agent would."""
        if self.external_url:
            return self.external_url
        host, _, port = self.listen.rpartition(":")
        if host in ("", "0.0.0.0", "[::]", "::"):
            host = platform.node() or "localhost"
        return f"http://{host}:{port}"
