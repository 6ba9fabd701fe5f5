"""The HTTP routes: the one file that owns what each endpoint answers.

A plain ASGI application (`App`); `agent.server.serve` runs it. Endpoints use
Prometheus' spellings, so probes and tools written for it work unchanged:

    GET  /metrics          Prometheus text 0.0.4, or OpenMetrics when Accept asks; gzip.
                           Just after a restart it waits for handlers.values_current()
                           (the lines since the checkpoint counted again), else 503
    GET  /-/healthy        200 while the process serves
    GET  /-/ready          200 once handlers.is_ready(), else 503
    POST /-/reload         handlers.reload(); 200, 500 with the reason, or 409 when a
                           setting changed that needs a restart (the rest is applied)
    GET  /api/v1/alerts    {"status": "success", "data": handlers.alerts_api()}
    GET  /api/v1/rules     {"status": "success", "data": handlers.rules_api()}
    GET  /, /alerts, /rules, /graph, /silences, /config, /static/...
                           web pages for people (agent.server.pages), from handlers.status(),
                           rule_groups(), history(), query_range(), running_config()
    GET  /api/v2/silences, /api/v2/silence/{id}, /api/v2/alerts, /api/v2/alerts/groups,
         /api/v2/status, /api/v2/receivers
    POST /api/v2/silences, DELETE /api/v2/silence/{id}
                           Alertmanager's API v2 (agent.notify.api), for amtool and Grafana

Basic auth (agent.server.auth), when configured, guards everything except /-/healthy and
/-/ready, so the kubelet's probes need no credentials. Every method but GET and HEAD is a
write (reload, silences): with neither basic auth nor required client certificates the
writes answer 403 unless `server.enable_admin_api` is set, as Prometheus guards its admin
API.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
import zlib
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from itertools import chain
from typing import Any

import orjson
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import UNDERSCORES
from prometheus_client.registry import Collector

from agent.notify.api import AlertmanagerAPI, APIError
from agent.server.auth import BasicAuth
from agent.server.handlers import ReloadStatus, ServerHandlers, WritesItself, WrittenFamilies
from agent.server.pages import (
    alerts,
    graph,
    overview,
    rules,
    running_config,
    silences,
    static,
)
from agent.server.pages.render import Page, Query, error_page

log = logging.getLogger("chatwatch.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

GZIP_LEVEL = 1
"""On exposition text zlib level 1 keeps most of level 6's ratio at a third of its CPU (100k
histogram label sets: 75 MB of text to 4.3 MB in 0.4 s, against 3.8 MB in 1.4 s), and a
scrape's CPU comes back every scrape interval."""
OFFLOAD_BYTES = 64 * 1024
"""Encoding larger than this (estimated from the sample count) runs in a worker thread."""
SCRAPE_HOLD = 4.0
"""Seconds a scrape waits, after a restart, for values Prometheus may see (else 503)."""


_RELOAD_HTTP_STATUS = {"ok": 200, "failed": 500, "needs_restart": 409, "not_ready": 503}


class App:
    """The ASGI application. One instance per server; stateless between requests."""

    def __init__(
        self, handlers: ServerHandlers, auth: BasicAuth | None = None, writes_allowed: bool = False
    ) -> None:
        self.handlers = handlers
        self.auth = auth
        """Swapped by a reload that changes `server.basic_auth`."""
        self.writes_allowed = writes_allowed
        """ServerConfig.writes_allowed; set again by a reload."""
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
            # web pages for people, with the same auth as /metrics
            "/": (("GET", "HEAD"), True, self._page(overview.page)),
            "/alerts": (("GET", "HEAD"), True, self._page(alerts.page)),
            "/rules": (("GET", "HEAD"), True, self._page(rules.page)),
            "/graph": (("GET", "HEAD"), True, self._page(graph.page)),
            "/silences": (("GET", "HEAD"), True, self._page(self._silences_page)),
            "/config": (("GET", "HEAD"), True, self._page(running_config.page)),
            # Alertmanager's API v2 (amtool, Grafana); /api/v2/silence/ takes an id after it
            "/api/v2/silences": (("GET", "HEAD", "POST"), True, self._am_silences),
            _SILENCE_PATH: (("GET", "HEAD", "DELETE"), True, self._am_silence),
            "/api/v2/alerts": (("GET", "HEAD"), True, self._am_get(AlertmanagerAPI.get_alerts)),
            "/api/v2/alerts/groups": (
                ("GET", "HEAD"),
                True,
                self._am_get(AlertmanagerAPI.get_alert_groups),
            ),
            "/api/v2/status": (("GET", "HEAD"), True, self._am_status),
            "/api/v2/receivers": (("GET", "HEAD"), True, self._am_receivers),
        }
        self._static = static.load()
        for path in self._static:
            self._routes[path] = (("GET", "HEAD"), True, self._static_file)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":  # websockets are not served
            return
        scope[_RECEIVE] = receive  # for the handlers that read a request body
        response = await self._dispatch(scope)
        await send(
            {"type": "http.response.start", "status": response.status, "headers": response.headers}
        )
        # HEAD answers the headers GET would, content-length included, without the body.
        body = b"" if scope["method"] == "HEAD" else response.body
        await send({"type": "http.response.body", "body": body})

    async def _dispatch(self, scope: Scope) -> _Response:
        path = scope["path"]
        route = self._routes.get(_SILENCE_PATH if path.startswith(_SILENCE_PATH) else path)
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
        if scope["method"] not in ("GET", "HEAD") and not self.writes_allowed:
            return _writes_off(path)
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

    # -- Alertmanager API v2 ------------------------------------------------------------

    async def _am_silences(self, scope: Scope) -> _Response:
        api = self.handlers.alertmanager_api
        if scope["method"] == "POST":
            body = await _body(scope)
            if body is None:
                return _Response.json(413, f"request body over {MAX_BODY} bytes")
            return _am(lambda: api.post_silence(body, time.time()))
        return _am(lambda: api.get_silences(_query(scope), time.time()))

    async def _am_silence(self, scope: Scope) -> _Response:
        api = self.handlers.alertmanager_api
        silence_id = scope["path"][len(_SILENCE_PATH) :]
        if scope["method"] == "DELETE":
            return _am(lambda: api.delete_silence(silence_id, time.time()))
        return _am(lambda: api.get_silence(silence_id, time.time()))

    def _am_get(
        self, method: Callable[[AlertmanagerAPI, dict[str, list[str]], float], Any]
    ) -> Callable[[Scope], Awaitable[_Response]]:
        async def handler(scope: Scope) -> _Response:
            api = self.handlers.alertmanager_api
            return _am(lambda: method(api, _query(scope), time.time()))

        return handler

    async def _am_status(self, scope: Scope) -> _Response:
        return _am(self.handlers.alertmanager_api.get_status)

    async def _am_receivers(self, scope: Scope) -> _Response:
        return _am(self.handlers.alertmanager_api.get_receivers)

    def _page(
        self, render: Callable[[ServerHandlers, Query], Page]
    ) -> Callable[[Scope], Awaitable[_Response]]:
        async def handler(scope: Scope) -> _Response:
            query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
            try:
                page = render(self.handlers, query)
            except Exception as exc:  # the page's bug must not kill the server
                log.exception("page failed", extra={"path": scope["path"]})
                page = error_page(500, f"This page failed: {type(exc).__name__}: {exc}")
            return _Response(page.status, page.headers(), page.body)

        return handler

    def _silences_page(self, handlers: ServerHandlers, query: Query) -> Page:
        """The page shows the form and Expire buttons only when writes are allowed (read
        per request: a reload may switch them)."""
        return silences.page(handlers, query, self.writes_allowed)

    async def _static_file(self, scope: Scope) -> _Response:
        page = self._static[scope["path"]]
        return _Response(page.status, page.headers(), page.body)

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

    def _unique(self, families: Iterable[Metric], taken: frozenset[str]) -> list[Metric]:
        """One family per name: Prometheus rejects a whole scrape that repeats a family.

        A family yielded twice (two components registering the same self-metric) is
        merged when the types agree, keeping the first of any repeated sample, and
        dropped otherwise; one already written by a collector that writes itself (`taken`)
        is dropped. Either way it is logged once per name.
        """
        out: dict[str, Metric] = {}
        for family in families:
            first = out.get(family.name)
            if family.name in taken:
                if family.name not in self._warned:
                    self._warned.add(family.name)
                    log.warning(
                        "metric family exposed twice; dropped", extra={"metric": family.name}
                    )
                continue
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
        if not await self.handlers.values_current(SCRAPE_HOLD):
            # restored values not yet caught up: they would look like a counter reset
            return _Response.text(503, "Counting the lines since the last checkpoint\n")
        encoder, content_type = choose_encoder(_header(scope, b"accept"))
        openmetrics, escaping = _format_of(content_type)
        use_gzip = accepts_gzip(_header(scope, b"accept-encoding"))
        try:
            # On the loop: the store's snapshot (flat copies) and the small families.
            written: list[WrittenFamilies] = []
            families: list[Metric] = []
            for collector in list(self.handlers.collectors):
                if isinstance(collector, WritesItself):
                    written.append(collector.snapshot())
                families.extend(collector.collect())
            taken = frozenset().union(*(w.names for w in written))
            families = self._unique(families, taken)
        except Exception:
            log.exception("collecting metrics failed")
            return _Response.text(500, "error collecting metrics; see the agent's log\n")
        collected = _Collected(families)

        def render() -> bytes:
            chunks = (c.encode() for w in written for c in w.write(openmetrics, escaping))
            rest = encoder(collected)  # ends with OpenMetrics' `# EOF`
            if not use_gzip:
                return b"".join(chain(chunks, (rest,)))
            # Compressed as it is written: a large scrape is never held whole as text.
            z = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
            body = [z.compress(c) for c in chunks]
            body += [z.compress(rest), z.flush()]
            return b"".join(body)

        samples = sum(w.samples for w in written) + sum(len(f.samples) for f in families)
        try:
            # Writing is pure work on copies: a thread keeps the loop (tailing, rule
            # evaluation) responsive during a large scrape. Small scrapes stay inline.
            body = await asyncio.to_thread(render) if samples * 64 > OFFLOAD_BYTES else render()
        except Exception:
            log.exception("encoding metrics failed")
            return _Response.text(500, "error encoding metrics; see the agent's log\n")
        headers = [(b"content-type", content_type.encode()), (b"vary", b"Accept, Accept-Encoding")]
        if use_gzip:
            headers.append((b"content-encoding", b"gzip"))
        return _Response(200, headers, body)


def _format_of(content_type: str) -> tuple[bool, str]:
    """(OpenMetrics?, name escaping) of what `choose_encoder` chose, read from the
    content type it answers with (its public result), so the store's families are
    always written in the format the rest of the scrape is."""
    media, *params = (p.strip() for p in content_type.split(";"))
    escaping = next(
        (p.partition("=")[2] for p in params if p.partition("=")[0].strip() == "escaping"),
        UNDERSCORES,
    )
    return media == "application/openmetrics-text", escaping


_SILENCE_PATH = "/api/v2/silence/"
_RECEIVE = "chatwatch.receive"
"""Scope key of the ASGI `receive` callable, for handlers that read a request body."""
MAX_BODY = 1 << 20
"""Largest request body read (a silence is a few hundred bytes)."""
WRITES_OFF = (
    "write endpoints are off: configure server.basic_auth (or client certificates), "
    "or set server.enable_admin_api: true on a trusted network"
)


def _writes_off(path: str) -> _Response:
    if path.startswith("/api/v2/"):
        return _Response.json(403, WRITES_OFF)
    return _Response.text(403, WRITES_OFF + "\n")


def _am(produce: Callable[[], Any]) -> _Response:
    """An Alertmanager API answer: 200 with the JSON, an APIError's status and payload (a
    JSON string, as Alertmanager answers errors; none for an empty body), or 500."""
    try:
        result = produce()
    except APIError as exc:
        if exc.payload is None:
            return _Response(exc.status, [], b"")
        return _Response.json(exc.status, exc.payload)
    except Exception as exc:
        log.exception("Alertmanager API handler failed")
        return _Response.json(500, f"{type(exc).__name__}: {exc}")
    if result is None:
        return _Response(200, [], b"")
    return _Response.json(200, result)


def _query(scope: Scope) -> dict[str, list[str]]:
    text = scope.get("query_string", b"").decode("utf-8", "replace")
    return urllib.parse.parse_qs(text, keep_blank_values=True)


async def _body(scope: Scope) -> bytes | None:
    """The request body, or None when it is longer than MAX_BODY."""
    receive: Receive = scope[_RECEIVE]
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


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

    @classmethod
    def json(cls, status: int, value: Any) -> _Response:
        return cls(status, [(b"content-type", b"application/json")], orjson.dumps(value))
