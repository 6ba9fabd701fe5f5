"""`console_configs`: log notifications instead of sending them."""

from __future__ import annotations

from agent.notify.common_config import IntegrationConfig


class ConsoleConfig(IntegrationConfig):
    """Logs each notification (for `make run` and debugging): a readable block in text
    logs, one JSON line in JSON logs."""

    send_resolved: bool = True
