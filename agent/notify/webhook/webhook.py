"""Generic webhook: Alertmanager's webhook v4 JSON, so existing bridges keep working."""

from __future__ import annotations

import hashlib
import hmac

import orjson

from agent.notify.integration import Result, http_client, post
from agent.notify.notification import Notification
from agent.notify.webhook.config import WebhookConfig


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the raw body>`, as GitHub-style receivers verify it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Webhook:
    kind = "webhook"

    def __init__(self, receiver: str, index: int, cfg: WebhookConfig) -> None:
        self.name = f"{receiver}/webhook[{index}]"
        self.receiver = receiver
        self.send_resolved = cfg.send_resolved
        self.min_interval = 0.0
        self.cfg = cfg
        self.client = http_client(cfg.timeout, http_config=cfg.http_config)

    def payload(self, notification: Notification) -> bytes:
        return orjson.dumps(notification.template_data(self.cfg.max_alerts))

    async def notify(self, notification: Notification) -> Result:
        body = self.payload(notification)
        headers = {"Content-Type": "application/json", **self.cfg.headers}
        secrets = [self.cfg.url.get_secret_value(), *self.cfg.http_config.secrets()]
        if self.cfg.signing_secret is not None:
            key = self.cfg.signing_secret.get_secret_value()
            headers[self.cfg.signature_header] = signature(key, body)
            secrets.append(key)
        auth = None
        if self.cfg.basic_auth is not None:
            auth = (self.cfg.basic_auth.username, self.cfg.basic_auth.password.get_secret_value())
            secrets.append(auth[1])
        result, _ = await post(self.client, secrets[0], body, headers, secrets, auth)
        return result

    async def close(self) -> None:
        await self.client.aclose()
