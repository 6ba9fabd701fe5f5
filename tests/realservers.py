"""Real servers for end-to-end tests: a Prometheus that scrapes us, a running chatwatch.

Every server binds to 127.0.0.1 on a free port and is stopped by the fixture that made it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(predicate: Any, timeout: float = 20.0, interval: float = 0.1, what: str = "") -> Any:
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}: {last!r}")


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        if os.environ.get("CI"):
            raise RuntimeError(f"{binary} is required in CI; .ci/run installs it")
        pytest.skip(f"{binary} is not installed (apt-get install it, or run .ci/run)")
    return path


class Chatwatch:
    """`chatwatch run -c CONFIG` as a real subprocess, with its stderr kept for assertions."""

    def __init__(self, config: Path, port: int, workdir: Path) -> None:
        self.config = config
        self.port = port
        self.stderr_path = workdir / "chatwatch.stderr"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_ready: bool = True) -> Chatwatch:
        self.stderr = self.stderr_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "run", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
        )
        if wait_ready:
            wait_until(self._ready, timeout=30, what="chatwatch /-/ready")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"chatwatch exited {self.proc.returncode}: {self.logs()}")
        return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200

    def logs(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=5).text

    def samples(self, name: str, **labels: str) -> list[float]:
        """The values of `name` on /metrics, of every series that has these labels."""
        return [
            sample.value
            for family in text_string_to_metric_families(self.metrics())
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        ]

    def sample(self, name: str, **labels: str) -> float | None:
        """The value of the one series `name{labels}` on /metrics; None if it is not there."""
        values = self.samples(name, **labels)
        assert len(values) <= 1, f"{name}{labels} matches {len(values)} series"
        return values[0] if values else None

    def wait_evaluated(self, after: float, timeout: float = 20.0) -> float:
        """Until every rule group was evaluated at `after` (Unix time) or later; returns
        the time of the oldest of those evaluations.

        The barrier "the rules have seen it": an evaluation at or after `after` began
        after it, so it saw everything /metrics showed before `after`. Wait on this
        instead of sleeping for an evaluation interval or two.
        """

        def evaluated() -> float | None:
            times = self.samples("chatwatch_rule_group_last_evaluation_timestamp_seconds")
            return min(times) if times and min(times) >= after else None

        when: float = wait_until(
            evaluated, timeout, interval=0.05, what=f"an evaluation after {after}"
        )
        return when

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        return self.proc.returncode


@contextlib.contextmanager
def running_chatwatch(config: Path, port: int, workdir: Path) -> Iterator[Chatwatch]:
    cw = Chatwatch(config, port, workdir).start()
    try:
        yield cw
    finally:
        cw.stop()


class Prometheus:
    def __init__(self, workdir: Path, targets: list[str], scrape_interval: str = "1s") -> None:
        self.binary = require("prometheus")
        self.port = free_port()
        self.workdir = workdir
        cfg = workdir / "prometheus.yml"
        listed = ", ".join(f'"{t}"' for t in targets)
        cfg.write_text(
            f"global: {{scrape_interval: {scrape_interval},"
            f" evaluation_interval: {scrape_interval}}}\n"
            "scrape_configs:\n"
            "  - job_name: chatwatch\n"
            f"    static_configs: [{{targets: [{listed}]}}]\n"
        )
        self.config = cfg
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Prometheus:
        self.log = (self.workdir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_until(
            lambda: httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200,
            timeout=30,
            what="prometheus ready",
        )
        return self

    def query(self, expr: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5)
        r.raise_for_status()
        result: list[dict[str, Any]] = r.json()["data"]["result"]
        return result

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@contextlib.contextmanager
def running_alertmanager(
    config_text: str, workdir: Path, args: tuple[str, ...] = ()
) -> Iterator[str]:
    """A real Alertmanager on 127.0.0.1 running `config_text` (with extra command-line
    `args`, such as `--web.external-url=...`), until the block ends; yields its URL."""
    binary = shutil.which("prometheus-alertmanager") or require("alertmanager")
    port = free_port()
    config = workdir / "alertmanager.yml"
    config.write_text(config_text)
    log_path = workdir / "alertmanager.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={workdir / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                *args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:

            def ready() -> bool:
                if proc.poll() is not None:
                    raise AssertionError(f"alertmanager exited: {log_path.read_text()}")
                return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200

            wait_until(ready, timeout=30, what="alertmanager /-/ready")
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
