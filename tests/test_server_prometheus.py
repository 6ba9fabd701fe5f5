"""A real Prometheus scrapes our server over TLS with basic auth, as a secured pod would be
scraped: the right credentials give `up == 1` and our values, the wrong ones `up == 0`."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from agent.server.config import ServerConfig
from tests.realservers import free_port, require
from tests.server_support import Handlers, running

pytestmark = pytest.mark.slow

USER, PASSWORD = "prometheus", "scrape-me-Pa55"


async def poll(check: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await check()
        except httpx.HTTPError as exc:
            last = exc
        else:
            if last:
                return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}: {last!r}")


async def test_prometheus_scrapes_over_tls_with_basic_auth(tmp_path: Path) -> None:
    binary = require("prometheus")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    (tmp_path / "password").write_text(PASSWORD + "\n")
    cfg = ServerConfig.model_validate(
        {
            "listen": "127.0.0.1:0",
            "tls": {"cert_file": "server.crt", "key_file": "server.key"},
            "basic_auth": {"username": USER, "password_file": str(tmp_path / "password")},
        }
    )
    handlers = Handlers()
    async with running(handlers, cfg, base_dir=tmp_path) as server:
        target = f"127.0.0.1:{server.port}"
        prom_port = free_port()
        (tmp_path / "prometheus.yml").write_text(
            f"""
global: {{scrape_interval: 1s}}
scrape_configs:
  - job_name: good
    scheme: https
    tls_config: {{ca_file: {tmp_path / "ca.crt"}}}
    basic_auth: {{username: {USER}, password_file: {tmp_path / "password"}}}
    static_configs: [{{targets: ["{target}"]}}]
  - job_name: wrong_password
    scheme: https
    tls_config: {{ca_file: {tmp_path / "ca.crt"}}}
    basic_auth: {{username: {USER}, password: not-it}}
    static_configs: [{{targets: ["{target}"]}}]
"""
        )
        with (tmp_path / "prometheus.log").open("wb") as log:
            proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{prom_port}") as prom:

                    async def query(expr: str) -> list[dict[str, Any]]:
                        r = await prom.get("/api/v1/query", params={"query": expr})
                        r.raise_for_status()
                        result: list[dict[str, Any]] = r.json()["data"]["result"]
                        return result

                    async def both_scraped() -> list[dict[str, Any]] | None:
                        result = await query("up")
                        return result if len(result) == 2 else None

                    up = await poll(both_scraped, 60, "two scrape results in Prometheus")
                    values = await poll(
                        lambda: query('chatwatch_lines_read_total{source="chatbot"}'),
                        30,
                        "chatwatch_lines_read_total in Prometheus",
                    )
                    targets = (await prom.get("/api/v1/targets")).json()["data"]["activeTargets"]
            finally:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    by_job = {r["metric"]["job"]: r["value"][1] for r in up}
    assert by_job == {"good": "1", "wrong_password": "0"}
    assert [(v["metric"]["job"], v["value"][1]) for v in values] == [("good", "3")]
    errors = {t["labels"]["job"]: t["lastError"] for t in targets}
    assert "401" in errors["wrong_password"]
    assert PASSWORD not in (tmp_path / "prometheus.log").read_text()
