"""PagerDuty: one event per notification, as Alertmanager's notify/pagerduty sends it.

A group that fires sends `trigger`, a group whose alerts all resolved sends `resolve`,
both with `dedup_key` = SHA-256 of the group key (Alertmanager's `Key.Hash()`), so
PagerDuty folds every notification of one group into one incident and the resolve closes
it. With `service_key` the same goes to the v1 API (`incident_key`, `event_type`).

Every text field renders its notification template (Alertmanager's default when unset).
The summary is cut to 1024 characters (`…` last) and an event over 512 kB loses its
custom details, as in Alertmanager. PagerDuty shows plain text, so nothing is escaped. A
field whose template fails renders its default instead and the event's custom details
get `template_errors` naming it (Alertmanager would not send the event at all).

Events API v2 answers 202; 429 (throttled) and 5xx are retried, 400 (invalid event) is
not. The v1 API throttles with 403, retried too. The routing key never appears in an
error or a log line.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import orjson

from agent.notify.integration import DeliveryError, HTTPReceiver, Result, post, redact
from agent.notify.notification import Notification
from agent.notify.pagerduty.config import DEFAULT_DETAILS, DEFAULTS, PagerdutyConfig
from agent.notify.template import TemplateSet
from agent.notify.text import Fields, truncate

log = logging.getLogger("chatwatch.notify")

MAX_SUMMARY = 1024
"""Characters of `payload.summary` (v1: `description`) PagerDuty accepts."""
MAX_EVENT_BYTES = 512_000
TOO_LARGE = (
    "Custom details have been removed because the original event exceeds the maximum size of 512kB"
)


FALLBACKS = DEFAULTS | {"source": DEFAULTS["client"], "severity": "error"}
"""What a field renders when unset or when its template fails: Alertmanager's default
(`source` is `client`'s, as Alertmanager copies it)."""


def dedup_key(group_key: str) -> str:
    """Alertmanager's `notify.Key.Hash()`: hex SHA-256 of the group key."""
    return hashlib.sha256(group_key.encode()).hexdigest()


def build_event(
    n: Notification, cfg: PagerdutyConfig, key: str, templates: TemplateSet | None = None
) -> dict[str, Any]:
    """The JSON body, keys and omissions as Alertmanager's `pagerDutyMessage`."""
    fields = Fields(templates or TemplateSet.default(), n)

    def text(name: str, value: str | None) -> str:
        return fields.text(name, value, FALLBACKS.get(name, ""))

    action = "trigger" if n.status == "firing" else "resolve"
    details = {
        k: fields.text(f"details.{k}", v, DEFAULT_DETAILS.get(k, ""))
        for k, v in (DEFAULT_DETAILS | cfg.details).items()
    }
    description, truncated = truncate(text("description", cfg.description), MAX_SUMMARY)
    if truncated:
        log.debug("PagerDuty summary truncated", extra={"max_characters": MAX_SUMMARY})
    client = text("client", cfg.client)
    client_url = text("client_url", cfg.client_url)
    msg: dict[str, Any]
    if cfg.service_key is not None:
        msg = {
            "service_key": key,
            "incident_key": dedup_key(n.group_key),
            "event_type": action,
            "description": description,
            "event_action": "",
            "payload": None,
        }
        if action == "trigger":
            msg |= {"client": client, "client_url": client_url}
        msg["details"] = details
    else:
        payload = {
            "summary": description,
            "source": text("source", cfg.source if cfg.source is not None else cfg.client),
            "severity": text("severity", cfg.severity),
            "class": text("class", cfg.class_),
            "component": text("component", cfg.component),
            "group": text("group", cfg.group),
            "custom_details": details,
        }
        images = [
            {
                "src": text(f"images[{i}].src", image.src),
                "alt": text(f"images[{i}].alt", image.alt),
                "href": text(f"images[{i}].href", image.href),
            }
            for i, image in enumerate(cfg.images)
        ]
        links = [
            {
                "href": text(f"links[{i}].href", link.href),
                "text": text(f"links[{i}].text", link.text),
            }
            for i, link in enumerate(cfg.links)
        ]
        msg = {
            "routing_key": key,
            "dedup_key": dedup_key(n.group_key),
            "event_action": action,
            "payload": _omit_empty(payload, keep=("summary", "source", "severity")),
            "client": client,
            "client_url": client_url,
            "images": [i for i in images if i["src"]],
            "links": [link for link in links if link["href"]],
        }
    errors = fields.error_lines()
    if errors:
        details["template_errors"] = "\n".join(errors)
    return _omit_empty(msg, keep=("event_action", "payload"))


def _omit_empty(d: dict[str, Any], keep: tuple[str, ...]) -> dict[str, Any]:
    """Go's `omitempty`: empty strings, maps and lists are left out."""
    return {k: v for k, v in d.items() if k in keep or v not in ("", None, {}, [])}


def encode(event: dict[str, Any]) -> bytes:
    body = orjson.dumps(event)
    if len(body) <= MAX_EVENT_BYTES:
        return body
    log.warning(
        "PagerDuty event too large; custom details removed",
        extra={"bytes": len(body), "max_bytes": MAX_EVENT_BYTES},
    )
    if isinstance(event.get("payload"), dict):
        event["payload"]["custom_details"] = {"error": TOO_LARGE}
    else:
        event["details"] = {"error": TOO_LARGE}
    return orjson.dumps(event)


def _error_details(body: bytes) -> str:
    """PagerDuty's 400 body, `{"message": ..., "errors": [...]}`, as one line."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(data, dict):
        return ""
    errors = data.get("errors") or []
    return f"{data.get('message', '')}: {','.join(str(e) for e in errors)}"


class Pagerduty(HTTPReceiver[PagerdutyConfig]):
    kind = "pagerduty"

    def _key(self) -> str:
        secret = self.cfg.routing_key or self.cfg.service_key
        assert secret is not None  # the config requires one
        return secret.get_secret_value()

    async def notify(self, notification: Notification) -> Result:
        key = self._key()
        body = encode(build_event(notification, self.cfg, key, self.templates))
        secrets = [key, *self.cfg.http_config.secrets()]
        headers = {"Content-Type": "application/json"}
        (retry, err), resp = await post(self.client, self.cfg.endpoint(), body, headers, secrets)
        if err is None or resp is None:
            return retry, err
        if self.cfg.service_key is not None and resp.status_code == 403:
            # Events API v1 throttles with 403 (Alertmanager retries it).
            retry = True
            err = DeliveryError(str(err), "rate_limited")
        if resp.status_code == 400:
            detail = _error_details(resp.content)
            if detail:
                err.args = (redact(f"rejected with 400: {detail}", secrets),)
        return retry, err
