"""`chatwatch demo` (what `make run` starts): the demo chatbot's lines reach /metrics."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.realservers import free_port, wait_until

pytestmark = pytest.mark.slow


def test_demo_serves_metrics_of_the_demo_chatbot_and_exits_cleanly(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "agent", "--log-format", "text", "demo",
            "--dir", str(tmp_path), "--listen", f"127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"

        def requests_seen() -> bool:
            text = httpx.get(f"{url}/metrics", timeout=2).text
            return "chatbot_http_requests_total{" in text

        wait_until(requests_seen, timeout=25, what="demo requests on /metrics")
        rules = httpx.get(f"{url}/api/v1/rules", timeout=2).json()
        assert rules["status"] == "success"
        assert rules["data"]["groups"], "the bundled rule pack is loaded"
        assert (tmp_path / "chatbot.log").stat().st_size > 0
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C, as a user stops `make run`
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert f"{url}/metrics" in out
