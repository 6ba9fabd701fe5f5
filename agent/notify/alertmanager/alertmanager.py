"""Forwarding to Alertmanager: `POST <url>/api/v2/alerts` with a batch of alerts.

Not part of the route tree: like Prometheus, chatwatch hands every alert to every
configured Alertmanager, which then does its own routing. forward.py decides what to send.
"""

from __future__ import annotations

import time

import orjson

from agent.notify.alertmanager.config import AlertmanagerTarget
from agent.notify.integration import Result, http_client, post
from agent.notify.notification import Notification, rfc3339


class Alertmanager:
    kind = "alertmanager"

    def __init__(self, index: int, cfg: AlertmanagerTarget) -> None:
        self.name = f"alertmanager[{index}]"
        self.receiver = "alertmanager"
        self.send_resolved = True
        self.min_interval = 0.0
        self.cfg = cfg
        self.url = f"{cfg.url}/api/v2/alerts"
        self.client = http_client(cfg.timeout, cfg.tls_config)

    async def notify(self, notification: Notification) -> Result:
        """The batch travels as `extra['alerts']` (postable alerts built by the Forwarder).

        endsAt of firing alerts is set at send time, so a batch that waited in the queue
        while Alertmanager was down does not arrive already expired.
        """
        alerts = notification.extra["alerts"]
        valid_until = rfc3339(time.time() + notification.extra["valid_for"])
        for i in notification.extra["firing"]:
            alerts[i]["endsAt"] = valid_until
        body = orjson.dumps(alerts)
        headers = {"Content-Type": "application/json", **self.cfg.headers}
        secrets: list[str] = []
        auth = None
        if self.cfg.basic_auth is not None:
            auth = (self.cfg.basic_auth.username, self.cfg.basic_auth.password.get_secret_value())
            secrets.append(auth[1])
        result, _ = await post(self.client, self.url, body, headers, secrets, auth)
        return result

    async def close(self) -> None:
        await self.client.aclose()
