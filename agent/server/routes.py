"""The HTTP routes: the one file that owns what each endpoint answers.

A plain ASGI application (`App`); `agent.server.serve` runs it. Endpoints use
Prometheus' spellings, so probes and tools written for it work unchanged:

    GET  /metrics          Prometheus text 0.0.4, or OpenMetrics when Accept asks; gzip
    GET  /-/healthy        200 while the process serves
    GET  /-/ready          200 once handlers.is_ready(), else 503
    POST /-/reload         handlers.reload(); 200, 500 with the reason, or 409 when a
                           setting changed that needs a restart (the rest is applied)
    GET  /api/v1/alerts    {"status": "success", "data": handlers.alerts_api()}
    GET  /api/v1/rules     {"status": "success", "data": handlers.rules_api()}

Basic auth (agent.server.auth), when configured, guards everything except /-/healthy and
/-/ready, so the kubelet's probes need no credentials.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from typing import Any, Literal, Protocol

import orjson
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from agent.server.auth import BasicAuth

log = logging.getLogger("chatwatch.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

GZIP_LEVEL = 6
"""zlib level 6 keeps most of level 9's ratio on exposition text at a fraction of its cost."""
OFFLOAD_BYTES = 64 * 1024
"""Encoding larger than this (estimated from the sample count) runs in a worker thread."""


ReloadStatus = Literal["ok", "failed", "needs_restart"]
"""What a reload did: applied; rejected (the running config is kept); applied except for
settings that only a restart can change (the listen address)."""
_RELOAD_HTTP_STATUS = {"ok": 200, "failed": 500, "needs_restart": 409}


class ServerHandlers(Protocol):
    """What the server asks of the running agent (implemented by agent.app)."""

    @property
    def collectors(self) -> list[Collector]: ...

    def is_ready(self) -> bool: ...

    async def reload(self) -> tuple[ReloadStatus, str]: ...

    def alerts_api(self) -> dict[str, Any]: ...

    def rules_api(self) -> dict[str, Any]: ...


class App:
    """The ASGI application. One instance per server; stateless between requests."""

    def __init__(self, handlers: ServerHandlers, auth: BasicAuth | None = None) -> None:
        self.handlers = handlers
        self.auth = auth
        """Swapped by a reload that changes `server.basic_auth`."""
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_HandlersCollector(handlers))
        self._reload_lock = asyncio.Lock()
        self._warned: set[str] = set()
        self._routes: dict[
            str, tuple[tuple[str, ...], bool, Callable[[Scope], Awaitable[_Response]]]
        ] = {
            # path: (methods, needs auth, handler)
            "/metrics": (("GET", "HEAD"), True, self._metrics),
            "/-/healthy": (("GET", "HEAD"), False, self._healthy),
            "/-/ready": (("GET", "HEAD"), False, self._ready),
            "/-/reload": (("POST", "PUT"), True, self._reload),
            "/api/v1/alerts": (("GET", "HEAD"), True, self._alerts),
            "/api/v1/rules": (("GET", "HEAD"), True, self._rules),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":  # websockets are not served
            return
        response = await self._dispatch(scope)
        await send(
            {"type": "http.response.start", "status": response.status, "headers": response.headers}
        )
        # HEAD answers the headers GET would, content-length included, without the body.
        body = b"" if scope["method"] == "HEAD" else response.body
        await send({"type": "http.response.body", "body": body})

    async def _dispatch(self, scope: Scope) -> _Response:
        route = self._routes.get(scope["path"])
        if route is None:
            return _Response.text(404, "Not Found\n")
        methods, needs_auth, handler = route
        auth = self.auth
        if needs_auth and auth is not None and not auth.allows(_header(scope, b"authorization")):
            response = _Response.text(401, "Unauthorized\n")
            response.headers.append((b"www-authenticate", auth.challenge))
            return response
        if scope["method"] not in methods:
            response = _Response.text(405, f"Method Not Allowed: use {' or '.join(methods)}\n")
            response.headers.append((b"allow", ", ".join(methods).encode()))
            return response
        return await handler(scope)

    async def _healthy(self, scope: Scope) -> _Response:
        return _Response.text(200, "Healthy\n")

    async def _ready(self, scope: Scope) -> _Response:
        if self.handlers.is_ready():
            return _Response.text(200, "Ready\n")
        return _Response.text(503, "Not ready: sources are still opening or config is loading\n")

    async def _reload(self, scope: Scope) -> _Response:
        async with self._reload_lock:  # one reload at a time; a second waits for the first
            status: ReloadStatus
            try:
                status, message = await self.handlers.reload()
            except Exception as exc:  # the handler's bug must not kill the server
                log.exception("reload handler failed")
                status, message = "failed", f"{type(exc).__name__}: {exc}"
        if status == "failed":
            message = f"failed to reload config: {message}"
        return _Response.text(_RELOAD_HTTP_STATUS[status], (message or "Reloaded") + "\n")

    async def _alerts(self, scope: Scope) -> _Response:
        return self._api(self.handlers.alerts_api)

    async def _rules(self, scope: Scope) -> _Response:
        return self._api(self.handlers.rules_api)

    @staticmethod
    def _api(produce: Callable[[], dict[str, Any]]) -> _Response:
        try:
            body = {"status": "success", "data": produce()}
            status = 200
        except Exception as exc:
            log.exception("API handler failed")
            body = {
                "status": "error",
                "errorType": "internal",
                "error": f"{type(exc).__name__}: {exc}",
            }
            status = 500
        data = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
        return _Response(status, [(b"content-type", b"application/json")], data)

    def _unique(self, families: Iterable[Metric]) -> list[Metric]:
        """One family per name: Prometheus rejects a whole scrape that repeats a family.

        A family yielded twice (two components registering the same self-metric) is
        merged when the types agree, keeping the first of any repeated sample, and
        dropped otherwise; either way it is logged once per name.
        """
        out: dict[str, Metric] = {}
        for family in families:
            first = out.get(family.name)
            if first is None:
                out[family.name] = family
                continue
            if family.name not in self._warned:
                self._warned.add(family.name)
                log.warning("metric family exposed twice; merged", extra={"metric": family.name})
            if first.type != family.type:
                continue
            seen = {(s.name, tuple(sorted(s.labels.items()))) for s in first.samples}
            merged = Metric(first.name, first.documentation, first.type, first.unit)
            merged.samples = list(first.samples)
            for sample in family.samples:
                if (sample.name, tuple(sorted(sample.labels.items()))) not in seen:
                    merged.samples.append(sample)
            out[family.name] = merged
        return list(out.values())

    async def _metrics(self, scope: Scope) -> _Response:
        encoder, content_type = choose_encoder(_header(scope, b"accept"))
        use_gzip = accepts_gzip(_header(scope, b"accept-encoding"))
        try:
            families = self._unique(self._registry.collect())
        except Exception:
            log.exception("collecting metrics failed")
            return _Response.text(500, "error collecting metrics; see the agent's log\n")
        collected = _Collected(families)

        def render() -> bytes:
            body = encoder(collected)
            return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0) if use_gzip else body

        samples = sum(len(f.samples) for f in families)
        try:
            # Encoding is pure work on private objects: a thread keeps the loop (tailing,
            # rule evaluation) responsive during a large scrape. Small scrapes stay inline.
            body = await asyncio.to_thread(render) if samples * 64 > OFFLOAD_BYTES else render()
        except Exception:
            log.exception("encoding metrics failed")
            return _Response.text(500, "error encoding metrics; see the agent's log\n")
        headers = [(b"content-type", content_type.encode()), (b"vary", b"Accept, Accept-Encoding")]
        if use_gzip:
            headers.append((b"content-encoding", b"gzip"))
        return _Response(200, headers, body)


def accepts_gzip(accept_encoding: str) -> bool:
    """True when the client lists gzip (or `*`) without `q=0`."""
    for item in accept_encoding.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        if coding.lower() not in ("gzip", "*"):
            continue
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    if float(value) <= 0:
                        break
                except ValueError:
                    break
        else:
            return True
    return False


async def _lifespan(receive: Receive, send: Send) -> None:
    """The ASGI lifespan handshake, answered at once: the agent owns every resource the
    routes use, so there is nothing to start or stop here."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _header(scope: Scope, name: bytes) -> str:
    values = [v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == name]
    return ",".join(values)


class _HandlersCollector(Collector):
    """Re-reads `handlers.collectors` on every scrape, so a reload that swaps the
    collector list is picked up without re-registering anything."""

    def __init__(self, handlers: ServerHandlers) -> None:
        self._handlers = handlers

    def collect(self) -> Iterator[Metric]:
        for collector in list(self._handlers.collectors):
            yield from collector.collect()


class _Collected(Collector):
    """Families already collected on the event loop, handed to an encoder in a thread.

    Metric families are plain objects nobody mutates after `collect()` returned them, so
    encoding them off the loop is safe even though the store keeps changing.
    """

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


class _Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        headers.append((b"content-length", str(len(body)).encode()))

    @classmethod
    def text(cls, status: int, text: str) -> _Response:
        return cls(status, [(b"content-type", b"text/plain; charset=utf-8")], text.encode())
