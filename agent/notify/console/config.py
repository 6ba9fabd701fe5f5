"""`console_configs`: log notifications instead of sending them."""

from __future__ import annotations

from agent.notify.common_config import IntegrationConfig


class ConsoleConfig(IntegrationConfig):
    """Logs each notification as one JSON line (for `make run` and debugging)."""

    send_resolved: bool = True
