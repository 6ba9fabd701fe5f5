"""Real receivers on 127.0.0.1 for the notify tests, and a running Notifier.

`HookServer` is a real HTTP server in a thread. It records every request (time, path,
headers, body) and answers from a script: `ok` by default, or queued responses such as
Slack's `400 invalid_payload` and `429 Retry-After: 2`; it can be slow, or stopped and
started again on the same port to play a receiver that is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import email
import email.policy
import json
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from agent.alerting.alert import Alert
from agent.notify.config import AlertingConfig
from agent.notify.notification import Notification
from agent.notify.notifier import Notifier
from agent.support.selfmetrics import SelfMetrics


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Request:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: str = "ok"
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0


class HookServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.requests: list[Request] = []
        self.script: list[Reply] = []
        self.default = Reply()
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> HookServer:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with hook._lock:
                    hook.in_flight += 1
                    hook.max_in_flight = max(hook.max_in_flight, hook.in_flight)
                    reply = hook.script.pop(0) if hook.script else hook.default
                    hook.requests.append(
                        Request(time.monotonic(), self.path, dict(self.headers.items()), body)
                    )
                try:
                    if reply.delay:
                        time.sleep(reply.delay)
                    data = reply.body.encode()
                    self.send_response(reply.status)
                    for k, v in reply.headers:
                        self.send_header(k, v)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    with contextlib.suppress(OSError):
                        self.wfile.write(data)
                finally:
                    with hook._lock:
                        hook.in_flight -= 1

            def log_message(self, format: str, *args: Any) -> None:
                return

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        # stop() waits for serve_forever to look at its shutdown flag: every 50 ms, not
        # the default 0.5 s, which every test would pay at teardown.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def bodies(self) -> list[Any]:
        return [r.json() for r in list(self.requests)]


async def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    """Poll until `predicate()` is truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}: last={last!r}")


async def settled(
    notifier: Notifier, horizon: float = 60.0, timeout: float = 20.0
) -> list[Notification]:
    """Until every delivery queue is empty; then what the notifier would still send in
    the next `horizon` seconds if no alert changed (nothing, in a test that passes).

    This replaces sleeping "to see that nothing more happens". An empty queue has
    nothing to retry (its head stays queued until delivered or given up), and the
    dispatcher is pure: its group timers are driven through the horizon on a copy of
    it, so its next decisions are computed rather than waited for.
    """
    await wait_for(
        lambda: all(not q.items for q in notifier.queues.values()), timeout, "every queue empty"
    )
    dispatcher = copy.deepcopy(notifier.dispatcher)
    now = time.time()
    planned: list[Notification] = []
    while (due := dispatcher.next_deadline()) is not None and due <= now + horizon:
        planned += dispatcher.flush_due(max(due, now))
    return planned


def alerting(doc: str) -> AlertingConfig:
    return AlertingConfig.model_validate(yaml.safe_load(doc))


@contextlib.asynccontextmanager
async def running(
    cfg: AlertingConfig, state_dir: Path, stats: SelfMetrics | None = None
) -> AsyncIterator[Notifier]:
    """A Notifier with its run() task; stopped (state saved) at the end."""
    notifier = Notifier(cfg, state_dir, stats or SelfMetrics(), "http://chatwatch.test:9317")
    task = asyncio.create_task(notifier.run())
    try:
        yield notifier
    finally:
        await notifier.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def fire(name: str, starts: float, **labels: str) -> Alert:
    return Alert(
        labels={"alertname": name, **labels},
        annotations={"summary": f"{name} on {labels}"},
        starts_at=starts,
        generator_url="http://chatwatch.test:9317/graph",
    )


def resolve(alert: Alert, at: float) -> Alert:
    return Alert(
        alert.labels, alert.annotations, alert.starts_at, at, alert.generator_url, alert.cooldown
    )


def metric(stats: SelfMetrics, name: str, *labels: str) -> float:
    family = stats.family(name)
    return 0.0 if family is None else family.get(tuple(labels))


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        raw = envelope.original_content or b""
        self.messages.append(email.message_from_bytes(raw, policy=email.policy.default))
        return "250 OK"


class SMTPServer:
    """aiosmtpd with STARTTLS (trustme certs) required before AUTH.

    `auth_exclude` leaves mechanisms out of those offered: Alertmanager's LOGIN expects a
    `Username:` challenge and aborts on aiosmtpd's `User Name`, so a test that has
    Alertmanager authenticate offers it PLAIN alone."""

    def __init__(
        self,
        tmp_path: Path,
        password: str = "s3cret",
        auth_exclude: tuple[str, ...] = (),
        mailbox: Mailbox | None = None,
    ) -> None:
        self.password = password
        self.auth_attempts = 0
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        self.ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        self.mailbox = mailbox or Mailbox()
        self.port = free_port()
        self.controller = Controller(
            self.mailbox,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=ctx,
            require_starttls=True,
            auth_require_tls=True,
            authenticator=self._auth,
            auth_exclude_mechanism=list(auth_exclude),
        )

    def _auth(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        self.auth_attempts += 1
        ok = (
            isinstance(data, LoginPassword)
            and data.login == b"bot"
            and data.password == self.password.encode()
        )
        return AuthResult(success=ok, handled=False)

    def __enter__(self) -> SMTPServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


def email_config(smtp: SMTPServer, password: str = "s3cret", extra: str = "") -> str:
    return f"""
route: {{receiver: mail, group_by: [alertname], group_interval: 200ms}}
receivers:
  - name: mail
    email_configs:
      - to: oncall@example.org
        from: chatwatch@example.org
        smarthost: 127.0.0.1:{smtp.port}
        auth_username: bot
        auth_password: {password}
        tls_config: {{ca_file: {smtp.ca_file}}}
        headers: {{X-Priority: "1"}}
        send_resolved: true
        {extra}
delivery: {{initial_backoff: 200ms, max_backoff: 1s}}
"""
