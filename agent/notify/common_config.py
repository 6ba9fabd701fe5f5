"""Config every integration shares (Alertmanager's config/common, Prometheus' http_config).

`IntegrationConfig` is the base of each integration's own model (`slack/config.py` ...);
`TLSConfig` and `BasicAuth` configure the HTTP and SMTP clients built in integration.py.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr

from agent.support.configmodel import Duration, Model


class TLSConfig(Model):
    ca_file: str | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False


class BasicAuth(Model):
    secret_fields: ClassVar[tuple[str, ...]] = ("password",)
    username: str
    password: SecretStr = SecretStr("")


class IntegrationConfig(Model):
    send_resolved: bool = False
    timeout: Duration = 10.0
    """Per request; a receiver slower than this counts as failed and is retried."""
