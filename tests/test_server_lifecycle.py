"""Starting and stopping the server inside the agent's loop: TLS, bind errors, signals,
cancellation with clients still connected."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import ssl
import time
from pathlib import Path

import httpx
import pytest
import trustme

from agent.server.config import ServerConfig, ServerError
from agent.server.serve import Server
from agent.server.tls import check
from tests.server_support import Handlers, running


def tls_files(tmp_path: Path) -> tuple[trustme.CA, Path, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "server.crt", tmp_path / "server.key"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    # The chain file holds the key too; give the cert chain alone as cert_file.
    cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    return ca, cert_file, key_file


async def test_tls_serves_https_verified_by_the_ca(tmp_path: Path) -> None:
    ca, cert_file, key_file = tls_files(tmp_path)
    cfg = ServerConfig.model_validate(
        {"listen": "127.0.0.1:0", "tls": {"cert_file": str(cert_file), "key_file": str(key_file)}}
    )
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    handlers = Handlers()
    async with running(handlers, cfg) as server:
        assert server.url.startswith("https://127.0.0.1:")
        async with httpx.AsyncClient(base_url=server.url, verify=client_ctx) as client:
            r = await client.get("/metrics")
        async with httpx.AsyncClient(verify=client_ctx) as plain:
            with pytest.raises(httpx.HTTPError):
                await plain.get(f"http://127.0.0.1:{server.port}/metrics")
        untrusted = ssl.create_default_context()  # system CAs only: must refuse our cert
        async with httpx.AsyncClient(base_url=server.url, verify=untrusted) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get("/metrics")
    assert r.status_code == 200
    assert "chatwatch_lines_read_total" in r.text


async def test_tls_paths_are_relative_to_the_config_folder(tmp_path: Path) -> None:
    ca, _, _ = tls_files(tmp_path)
    cfg = ServerConfig.model_validate(
        {"listen": "127.0.0.1:0", "tls": {"cert_file": "server.crt", "key_file": "server.key"}}
    )
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    async with (
        running(Handlers(), cfg, base_dir=tmp_path) as server,
        httpx.AsyncClient(base_url=server.url, verify=client_ctx) as client,
    ):
        r = await client.get("/-/healthy")
    assert r.status_code == 200


async def test_tls_with_missing_or_bad_files_is_a_clear_error(tmp_path: Path) -> None:
    missing = ServerConfig.model_validate(
        {"listen": "127.0.0.1:0", "tls": {"cert_file": str(tmp_path / "no.crt"), "key_file": "x"}}
    )
    with pytest.raises(
        ServerError, match=r"server\.tls\.cert_file: cannot read .*no\.crt: No such file"
    ):
        await Server(missing, Handlers()).run(asyncio.Event())

    (tmp_path / "garbage.crt").write_text("not a certificate\n")
    (tmp_path / "garbage.key").write_text("not a key\n")
    garbage = ServerConfig.model_validate(
        {
            "listen": "127.0.0.1:0",
            "tls": {"cert_file": "garbage.crt", "key_file": "garbage.key"},
        }
    )
    with pytest.raises(ServerError, match=r"server\.tls: .*garbage\.crt.*not a usable"):
        await Server(garbage, Handlers(), base_dir=tmp_path).run(asyncio.Event())


async def test_port_in_use_is_a_server_error_not_an_exit() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        cfg = ServerConfig(listen=f"127.0.0.1:{port}")
        started = asyncio.Event()
        with pytest.raises(ServerError, match=f"cannot listen on 127.0.0.1:{port}"):
            await Server(cfg, Handlers()).run(started)
        assert not started.is_set()


async def test_serve_sets_started_once_listening_and_stops_on_cancel() -> None:
    # a fixed port, as agent.app runs it
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = asyncio.Event()
    server = Server(ServerConfig(listen=f"127.0.0.1:{port}"), Handlers())
    task = asyncio.create_task(server.run(started))
    await asyncio.wait_for(started.wait(), timeout=20)
    async with httpx.AsyncClient() as client:
        r = await client.get(f"http://127.0.0.1:{port}/-/healthy")
    assert r.status_code == 200
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=20)
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/-/healthy")


async def test_no_signal_handlers_are_installed() -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    async with running(Handlers()) as server, httpx.AsyncClient(base_url=server.url) as client:
        during = {sig: signal.getsignal(sig) for sig in before}
        assert (await client.get("/-/healthy")).status_code == 200
    after = {sig: signal.getsignal(sig) for sig in before}
    assert during == before
    assert after == before


async def test_serves_in_the_agents_loop_and_leaves_sigterm_and_sighup_to_the_agent() -> None:
    # The agent adds its SIGTERM and SIGHUP handlers to its loop and stops the server by
    # cancelling it once its state is saved. A server that took SIGTERM itself would stop
    # serving on the signal and hand it back afterwards (the agent would see it twice).
    loop = asyncio.get_running_loop()
    handlers = Handlers()
    sigterms: list[int] = []
    term_seen, hup_seen = asyncio.Event(), asyncio.Event()
    reloads: list[asyncio.Task[tuple[bool, str]]] = []

    def on_sigterm() -> None:  # agent.app: Agent.stop
        sigterms.append(signal.SIGTERM)
        term_seen.set()

    def on_sighup() -> None:  # agent.app: Agent._reload_soon
        reloads.append(loop.create_task(handlers.reload()))
        hup_seen.set()

    async def send(sig: int, seen: asyncio.Event) -> None:
        seen.clear()
        os.kill(os.getpid(), sig)
        await asyncio.wait_for(seen.wait(), timeout=20)

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    try:
        server = Server(ServerConfig(listen="127.0.0.1:0"), handlers)
        started = asyncio.Event()
        task = asyncio.create_task(server.run(started))
        await asyncio.wait_for(started.wait(), timeout=20)
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/-/healthy")).status_code == 200

            await send(signal.SIGHUP, hup_seen)
            assert await reloads[-1] == ("ok", "config reloaded")
            await send(signal.SIGTERM, term_seen)
            assert handlers.reloads == 1
        # SIGTERM reached the agent, and the server keeps taking connections until told to stop.
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/-/ready")).status_code == 503

        task.cancel()  # the agent's answer to SIGTERM, once its state is saved
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=20)
        # Signals arrive in order: once this SIGHUP is handled, a SIGTERM raised again
        # when the server stopped would have been handled too.
        await send(signal.SIGHUP, hup_seen)
        await reloads[-1]
        assert sigterms == [signal.SIGTERM]
        assert handlers.reloads == 2
        async with httpx.AsyncClient() as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{server.port}/-/healthy")
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        loop.remove_signal_handler(signal.SIGHUP)


async def until_refused(port: int) -> None:
    """Return once nothing accepts connections on 127.0.0.1:port any more."""
    async with asyncio.timeout(20):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except ConnectionRefusedError:
                return
            writer.close()
            await asyncio.sleep(0.01)


class SlowReload(Handlers):
    """A reload that runs until the test releases it."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def reload(self) -> tuple[bool, str]:
        self.entered.set()
        await self.release.wait()
        return await super().reload()


async def test_a_request_in_flight_when_the_server_stops_gets_its_answer() -> None:
    handlers = SlowReload()
    server = Server(ServerConfig(listen="127.0.0.1:0", enable_admin_api=True), handlers)
    started = asyncio.Event()
    task = asyncio.create_task(server.run(started))
    await asyncio.wait_for(started.wait(), timeout=20)
    async with httpx.AsyncClient(base_url=server.url) as client:
        request = asyncio.create_task(client.post("/-/reload"))
        await asyncio.wait_for(handlers.entered.wait(), timeout=20)
        task.cancel()
        await until_refused(server.port)  # the stop has begun: no new connections
        handlers.release.set()
        r = await asyncio.wait_for(request, timeout=20)
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=20)
    assert r.status_code == 200
    assert r.text == "config reloaded\n"
    assert task.cancelled()


async def test_a_request_stuck_past_the_grace_period_does_not_hold_up_the_stop() -> None:
    handlers = SlowReload()  # never released
    server = Server(ServerConfig(listen="127.0.0.1:0", enable_admin_api=True), handlers)
    started = asyncio.Event()
    task = asyncio.create_task(server.run(started))
    await asyncio.wait_for(started.wait(), timeout=20)
    async with httpx.AsyncClient(base_url=server.url) as client:
        request = asyncio.create_task(client.post("/-/reload"))
        await asyncio.wait_for(handlers.entered.wait(), timeout=20)
        t0 = time.monotonic()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=20)
        elapsed = time.monotonic() - t0
        r = await asyncio.wait_for(request, timeout=20)
    assert task.cancelled()
    assert 1.5 < elapsed < 4.0  # the 2 s grace, then the stop; inside the agent's 5 s budget
    assert r.status_code == 500  # cut off, and told so
    assert r.headers["connection"] == "close"


async def test_cancel_with_idle_keepalive_and_half_sent_request_stops_fast() -> None:
    server = Server(ServerConfig(listen="127.0.0.1:0"), Handlers())
    started = asyncio.Event()
    task = asyncio.create_task(server.run(started))
    await asyncio.wait_for(started.wait(), timeout=20)
    port = server.port
    client = httpx.AsyncClient(base_url=server.url)
    assert (await client.get("/metrics")).status_code == 200  # keep-alive connection stays open
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # headers never finished
    await writer.drain()
    t0 = time.monotonic()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=20)
    elapsed = time.monotonic() - t0
    writer.close()
    await client.aclose()
    assert task.cancelled()
    assert elapsed < 4.0  # graceful wait is capped at 2 s; well inside the agent's 5 s budget
    with socket.socket() as again:  # nothing listens any more: a restarted agent can bind
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))


def test_check_reports_unusable_tls_files_for_chatwatch_check(tmp_path: Path) -> None:
    _, _, key_file = tls_files(tmp_path)
    good = ServerConfig.model_validate(
        {"tls": {"cert_file": "server.crt", "key_file": "server.key"}}
    )
    swapped = ServerConfig.model_validate(
        {"tls": {"cert_file": str(key_file), "key_file": str(tmp_path / "gone.key")}}
    )
    assert check(good, base_dir=tmp_path) == []
    assert check(ServerConfig()) == []
    (problem,) = check(swapped)
    assert problem.startswith("server.tls.key_file: cannot read")
    assert "gone.key" in problem


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ({"username": "a:b", "password": "x"}, "without ':'"),
        ({"username": "", "password": "x"}, "non-empty"),
        ({"username": "prom", "password": ""}, "password is empty"),
    ],
)
def test_basic_auth_config_rejects_what_cannot_work(auth: dict[str, str], expected: str) -> None:
    from agent.config import ConfigError, loads

    text = "sources: [{name: a, paths: [x.log]}]\nserver: {basic_auth: %s}\n" % (
        "{" + ", ".join(f"{k}: '{v}'" for k, v in auth.items()) + "}"
    )
    with pytest.raises(ConfigError) as info:
        loads(text, "cw.yaml", {})
    (problem,) = info.value.problems
    assert problem.startswith("cw.yaml: server.basic_auth.")
    assert expected in problem
    assert "'x'" not in problem


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_ipv6_listen_address() -> None:
    async with running(Handlers(), ServerConfig(listen="[::1]:0")) as server:
        assert server.url.startswith("http://[::1]:")
        async with httpx.AsyncClient(base_url=server.url) as client:
            r = await client.get("/-/healthy")
    assert r.status_code == 200


def client_context(ca: trustme.CA, client_cert: trustme.LeafCert | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    if client_cert is not None:
        client_cert.configure_cert(ctx)
    return ctx


async def test_tls_client_certificates_required(tmp_path: Path) -> None:
    ca, _, _ = tls_files(tmp_path)
    ca.cert_pem.write_to_path(str(tmp_path / "clients-ca.crt"))
    stranger_ca = trustme.CA()
    cfg = ServerConfig.model_validate(
        {
            "listen": "127.0.0.1:0",
            "tls": {
                "cert_file": "server.crt",
                "key_file": "server.key",
                "client_ca_file": "clients-ca.crt",
                "client_auth_type": "RequireAndVerifyClientCert",
            },
        }
    )
    async with running(Handlers(), cfg, base_dir=tmp_path) as server:
        good = client_context(ca, ca.issue_cert("prometheus.monitoring"))
        async with httpx.AsyncClient(base_url=server.url, verify=good) as client:
            r = await client.get("/metrics")
        for bad in (client_context(ca), client_context(ca, stranger_ca.issue_cert("mallory"))):
            async with httpx.AsyncClient(base_url=server.url, verify=bad) as client:
                with pytest.raises(httpx.TransportError):
                    await client.get("/metrics")
    assert r.status_code == 200 and "chatwatch_lines_read_total" in r.text


async def test_tls_client_certificate_optional_but_verified_if_given(tmp_path: Path) -> None:
    ca, _, _ = tls_files(tmp_path)
    ca.cert_pem.write_to_path(str(tmp_path / "clients-ca.crt"))
    cfg = ServerConfig.model_validate(
        {
            "listen": "127.0.0.1:0",
            "tls": {
                "cert_file": "server.crt",
                "key_file": "server.key",
                "client_ca_file": "clients-ca.crt",
                "client_auth_type": "VerifyClientCertIfGiven",
                "min_version": "TLS13",
            },
        }
    )
    async with running(Handlers(), cfg, base_dir=tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url, verify=client_context(ca)) as client:
            anonymous = await client.get("/-/healthy")
        forged = client_context(ca, trustme.CA().issue_cert("mallory"))
        async with httpx.AsyncClient(base_url=server.url, verify=forged) as client:
            with pytest.raises(httpx.TransportError):
                await client.get("/-/healthy")
        tls12_only = client_context(ca)
        tls12_only.maximum_version = ssl.TLSVersion.TLSv1_2
        async with httpx.AsyncClient(base_url=server.url, verify=tls12_only) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get("/-/healthy")
    assert anonymous.status_code == 200


def test_client_auth_without_client_ca_is_a_config_error() -> None:
    from agent.config import ConfigError, loads

    text = (
        "sources: [{name: a, paths: [x.log]}]\n"
        "server: {tls: {cert_file: a.crt, key_file: a.key, "
        "client_auth_type: RequireAndVerifyClientCert}}\n"
    )
    with pytest.raises(ConfigError) as info:
        loads(text, "cw.yaml", {})
    (problem,) = info.value.problems
    assert problem.startswith("cw.yaml: server.tls")
    assert "needs client_ca_file" in problem


def test_chatwatch_check_reports_unusable_tls_files(tmp_path: Path) -> None:
    from agent.commands.check import check_all

    tls_files(tmp_path)
    config = tmp_path / "cw.yaml"
    config.write_text(
        "sources: [{name: a, paths: [x.log]}]\n"
        "server: {tls: {cert_file: server.crt, key_file: missing.key}}\n"
    )
    (problem,) = check_all(str(config))
    assert problem.startswith("server.tls.key_file: cannot read")
    assert str(tmp_path / "missing.key") in problem
    config.write_text(
        "sources: [{name: a, paths: [x.log]}]\n"
        "server: {tls: {cert_file: server.crt, key_file: server.key}}\n"
    )
    assert check_all(str(config)) == []
