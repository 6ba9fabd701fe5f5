"""The HTTP endpoints: /metrics, health and readiness, reload, and the alerts/rules API.

A plain ASGI application served by uvicorn inside the agent's own event loop. The agent
owns signals and shutdown, so uvicorn is started through its startup/shutdown steps and
never through `Server.serve()`, which would install SIGINT/SIGTERM handlers. We bind the
listening socket ourselves: a port that is taken becomes an `OSError` the caller can
report, instead of uvicorn's `sys.exit()` inside our loop.

Endpoints (Prometheus' spellings, so probes and tools written for it work unchanged):

    GET  /metrics          Prometheus text 0.0.4, or OpenMetrics when Accept asks; gzip
    GET  /-/healthy        200 while the process serves
    GET  /-/ready          200 once handlers.is_ready(), else 503
    POST /-/reload         handlers.reload(); 200, or 500 with the reason
    GET  /api/v1/alerts    {"status": "success", "data": handlers.alerts_api()}
    GET  /api/v1/rules     {"status": "success", "data": handlers.rules_api()}

Basic auth, when configured, guards everything except /-/healthy and /-/ready, so the
kubelet's probes need no credentials.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import hashlib
import hmac
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from pathlib import Path
from typing import Any, Protocol

import orjson
import uvicorn
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from agent.server.config import ServerConfig

log = logging.getLogger("chatwatch.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

REALM = "chatwatch"
GZIP_LEVEL = 6
"""zlib level 6 keeps most of level 9's ratio on exposition text at a fraction of its cost."""
OFFLOAD_BYTES = 64 * 1024
"""Encoding larger than this (estimated from the sample count) runs in a worker thread."""


class ServerHandlers(Protocol):
    """What the server asks of the running agent (implemented by agent.app)."""

    @property
    def collectors(self) -> list[Collector]: ...

    def is_ready(self) -> bool: ...

    async def reload(self) -> tuple[bool, str]: ...

    def alerts_api(self) -> dict[str, Any]: ...

    def rules_api(self) -> dict[str, Any]: ...


class ServerError(Exception):
    """The server cannot start for a reason the user can fix (port taken, bad TLS files)."""


# --------------------------------------------------------------------------- the app


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


def _header(scope: Scope, name: bytes) -> str:
    values = [v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == name]
    return ",".join(values)


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


class _BasicAuth:
    """Constant-time check of `Authorization: Basic ...` against one user.

    Both sides are hashed first so the comparison takes the same time whatever the
    lengths; the configured password is never logged or echoed.
    """

    def __init__(self, username: str, password: str) -> None:
        self._expected = self._digest(username.encode(), password.encode())

    @staticmethod
    def _digest(username: bytes, password: bytes) -> bytes:
        return hashlib.sha256(hashlib.sha256(username).digest() + password).digest()

    def allows(self, authorization: str) -> bool:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True)
        except ValueError:
            return False
        username, sep, password = decoded.partition(b":")
        if not sep:
            return False
        return hmac.compare_digest(self._digest(username, password), self._expected)


class App:
    """The ASGI application. One instance per server; stateless between requests."""

    def __init__(self, handlers: ServerHandlers, auth: _BasicAuth | None = None) -> None:
        self.handlers = handlers
        self._auth = auth
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
        if scope["type"] != "http":  # lifespan is off; websockets are not served
            return
        response = await self._dispatch(scope)
        await send(
            {"type": "http.response.start", "status": response.status, "headers": response.headers}
        )
        await send({"type": "http.response.body", "body": response.body})

    async def _dispatch(self, scope: Scope) -> _Response:
        route = self._routes.get(scope["path"])
        if route is None:
            return _Response.text(404, "Not Found\n")
        methods, needs_auth, handler = route
        if (
            needs_auth
            and self._auth is not None
            and not self._auth.allows(_header(scope, b"authorization"))
        ):
            response = _Response.text(401, "Unauthorized\n")
            response.headers.append(
                (b"www-authenticate", f'Basic realm="{REALM}", charset="UTF-8"'.encode())
            )
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
            try:
                ok, message = await self.handlers.reload()
            except Exception as exc:  # the handler's bug must not kill the server
                log.exception("reload handler failed")
                ok, message = False, f"{type(exc).__name__}: {exc}"
        if ok:
            return _Response.text(200, (message or "Reloaded") + "\n")
        return _Response.text(500, f"failed to reload config: {message}\n")

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


# ------------------------------------------------------------------------ the server


class _Uvicorn(uvicorn.Server):
    """uvicorn without signal handling and without its 10-per-second tick loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the agent owns SIGINT/SIGTERM

    async def main_loop(self) -> None:
        while not self.should_exit:
            await self.on_tick(0)  # refreshes the Date header
            await asyncio.sleep(1.0)


def _ssl_context(cfg: ServerConfig, base_dir: Path | None) -> ssl.SSLContext | None:
    if cfg.tls is None:
        return None
    cert = _resolve(cfg.tls.cert_file, base_dir)
    key = _resolve(cfg.tls.key_file, base_dir)
    for key_name, path in (("cert_file", cert), ("key_file", key)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ServerError(
                f"server.tls.{key_name}: cannot read {path}: {exc.strerror}"
            ) from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if cfg.tls.min_version == "TLS13" else ssl.TLSVersion.TLSv1_2
    )
    if cfg.tls.client_ca_file:
        client_ca = _resolve(cfg.tls.client_ca_file, base_dir)
        try:
            context.load_verify_locations(cafile=client_ca)
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
            raise ServerError(
                f"server.tls.client_ca_file: cannot use {client_ca} as a PEM CA bundle: {reason}"
            ) from None
        context.verify_mode = {
            "NoClientCert": ssl.CERT_NONE,
            "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
            "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
        }[cfg.tls.client_auth_type]
    try:
        context.load_cert_chain(certfile=cert, keyfile=key)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
        raise ServerError(
            f"server.tls: cert_file {cert} and key_file {key} are not a usable "
            f"PEM certificate and key: {reason}"
        ) from None
    return context


def check(cfg: ServerConfig, base_dir: Path | None = None) -> list[str]:
    """Problems `chatwatch check` should report about the server section (TLS files)."""
    try:
        _ssl_context(cfg, base_dir)
    except ServerError as exc:
        return [str(exc)]
    return []


def _resolve(path: str, base_dir: Path | None) -> str:
    p = Path(path)
    return str(p if p.is_absolute() or base_dir is None else base_dir / p)


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (IPv4 or IPv6), or ServerError saying why not."""
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ServerError(f"server.listen: cannot resolve host {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ServerError(
            f"server.listen: cannot listen on {host}:{port}: {exc.strerror}"
        ) from None
    return sock


class Server:
    """The HTTP server of one agent: `await run(started)` until cancelled.

    `address` (host, port) is known once `started` is set; with `listen: ...:0` it
    carries the port the kernel chose.
    """

    def __init__(
        self, cfg: ServerConfig, handlers: ServerHandlers, *, base_dir: Path | None = None
    ) -> None:
        self.cfg = cfg
        self.handlers = handlers
        self.base_dir = base_dir
        self.address: tuple[str, int] | None = None

    @property
    def port(self) -> int:
        if self.address is None:
            raise RuntimeError("the server is not listening yet")
        return self.address[1]

    @property
    def url(self) -> str:
        """Base URL for humans and tests (`http://127.0.0.1:9317`)."""
        if self.address is None:
            raise RuntimeError("the server is not listening yet")
        host, port = self.address
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1" if host != "::" else "::1"
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.cfg.tls else "http"
        return f"{scheme}://{host}:{port}"

    async def run(self, started: asyncio.Event) -> None:
        cfg = self.cfg
        ssl_context = _ssl_context(cfg, self.base_dir)
        auth = None
        if cfg.basic_auth is not None:
            auth = _BasicAuth(cfg.basic_auth.username, cfg.basic_auth.password.get_secret_value())
        sock = _bind(cfg.host, cfg.port)
        try:
            host, port = sock.getsockname()[:2]
            self.address = (host, port)
            config = uvicorn.Config(
                App(self.handlers, auth),
                http="h11",
                ws="none",
                lifespan="off",
                interface="asgi3",
                log_config=None,  # the agent configured logging; uvicorn must not redo it
                access_log=False,
                proxy_headers=False,
                server_header=False,
                timeout_graceful_shutdown=2,
                ssl_context_factory=(lambda _cfg, _default: ssl_context) if ssl_context else None,
            )
            server = _Uvicorn(config)
            config.load()
            server.lifespan = config.lifespan_class(config)
            await server.startup(sockets=[sock])
        except BaseException:
            sock.close()
            raise
        log.info(
            "serving /metrics",
            extra={
                "url": f"{self.url}/metrics",
                "tls": ssl_context is not None,
                "basic_auth": auth is not None,
            },
        )
        started.set()
        try:
            await server.main_loop()
        finally:
            server.should_exit = True
            t0 = time.monotonic()
            await asyncio.shield(_shutdown(server, sock))
            log.debug("server stopped", extra={"seconds": round(time.monotonic() - t0, 3)})


async def _shutdown(server: _Uvicorn, sock: socket.socket) -> None:
    server.force_exit = False
    await server.shutdown(sockets=[sock])


async def serve(
    cfg: ServerConfig,
    handlers: ServerHandlers,
    started: asyncio.Event,
    *,
    base_dir: Path | None = None,
) -> None:
    """Serve the endpoints on cfg.listen until cancelled; set `started` once listening.

    Raises ServerError when the address cannot be bound or the TLS files are unusable.
    Use `Server` directly to learn the bound port (listen port 0).
    """
    await Server(cfg, handlers, base_dir=base_dir).run(started)
