"""Console receiver: each notification as one JSON log line (for `make run`, debugging)."""

from __future__ import annotations

import logging

from agent.notify.console.config import ConsoleConfig
from agent.notify.integration import Result
from agent.notify.notification import Notification

log = logging.getLogger("chatwatch.notify.console")


class Console:
    kind = "console"

    def __init__(self, receiver: str, index: int, cfg: ConsoleConfig) -> None:
        self.name = f"{receiver}/console[{index}]"
        self.receiver = receiver
        self.send_resolved = cfg.send_resolved
        self.min_interval = 0.0

    async def notify(self, notification: Notification) -> Result:
        data = notification.template_data()
        log.info(notification.title(), extra={"notification": data})
        return False, None

    async def close(self) -> None:
        return None
