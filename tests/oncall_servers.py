"""Stand-ins for PagerDuty, Microsoft Teams, Discord and Telegram on 127.0.0.1.

Each is a real HTTP server in a thread that behaves like the service's API as its
documentation describes it: it checks the request against the service's published schema
(as a JSON Schema, with the limits the service enforces on top), answers a valid request
as the service does, answers an invalid one with the service's error (so a test sees the
400 a real service would give, and `problems` says why), and plays the service's rate
limit when told to (`rate_limit()`), with the service's own 429 body and headers.

- PagerDuty Events API v2 (`POST /v2/enqueue`, https://developer.pagerduty.com/api-reference/
  368ae3d938c9e-send-an-event-to-pager-duty): 202 `{"status": "success", ...}`; 400
  `{"status": "invalid event", "message": "Event object is invalid", "errors": [...]}`;
  429 when throttled. It keeps the incidents it opened by `dedup_key`.
- Microsoft Teams Workflows (`POST /workflows/...`): a `message` whose attachment is an
  Adaptive Card (https://adaptivecards.io/explorer/AdaptiveCard.html); 202 with an empty
  body; 400 for a card Teams cannot render; 413 over 28 KB; 429 with `Retry-After`.
  The legacy connector (`POST /webhookb2/...`) takes a MessageCard and answers `1`.
- Discord (`POST /api/webhooks/<id>/<token>`, https://discord.com/developers/docs/resources/
  webhook#execute-webhook): 204; 400 `{"code": 50035, "message": "Invalid Form Body"}` or
  50006 for an empty message; 404 `Unknown Webhook` for another token; 429
  `{"message": "You are being rate limited.", "retry_after": 0.5, "global": false}`.
- Telegram Bot API (`POST /bot<token>/sendMessage`, https://core.telegram.org/bots/api#
  sendmessage): `{"ok": true, "result": <Message>}`; `{"ok": false, "error_code": 400,
  "description": "Bad Request: ..."}` (empty text, too long, HTML it cannot parse); 401
  for another token; 429 with `parameters.retry_after`.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jsonschema

from tests.notify_support import Reply, Request, free_port

JSON = (("Content-Type", "application/json"),)


def _json(status: int, body: Any, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status, json.dumps(body), JSON + headers)


def schema_errors(schema: dict[str, Any], doc: Any) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    ]


class ServiceServer:
    """The HTTP side shared by every stand-in: record, check, answer."""

    name = "service"

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[Request] = []
        self.accepted: list[Any] = []
        """Bodies the service accepted, parsed, in order."""
        self.problems: list[str] = []
        """Why requests were rejected, in the service's words and the schema's."""
        self.script: list[Reply] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rate_limit(self, times: int = 1) -> None:
        """The next `times` requests are answered with the service's 429."""
        self.script += [self.too_many_requests() for _ in range(times)]

    def too_many_requests(self) -> Reply:
        raise NotImplementedError

    def handle(self, path: str, body: bytes) -> Reply:
        raise NotImplementedError

    def reject(self, problems: list[str]) -> None:
        self.problems += problems

    def start(self) -> ServiceServer:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with stand_in._lock:
                    stand_in.requests.append(
                        Request(time.monotonic(), self.path, dict(self.headers.items()), body)
                    )
                    if stand_in.script:
                        reply = stand_in.script.pop(0)
                    elif "application/json" not in self.headers.get("Content-Type", ""):
                        stand_in.reject(["Content-Type is not application/json"])
                        reply = Reply(415, "")
                    else:
                        reply = stand_in.handle(self.path, body)
                data = reply.body.encode()
                self.send_response(reply.status)
                for k, v in reply.headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ServiceServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _parse(body: bytes) -> tuple[Any, str | None]:
    try:
        return json.loads(body), None
    except ValueError as exc:
        return None, f"body is not JSON: {exc}"


# -- PagerDuty -------------------------------------------------------------------------------

PAGERDUTY_EVENT = {
    "type": "object",
    "required": ["routing_key", "event_action"],
    "additionalProperties": False,
    "properties": {
        "routing_key": {"type": "string", "minLength": 32, "maxLength": 32},
        "event_action": {"enum": ["trigger", "acknowledge", "resolve"]},
        "dedup_key": {"type": "string", "minLength": 1, "maxLength": 255},
        "payload": {
            "type": "object",
            "required": ["summary", "source", "severity"],
            "additionalProperties": False,
            "properties": {
                "summary": {"type": "string", "minLength": 1, "maxLength": 1024},
                "source": {"type": "string", "minLength": 1},
                "severity": {"enum": ["critical", "error", "warning", "info"]},
                "timestamp": {"type": "string"},
                "component": {"type": "string"},
                "group": {"type": "string"},
                "class": {"type": "string"},
                "custom_details": {"type": "object"},
            },
        },
        "images": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["src"],
                "properties": {
                    "src": {"type": "string", "minLength": 1},
                    "href": {"type": "string"},
                    "alt": {"type": "string"},
                },
            },
        },
        "links": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["href"],
                "properties": {
                    "href": {"type": "string", "minLength": 1},
                    "text": {"type": "string"},
                },
            },
        },
        "client": {"type": "string"},
        "client_url": {"type": "string"},
    },
    # A trigger must say what happened; acknowledge and resolve only name the incident.
    "if": {"properties": {"event_action": {"const": "trigger"}}},
    "then": {"required": ["payload"]},
    "else": {"required": ["dedup_key"]},
}


class PagerDutyServer(ServiceServer):
    name = "pagerduty"

    def __init__(self) -> None:
        super().__init__()
        self.incidents: dict[str, str] = {}
        """dedup_key -> "triggered" | "resolved"."""

    @property
    def url(self) -> str:
        return f"{self.base}/v2/enqueue"

    def too_many_requests(self) -> Reply:
        return _json(
            429,
            {
                "status": "throttle event",
                "message": "Requests for this service are arriving too quickly. "
                "Please retry later.",
            },
        )

    def handle(self, path: str, body: bytes) -> Reply:
        if path != "/v2/enqueue":
            self.reject([f"unknown path {path}"])
            return _json(404, {"status": "not found"})
        event, error = _parse(body)
        problems = [error] if error else schema_errors(PAGERDUTY_EVENT, event)
        if not problems and len(body) > 512_000:
            problems = ["event exceeds 512 kB"]
        if problems:
            self.reject(problems)
            return _json(
                400,
                {
                    "status": "invalid event",
                    "message": "Event object is invalid",
                    "errors": problems,
                },
            )
        key = event.get("dedup_key") or f"auto-{len(self.accepted)}"
        self.incidents[key] = {"trigger": "triggered", "resolve": "resolved"}.get(
            event["event_action"], "acknowledged"
        )
        self.accepted.append(event)
        return _json(202, {"status": "success", "message": "Event processed", "dedup_key": key})


# -- Microsoft Teams -------------------------------------------------------------------------

_TEXT_BLOCK = {
    "type": "object",
    "required": ["type", "text"],
    "properties": {
        "type": {"const": "TextBlock"},
        "text": {"type": "string"},
        "color": {"enum": ["Default", "Dark", "Light", "Accent", "Good", "Warning", "Attention"]},
        "weight": {"enum": ["Default", "Lighter", "Bolder"]},
        "size": {"enum": ["Default", "Small", "Medium", "Large", "ExtraLarge"]},
        "style": {"enum": ["default", "heading"]},
        "wrap": {"type": "boolean"},
        "isSubtle": {"type": "boolean"},
        "maxLines": {"type": "integer"},
    },
}
ADAPTIVE_CARD = {
    "type": "object",
    "required": ["type", "version", "body"],
    "properties": {
        "$schema": {"type": "string"},
        "type": {"const": "AdaptiveCard"},
        "version": {"type": "string", "pattern": r"^1\.[0-5]$"},
        "body": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {
                        "enum": [
                            "TextBlock",
                            "RichTextBlock",
                            "Image",
                            "ImageSet",
                            "Container",
                            "ColumnSet",
                            "FactSet",
                            "ActionSet",
                            "Table",
                        ]
                    }
                },
                "if": {"properties": {"type": {"const": "TextBlock"}}},
                "then": _TEXT_BLOCK,
            },
        },
        "msteams": {
            "type": "object",
            "properties": {"width": {"enum": ["full"]}},
        },
    },
}
TEAMS_MESSAGE = {
    "type": "object",
    "required": ["type", "attachments"],
    "properties": {
        "type": {"const": "message"},
        "attachments": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["contentType", "content"],
                "properties": {
                    "contentType": {"const": "application/vnd.microsoft.card.adaptive"},
                    "contentUrl": {"type": ["string", "null"]},
                    "content": ADAPTIVE_CARD,
                },
            },
        },
    },
}
MESSAGE_CARD = {
    "type": "object",
    "required": ["@context", "type"],
    "properties": {
        "@context": {"const": "http://schema.org/extensions"},
        "type": {"const": "MessageCard"},
        "title": {"type": "string"},
        "summary": {"type": "string"},
        "text": {"type": "string"},
        "themeColor": {"type": "string", "pattern": "^[0-9A-Fa-f]{6}$"},
    },
    "anyOf": [
        {"required": ["summary"], "properties": {"summary": {"minLength": 1}}},
        {"required": ["text"], "properties": {"text": {"minLength": 1}}},
    ],
}
TEAMS_MAX_BYTES = 28 * 1024


class TeamsServer(ServiceServer):
    name = "msteams"

    @property
    def url(self) -> str:
        """A Workflows trigger URL, with its signature (a secret)."""
        return (
            f"{self.base}/workflows/a1b2/triggers/manual/paths/invoke?api-version=1&sig=s3cr3tSig"
        )

    @property
    def connector_url(self) -> str:
        return f"{self.base}/webhookb2/c0ffee@tenant/IncomingWebhook/0123456789abcdef/feed"

    def too_many_requests(self) -> Reply:
        return _json(
            429,
            {
                "error": {
                    "code": "WorkflowRequestsThrottled",
                    "message": "The request was throttled. Retry after the time in the "
                    "Retry-After header.",
                }
            },
            (("Retry-After", "1"),),
        )

    def handle(self, path: str, body: bytes) -> Reply:
        doc, error = _parse(body)
        legacy = path.startswith("/webhookb2/")
        if not legacy and "sig=s3cr3tSig" not in path:
            self.reject(["bad or missing workflow signature"])
            return _json(401, {"error": {"code": "DirectApiAuthorizationRequired"}})
        if len(body) > TEAMS_MAX_BYTES:
            self.reject([f"message of {len(body)} bytes exceeds 28 KB"])
            return Reply(413, "Webhook message delivery failed with error: RequestEntityTooLarge")
        problems = (
            [error] if error else schema_errors(MESSAGE_CARD if legacy else TEAMS_MESSAGE, doc)
        )
        if problems:
            self.reject(problems)
            if legacy:
                return Reply(400, "Summary or Text is required.")
            return _json(400, {"error": {"code": "InvalidRequestContent", "message": problems[0]}})
        self.accepted.append(doc)
        return Reply(200, "1") if legacy else Reply(202, "")


# -- Discord ---------------------------------------------------------------------------------

DISCORD_WEBHOOK = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "content": {"type": "string", "maxLength": 2000},
        "username": {"type": "string", "minLength": 1, "maxLength": 80},
        "avatar_url": {"type": "string"},
        "tts": {"type": "boolean"},
        "allowed_mentions": {"type": "object"},
        "embeds": {
            "type": "array",
            "maxItems": 10,
            "items": {
                "type": "object",
                "properties": {
                    "title": {"type": "string", "maxLength": 256},
                    "description": {"type": "string", "maxLength": 4096},
                    "url": {"type": "string"},
                    "color": {"type": "integer", "minimum": 0, "maximum": 0xFFFFFF},
                    "fields": {"type": "array", "maxItems": 25},
                },
            },
        },
    },
}


class DiscordServer(ServiceServer):
    name = "discord"
    token = "dIsCoRdToKeN-0123456789"

    @property
    def url(self) -> str:
        return f"{self.base}/api/webhooks/112233445566/{self.token}"

    def too_many_requests(self) -> Reply:
        return _json(
            429,
            {"message": "You are being rate limited.", "retry_after": 0.5, "global": False},
            (
                ("Retry-After", "1"),
                ("X-RateLimit-Limit", "5"),
                ("X-RateLimit-Remaining", "0"),
                ("X-RateLimit-Reset-After", "0.5"),
                ("X-RateLimit-Scope", "user"),
            ),
        )

    def handle(self, path: str, body: bytes) -> Reply:
        if path.split("?")[0] != f"/api/webhooks/112233445566/{self.token}":
            self.reject(["unknown webhook"])
            return _json(404, {"message": "Unknown Webhook", "code": 10015})
        doc, error = _parse(body)
        problems = [error] if error else schema_errors(DISCORD_WEBHOOK, doc)
        if not problems:
            embeds = doc.get("embeds") or []
            total = sum(len(e.get("title", "")) + len(e.get("description", "")) for e in embeds)
            if total > 6000:
                problems.append(f"embeds: {total} characters in all, over 6000")
            if not doc.get("content") and not embeds:
                self.reject(["Cannot send an empty message"])
                return _json(400, {"message": "Cannot send an empty message", "code": 50006})
        if problems:
            self.reject(problems)
            return _json(400, {"message": "Invalid Form Body", "code": 50035, "errors": problems})
        self.accepted.append(doc)
        return Reply(204, "")


# -- Telegram --------------------------------------------------------------------------------

TELEGRAM_SEND_MESSAGE = {
    "type": "object",
    "required": ["chat_id", "text"],
    "properties": {
        "chat_id": {"type": ["integer", "string"], "pattern": r"^(-?[0-9]+|@\w+)$"},
        "text": {"type": "string"},
        "parse_mode": {"enum": ["HTML", "Markdown", "MarkdownV2"]},
        "message_thread_id": {"type": ["integer", "string"], "pattern": "^[0-9]+$"},
        "disable_notification": {
            "type": ["boolean", "string"],
            "enum": [True, False, "true", "false"],
        },
        "disable_web_page_preview": {
            "type": ["boolean", "string"],
            "enum": [True, False, "true", "false"],
        },
    },
}
TELEGRAM_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
    "tg-emoji", "code", "pre", "blockquote",
}  # fmt: skip
_TAG = re.compile(r"<(/?)([a-zA-Z-]*)[^>]*>")
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});?")


def telegram_html_problem(text: str) -> str | None:
    """Telegram's HTML rules: only its tags, balanced; `<` only as a tag."""
    stack: list[str] = []
    pos = 0
    for m in _TAG.finditer(text):
        if "<" in text[pos : m.start()]:
            return f"Unsupported start tag at byte offset {text.index('<', pos)}"
        pos = m.end()
        closing, name = m.group(1), m.group(2).lower()
        if name not in TELEGRAM_TAGS:
            return f'Unsupported start tag "{name}" at byte offset {m.start()}'
        if closing:
            if not stack or stack.pop() != name:
                return f"Unexpected end tag at byte offset {m.start()}"
        else:
            stack.append(name)
    if "<" in text[pos:]:
        return f"Unsupported start tag at byte offset {text.index('<', pos)}"
    if stack:
        return f'Can\'t find end tag corresponding to start tag "{stack[-1]}"'
    return None


def telegram_visible(text: str, parse_mode: str | None) -> str:
    if parse_mode != "HTML":
        return text
    plain = _TAG.sub("", text)
    return _ENTITY.sub(lambda m: _decode_entity(m.group(0)), plain)


def _decode_entity(entity: str) -> str:
    return html.unescape(entity if entity.endswith(";") else entity + ";")


class TelegramServer(ServiceServer):
    name = "telegram"
    token = "123456789:AAF-tElEgRaMsEcReTtOkEn_0123456789"

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []
        """What a chat member would see: chat, thread, visible text, silent or not."""

    @property
    def url(self) -> str:
        return self.base

    def too_many_requests(self) -> Reply:
        return _json(
            429,
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 1",
                "parameters": {"retry_after": 1},
            },
        )

    def _error(self, code: int, description: str) -> Reply:
        self.reject([description])
        return _json(code, {"ok": False, "error_code": code, "description": description})

    def handle(self, path: str, body: bytes) -> Reply:
        m = re.fullmatch(r"/bot([^/]+)/(\w+)", path)
        if m is None or m.group(1) != self.token:
            return self._error(401, "Unauthorized")
        if m.group(2) != "sendMessage":
            return self._error(404, "Not Found")
        doc, error = _parse(body)
        problems = [error] if error else schema_errors(TELEGRAM_SEND_MESSAGE, doc)
        if problems:
            return self._error(400, "Bad Request: " + "; ".join(problems))
        text, mode = doc["text"], doc.get("parse_mode")
        if not text.strip():
            return self._error(400, "Bad Request: message text is empty")
        if mode == "HTML":
            problem = telegram_html_problem(text)
            if problem:
                return self._error(400, f"Bad Request: can't parse entities: {problem}")
        visible = telegram_visible(text, mode)
        if len(visible) > 4096:
            return self._error(400, "Bad Request: message is too long")
        self.accepted.append(doc)
        message = {
            "message_id": len(self.accepted),
            "chat": {"id": int(doc["chat_id"]), "type": "supergroup"},
            "date": int(time.time()),
            "text": visible,
        }
        if "message_thread_id" in doc:
            message["message_thread_id"] = int(doc["message_thread_id"])
        self.messages.append(
            message | {"silent": str(doc.get("disable_notification", "false")) == "true"}
        )
        return _json(200, {"ok": True, "result": message})


def agent_log_text(records: list[logging.LogRecord]) -> str:
    """Everything the agent would write for these records: messages and extras of its own
    loggers, and of any other logger at WARNING or above (it keeps httpx, which logs
    request URLs at INFO, at WARNING; see agent/support/logs.py)."""
    shown = [r for r in records if r.name.startswith("chatwatch") or r.levelno >= logging.WARNING]
    return "\n".join(f"{r.getMessage()} {r.__dict__}" for r in shown)
