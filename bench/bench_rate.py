"""CPU at a realistic rate, and start-up: what the agent costs beside a busy chatbot.

    python bench/bench_rate.py [--rate 2000] [--seconds 10] [--startups 5]

Runs the real agent (`python -m agent run`) on the reference workload's metric
definitions (bench/workload.py) with a small rule file, then a writer appends the
reference lines at a steady `--rate` lines/s, one `write()` each as a logging library
does, in small bursts paced every millisecond. Printed: the agent's CPU (user + system,
from /proc) per line and as a share of one core, measured over `--seconds` after a
warm-up, with the lines the agent counted checked against the lines written; and the
time from starting the process to `/-/ready` answering 200 (the median of `--startups`
starts, the same config without the writer), beside mtail's on the same log
(bench/mtail/chatbot.mtail, to its `/-/ready` answering 200), where mtail is installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
import yaml

from bench.workload import METRICS, make_event, mtail_command

ROOT = Path(__file__).resolve().parent.parent
MTAIL = shutil.which("mtail")
TICKS = os.sysconf("SC_CLK_TCK")

RULES = """
groups:
  - name: chatbot
    rules:
      - alert: HighErrorRate
        expr: sum(rate(chatbot_http_requests_total{status_code=~"5.."}[1m])) > 100
      - alert: AuthFailuresBurst
        expr: sum(increase(chatbot_auth_failures_total[1m])) > 100000
      - record: route:chatbot_http_requests:rate1m
        expr: sum by (route) (rate(chatbot_http_requests_total[1m]))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def _workdir(log: Path) -> tuple[Path, str]:
    work = log.parent
    listen = f"127.0.0.1:{_free_port()}"
    (work / "rules.yml").write_text(RULES)
    cfg = {
        "sources": [{"name": "chatbot", "paths": [str(log)], "format": "json"}],
        "state_dir": str(work / "state"),
        "server": {"listen": listen},
        "metrics": METRICS,
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1s",
    }
    (work / "chatwatch.yaml").write_text(yaml.safe_dump(cfg))
    return work / "chatwatch.yaml", listen


def _start(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "agent", "--log-level", "warning", "run", "-c", str(config)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=(config.parent / "agent.stderr").open("ab"),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _wait_ready(agent: subprocess.Popen[bytes], listen: str, timeout: float = 30) -> float:
    """Seconds until /-/ready answers 200 (polled every 5 ms)."""
    started = time.monotonic()
    with httpx.Client(timeout=1) as client:
        while True:
            try:
                if client.get(f"http://{listen}/-/ready").status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            if agent.poll() is not None or time.monotonic() - started > timeout:
                raise RuntimeError("agent did not become ready")
            time.sleep(0.005)


def _stop(agent: subprocess.Popen[bytes]) -> None:
    agent.terminate()
    try:
        agent.wait(timeout=10)
    except subprocess.TimeoutExpired:
        agent.kill()


def startup(config: Path, listen: str, runs: int) -> float:
    """Median seconds from process start to ready."""
    times = []
    for _ in range(runs):
        started = time.monotonic()
        agent = _start(config)
        try:
            _wait_ready(agent, listen)
            times.append(time.monotonic() - started)
        finally:
            _stop(agent)
    return statistics.median(times)


def mtail_startup(log: Path, runs: int) -> float | None:
    """Median seconds from starting mtail on `log` to ready; None without mtail."""
    if MTAIL is None:
        return None
    times = []
    for _ in range(runs):
        port = _free_port()
        started = time.monotonic()
        mtail = subprocess.Popen(
            mtail_command(log, port),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_ready(mtail, f"127.0.0.1:{port}")
            times.append(time.monotonic() - started)
        finally:
            _stop(mtail)
    return statistics.median(times)


def _counted(listen: str) -> float:
    text = httpx.get(f"http://{listen}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("chatbot_log_events_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def at_rate(config: Path, listen: str, log: Path, rate: int, seconds: float) -> tuple[float, int]:
    """The agent's CPU seconds over `seconds` at `rate` lines/s, and the lines written."""
    import random

    rng = random.Random(7)
    lines = [orjson.dumps(make_event(rng, i)) + b"\n" for i in range(rate * 4)]
    agent = _start(config)
    try:
        _wait_ready(agent, listen)
        warmup = 2.0
        written = 0
        cpu0 = 0.0
        with log.open("ab", buffering=0) as out:
            start = time.monotonic()
            measuring = False
            while True:
                elapsed = time.monotonic() - start
                if not measuring and elapsed >= warmup:
                    measuring, cpu0, start_written = True, _cpu_seconds(agent.pid), written
                    measured_from = time.monotonic()
                if elapsed >= warmup + seconds:
                    break
                due = int(elapsed * rate)
                while written < due:
                    out.write(lines[written % len(lines)])
                    written += 1
                time.sleep(0.001)
        cpu = _cpu_seconds(agent.pid) - cpu0
        wall = time.monotonic() - measured_from
        deadline = time.monotonic() + 10
        while _counted(listen) < written and time.monotonic() < deadline:
            time.sleep(0.1)
        counted = _counted(listen)
        if counted != written:
            raise RuntimeError(f"the agent counted {counted:.0f} lines of {written}")
        return cpu * seconds / wall, written - start_written
    finally:
        _stop(agent)


def main() -> int | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--startups", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="chatwatch-rate-") as tmp:
        log = Path(tmp) / "chatbot.log"
        log.touch()
        config, listen = _workdir(log)
        ready = startup(config, listen, args.startups)
        mtail_ready = mtail_startup(log, args.startups)
        cpu, lines = at_rate(config, listen, log, args.rate, args.seconds)
    mtail = (
        "" if mtail_ready is None else f"; mtail {mtail_ready:.3f} s, {ready / mtail_ready:.0f}x"
    )
    print(f"start-up to ready: {ready:.3f} s (median of {args.startups}){mtail}")
    print(
        f"at {args.rate} lines/s for {args.seconds:.0f} s: "
        f"{cpu / args.seconds:.1%} of a core, {cpu / lines * 1e6:.1f} us CPU per line"
    )
    return None


if __name__ == "__main__":
    sys.exit(main())
