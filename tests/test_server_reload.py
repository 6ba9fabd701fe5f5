"""A reload that changes `server:` applies what it can and says what it cannot.

New basic-auth credentials (a rotated password file) and a certificate rotated in place
(as cert-manager does) apply without a restart; a new listen address answers 409
"needs a restart", keeps serving on the old one and is counted."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from tests.realservers import Chatwatch, free_port, wait_until

CONFIG = """
sources: [{{name: app, paths: ["{tmp}/app.log"]}}]
state_dir: {tmp}/state
server:
  listen: "127.0.0.1:{port}"
  basic_auth: {{username: prom, password_file: password}}
  tls: {{cert_file: server.crt, key_file: server.key}}
"""


def write_cert(ca: trustme.CA, tmp_path: Path) -> bytes:
    """A new certificate for 127.0.0.1 written over server.crt/server.key; its DER bytes."""
    cert = ca.issue_cert("127.0.0.1")
    (tmp_path / "server.crt").write_bytes(b"".join(b.bytes() for b in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    return ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def agent(tmp_path: Path, ca: trustme.CA) -> Iterator[tuple[Chatwatch, bytes]]:
    first_cert = write_cert(ca, tmp_path)
    (tmp_path / "password").write_text("old-secret\n")
    port = free_port()
    (tmp_path / "cw.yaml").write_text(CONFIG.format(tmp=tmp_path, port=port))
    cw = Chatwatch(tmp_path / "cw.yaml", port, tmp_path)
    cw.start(wait_ready=False)
    try:
        yield cw, first_cert
    finally:
        cw.stop()


def client(ca: trustme.CA, password: str) -> httpx.Client:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return httpx.Client(verify=ctx, auth=("prom", password), timeout=5)


def served_cert(ca: trustme.CA, port: int) -> bytes:
    """The certificate a new TLS connection to the agent gets."""
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def wait_ready(ca: trustme.CA, port: int) -> None:
    def ready() -> bool:
        with client(ca, "x") as c:
            return c.get(f"https://127.0.0.1:{port}/-/ready").status_code == 200

    wait_until(ready, what="agent ready over TLS")


def test_new_password_and_rotated_certificate_apply_on_reload(
    agent: tuple[Chatwatch, bytes], ca: trustme.CA, tmp_path: Path
) -> None:
    cw, first_cert = agent
    base = f"https://127.0.0.1:{cw.port}"
    wait_ready(ca, cw.port)
    assert served_cert(ca, cw.port) == first_cert
    new_cert = write_cert(ca, tmp_path)
    (tmp_path / "password").write_text("new-secret\n")
    with client(ca, "old-secret") as old:
        r = old.post(f"{base}/-/reload")
        assert r.status_code == 200, r.text
        assert old.get(f"{base}/metrics").status_code == 401
    with client(ca, "new-secret") as new:
        assert new.get(f"{base}/metrics").status_code == 200
    assert served_cert(ca, cw.port) == new_cert


def test_a_new_listen_address_answers_409_and_keeps_serving(
    agent: tuple[Chatwatch, bytes], ca: trustme.CA, tmp_path: Path
) -> None:
    cw, _ = agent
    base = f"https://127.0.0.1:{cw.port}"
    wait_ready(ca, cw.port)
    config = tmp_path / "cw.yaml"
    config.write_text(config.read_text().replace(str(cw.port), str(free_port())))
    with client(ca, "old-secret") as c:
        r = c.post(f"{base}/-/reload")
        assert r.status_code == 409
        assert r.text == "config reloaded, except server.listen: that needs a restart\n"
        metrics = c.get(f"{base}/metrics").text
    assert 'chatwatch_config_reloads_total{result="needs_restart"} 1.0' in metrics
    assert "server.listen" in cw.logs()
