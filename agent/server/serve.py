"""Binding and running the HTTP server inside the agent's event loop.

hypercorn serves `routes.App` through its embedding API,
`hypercorn.asyncio.serve(app, config, shutdown_trigger=...)`: given a shutdown trigger
it installs no signal handlers, so SIGTERM, SIGINT and SIGHUP stay the agent's
(agent.app adds them with `loop.add_signal_handler`), and it stops gracefully when the
trigger fires, which `Server.run` does when its task is cancelled. (uvicorn's
`Server.serve()` takes SIGINT/SIGTERM with `signal.signal` whenever it runs on the main
thread, stops itself on SIGTERM and raises the signal again afterwards; it has no setting
to leave them alone.)

We bind the listening socket ourselves and hand it to hypercorn as `fd://N`, its
file-descriptor bind: a port that is taken becomes a ServerError naming `server.listen`
instead of an exit inside our loop, and `listen: ...:0` tells us the port the kernel chose.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig

from agent.server import tls
from agent.server.auth import BasicAuth
from agent.server.config import ServerConfig, ServerError
from agent.server.handlers import ServerHandlers
from agent.server.routes import App

if TYPE_CHECKING:
    from hypercorn.typing import ASGIFramework

log = logging.getLogger("chatwatch.server")

BACKLOG = 128
"""Connections the kernel queues for us before we accept them."""
GRACEFUL_SECONDS = 2.0
"""How long a stopping server lets requests in flight finish (the agent exits within 5 s)."""
STOP_SECONDS = GRACEFUL_SECONDS + 1.0
"""After this, whatever hypercorn still runs is cancelled."""


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
        self._app = App(handlers, _auth(cfg), writes_allowed=cfg.writes_allowed)
        self._ssl_context: ssl.SSLContext | None = None

    def apply(self, cfg: ServerConfig, base_dir: Path | None = None) -> list[str]:
        """Apply a reloaded `server:` section to the running server; return the keys that
        changed but only a restart can apply (the listen address, TLS switched on or off,
        client-certificate settings).

        Basic-auth users and passwords (a rotated `password_file` included) and
        `enable_admin_api` apply at once.
        The certificate and key are read again on every reload and used for every new
        connection, so a certificate rotated in place (cert-manager) needs no restart.
        Raises ServerError, changing nothing, when the new TLS files are unusable."""
        old = self.cfg
        fresh = tls.server_context(cfg, base_dir)  # validates the files first
        restart = []
        if (cfg.host, cfg.port) != (old.host, old.port):
            restart.append("server.listen")
        if (cfg.tls is None) != (old.tls is None):
            restart.append("server.tls")
        elif cfg.tls is not None and old.tls is not None:
            kept = ("client_ca_file", "client_auth_type", "min_version")
            if any(getattr(cfg.tls, k) != getattr(old.tls, k) for k in kept):
                restart.append("server.tls")
            elif self._ssl_context is not None and fresh is not None:
                self._ssl_context.load_cert_chain(
                    tls.resolve(cfg.tls.cert_file, base_dir),
                    tls.resolve(cfg.tls.key_file, base_dir),
                )
        self._app.auth = _auth(cfg)
        self.base_dir = base_dir
        self.cfg = (
            cfg
            if not restart
            else old.model_copy(
                update={"basic_auth": cfg.basic_auth, "enable_admin_api": cfg.enable_admin_api}
            )
        )
        self._app.writes_allowed = self.cfg.writes_allowed
        return restart

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
        """Serve until cancelled; set `started` once listening. Raises ServerError when
        the address cannot be bound or the TLS files are unusable."""
        cfg = self.cfg
        ssl_context = self._ssl_context = tls.server_context(cfg, self.base_dir)
        sock = _bind(cfg.host, cfg.port)
        host, port = sock.getsockname()[:2]
        self.address = (host, port)
        # From here hypercorn owns the descriptor: it wraps it in its own socket object and
        # closes it when it stops, so ours lets go without closing it.
        config = self._hypercorn_config(sock.detach(), ssl_context)
        # App speaks ASGI 3 with plain mappings; hypercorn types the same with TypedDicts.
        app = cast("ASGIFramework", self._app)
        stop = asyncio.Event()
        serving = asyncio.create_task(
            hypercorn_serve(app, config, shutdown_trigger=stop.wait, mode="asgi"),
            name="server:hypercorn",
        )
        log.info(
            "serving /metrics",
            extra={
                "url": f"{self.url}/metrics",
                "tls": ssl_context is not None,
                "basic_auth": self._app.auth is not None,
            },
        )
        started.set()  # the socket listens: connections wait in its backlog until accepted
        try:
            # Shielded: cancelling us must become a graceful stop, not a cancelled server.
            await asyncio.shield(serving)
        finally:
            stop.set()
            await asyncio.shield(_stopped(serving))

    def _hypercorn_config(self, fd: int, ssl_context: ssl.SSLContext | None) -> _Config:
        config = _Config(ssl_context)
        config.bind = [f"fd://{fd}"]
        config.backlog = BACKLOG
        config.accesslog = None
        config.errorlog = logging.getLogger("hypercorn.error")  # the agent's logging setup
        config.include_server_header = False
        config.graceful_timeout = GRACEFUL_SECONDS
        if self.cfg.tls is not None:  # hypercorn serves a bind over TLS when these are set
            config.certfile = tls.resolve(self.cfg.tls.cert_file, self.base_dir)
            config.keyfile = tls.resolve(self.cfg.tls.key_file, self.base_dir)
        return config


def _auth(cfg: ServerConfig) -> BasicAuth | None:
    if cfg.basic_auth is None:
        return None
    return BasicAuth(cfg.basic_auth.username, cfg.basic_auth.password.get_secret_value())


class _Config(HypercornConfig):
    """hypercorn's settings, serving TLS with the context `tls.server_context` built.

    hypercorn's own context would also trust the system's CAs for client certificates and
    cannot require TLS 1.3, and it takes no ready context as a setting (an open request
    upstream, pgjones/hypercorn#306), so the one method that builds it returns ours.
    tests/test_server_lifecycle.py fails if this is ever bypassed (the TLS 1.3 minimum).
    """

    def __init__(self, ssl_context: ssl.SSLContext | None) -> None:
        super().__init__()
        self._ssl_context = ssl_context

    def create_ssl_context(self) -> ssl.SSLContext | None:
        return self._ssl_context


async def _stopped(serving: asyncio.Task[None]) -> None:
    """Wait for hypercorn's graceful stop (its shutdown trigger has fired), then cancel
    whatever still runs, so the agent's SIGTERM budget holds."""
    t0 = time.monotonic()
    done, _ = await asyncio.wait({serving}, timeout=STOP_SECONDS)
    if not done:
        log.warning("server did not stop in time; cancelling", extra={"seconds": STOP_SECONDS})
        serving.cancel()
        await asyncio.wait({serving})
    log.debug("server stopped", extra={"seconds": round(time.monotonic() - t0, 3)})


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
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ServerError(
            f"server.listen: cannot listen on {host}:{port}: {exc.strerror}"
        ) from None
    return sock
