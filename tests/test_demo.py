"""`chatwatch demo` (what `make run` starts): the demo chatbot's lines reach /metrics."""

from __future__ import annotations

import os
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


def test_demo_prints_its_page_first_and_removes_its_temporary_folder(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # where mkdtemp makes the working folder
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "agent", "--log-format", "text", "demo",
            "--listen", f"127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        lines = [proc.stdout.readline()]
        while lines[-1] and not lines[-1].startswith("Ctrl-C"):
            lines.append(proc.stdout.readline())
        url = f"http://127.0.0.1:{port}"
        assert lines[1].strip() == f"chatwatch demo: open {url}/ in a browser", lines
        (workdir,) = tmp_path.glob("chatwatch-demo-*")
        page = wait_until(
            lambda: httpx.get(f"{url}/", timeout=2), timeout=25, what="the demo's page"
        )
        assert page.status_code == 200 and "Overview" in page.text
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert lines[-1].strip() == f"Ctrl-C stops both and removes {workdir}."
    assert not workdir.exists(), "the temporary working folder is removed on Ctrl-C"
