"""What every receiver integration looks like, and the HTTP helpers they share.

An integration builds its payload, sends it once, and says whether a retry makes sense
(Alertmanager's `Notify(ctx, alerts...) (bool, error)`). Retrying, backoff and rate limits
live in queue.py, so a new integration is one small folder.
"""

from __future__ import annotations

import email.utils
import ssl
import time
from typing import Any, Generic, Protocol, TypeVar

import httpx
import orjson

from agent.notify.common_config import HTTPConfig, TLSConfig
from agent.notify.notification import Notification
from agent.notify.template import TemplateSet


class DeliveryError(Exception):
    """A failed attempt. `reason` labels chatwatch_notifications_failed_total."""

    def __init__(self, message: str, reason: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after


Result = tuple[bool, DeliveryError | None]
"""(retry makes sense, error or None on success)."""


class Integration(Protocol):
    name: str
    """`<receiver>/<kind>[<index>]`."""
    kind: str
    receiver: str
    send_resolved: bool
    min_interval: float
    """Seconds between two messages to this integration (Slack: 1)."""

    async def notify(self, notification: Notification) -> Result: ...

    async def close(self) -> None: ...


def redact(text: str, secrets: list[str]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "<secret>")
    return text


def ssl_context(tls: TLSConfig) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=tls.ca_file)
    if tls.cert_file and tls.key_file:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class _ServerNameClient(httpx.AsyncClient):
    """A client that checks the server's certificate for `tls_config.server_name`."""

    def __init__(self, server_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._server_name = server_name

    def build_request(self, *args: Any, **kwargs: Any) -> httpx.Request:
        extensions = dict(kwargs.pop("extensions", None) or {})
        extensions.setdefault("sni_hostname", self._server_name)
        return super().build_request(*args, extensions=extensions, **kwargs)


def http_client(
    timeout: float, tls: TLSConfig | None = None, http_config: HTTPConfig | None = None
) -> httpx.AsyncClient:
    """One client per integration: connection reuse, and a timeout on every phase.

    With `http_config` (Alertmanager's per-receiver HTTP client settings): its TLS, its
    credentials on every request (httpx drops them on a redirect to another origin), its
    proxy and its redirect policy. Without it, redirects are not followed."""
    if http_config is not None:
        tls = http_config.tls_config
    verify: ssl.SSLContext | bool = ssl_context(tls) if tls is not None else True
    headers = {"User-Agent": "chatwatch"}
    kwargs: dict[str, Any] = {
        "timeout": httpx.Timeout(timeout),
        "verify": verify,
        "follow_redirects": False,
        "headers": headers,
    }
    if http_config is not None:
        kwargs["follow_redirects"] = http_config.follow_redirects
        header = http_config.auth_header()
        if header is not None:
            headers["Authorization"] = header
        if http_config.basic_auth is not None:
            basic = http_config.basic_auth
            kwargs["auth"] = httpx.BasicAuth(basic.username, basic.password.get_secret_value())
        if http_config.proxy_url:
            kwargs["proxy"] = http_config.proxy_url
    if tls is not None and tls.server_name:
        return _ServerNameClient(tls.server_name, **kwargs)
    return httpx.AsyncClient(**kwargs)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds (a number or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def check_status(status: int, body: str, retry_after: str | None) -> Result:
    """Alertmanager's Retrier: 2xx ok, 429 and 5xx worth a retry, other 4xx permanent."""
    if 200 <= status < 300:
        return False, None
    detail = body.strip()[:200]
    if status == 429:
        return True, DeliveryError(
            f"rate limited (429): {detail}", "rate_limited", parse_retry_after(retry_after)
        )
    if status >= 500:
        return True, DeliveryError(f"server error {status}: {detail}", "server_error")
    return False, DeliveryError(f"rejected with {status}: {detail}", "client_error")


async def post(
    client: httpx.AsyncClient,
    url: str,
    content: bytes,
    headers: dict[str, str],
    secrets: list[str],
    auth: tuple[str, str] | None = None,
) -> tuple[Result, httpx.Response | None]:
    """POST once; transport failures become retryable DeliveryErrors without the URL."""
    try:
        if auth is None:
            resp = await client.post(url, content=content, headers=headers)
        else:
            resp = await client.post(
                url, content=content, headers=headers, auth=httpx.BasicAuth(*auth)
            )
    except httpx.TimeoutException as exc:
        return (True, DeliveryError(f"timed out: {type(exc).__name__}", "timeout")), None
    except httpx.HTTPError as exc:
        message = redact(f"{type(exc).__name__}: {exc}", secrets)
        return (True, DeliveryError(f"request failed: {message}", "connection")), None
    result = check_status(resp.status_code, resp.text, resp.headers.get("retry-after"))
    if result[1] is not None:
        result[1].args = (redact(str(result[1]), secrets),)
    return result, resp


class HTTPReceiverConfig(Protocol):
    """What every HTTP receiver's config has (Alertmanager's `http_config` included)."""

    @property
    def send_resolved(self) -> bool: ...
    @property
    def timeout(self) -> float: ...
    @property
    def http_config(self) -> HTTPConfig: ...


C = TypeVar("C", bound=HTTPReceiverConfig)


class HTTPReceiver(Generic[C]):
    """What the HTTP receivers share: their name, the templates they render, one client
    with their `http_config`, and a JSON POST whose errors never show the URL or a
    credential. Each sets `kind` and writes `notify`."""

    kind: str

    def __init__(
        self, receiver: str, index: int, cfg: C, templates: TemplateSet | None = None
    ) -> None:
        self.name = f"{receiver}/{self.kind}[{index}]"
        self.receiver = receiver
        self.send_resolved = cfg.send_resolved
        self.min_interval = 0.0
        self.cfg = cfg
        self.templates = templates or TemplateSet.default()
        self.client = http_client(cfg.timeout, http_config=cfg.http_config)

    async def post_json(
        self, url: str, payload: Any, secrets: list[str] | None = None
    ) -> tuple[Result, httpx.Response | None]:
        """POST `payload` as JSON to `url` (itself a secret: webhook URLs carry tokens)."""
        hidden = [url, *(secrets or []), *self.cfg.http_config.secrets()]
        headers = {"Content-Type": "application/json"}
        return await post(self.client, url, orjson.dumps(payload), headers, hidden)

    async def close(self) -> None:
        await self.client.aclose()
