"""Config of `alerting:` (Alertmanager's route/receivers shape)."""

from __future__ import annotations

from typing import Any

from agent.configtypes import Model


class AlertingConfig(Model):
    route: dict[str, Any] | None = None
    receivers: list[dict[str, Any]] = []
    alertmanagers: list[dict[str, Any]] = []
