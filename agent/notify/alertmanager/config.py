"""`alertmanagers`: where every alert is forwarded (outside the route tree)."""

from __future__ import annotations

from pydantic import field_validator

from agent.notify.common_config import BasicAuth, TLSConfig
from agent.support.configmodel import Duration, Model


class AlertmanagerTarget(Model):
    """An Alertmanager to forward alerts to (`POST <url>/api/v2/alerts`)."""

    url: str
    timeout: Duration = 10.0
    basic_auth: BasicAuth | None = None
    headers: dict[str, str] = {}
    tls_config: TLSConfig = TLSConfig()

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")
