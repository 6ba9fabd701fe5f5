"""A real Prometheus scrapes a running chatwatch that tails a chatbot log.

The user's check: what Prometheus stores equals what the chatbot wrote.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.realservers import Prometheus, free_port, require, running_chatwatch, wait_until

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent

CONFIG = """
sources:
  - name: chatbot
    paths: ["logs/*.log"]
    format: json
    start_at: beginning
state_dir: state
server: {{listen: "127.0.0.1:{port}"}}
metrics:
  - name: chatbot_http_requests_total
    type: counter
    help: HTTP requests handled by the chatbot.
    match: {{event: http_request}}
    labels: {{route: route, status_code: status_code}}
  - name: chatbot_http_request_duration_seconds
    type: histogram
    help: Request latency.
    match: {{event: http_request}}
    value: duration_ms
    scale: 0.001
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5]
    labels: {{route: route}}
  - name: chatbot_llm_tokens_total
    type: counter
    help: Tokens used.
    match: {{event: llm_call}}
    value: usage.total_tokens
    labels: {{model: model}}
"""


def make_events(n: int, seed: int) -> list[dict[str, object]]:
    """Deterministic chatbot events: the same (n, seed) gives the same events."""
    rng = random.Random(seed)
    events: list[dict[str, object]] = []
    for i in range(n):
        if rng.random() < 0.8:
            ev: dict[str, object] = {
                "event": "http_request",
                "i": i,
                "route": rng.choice(["/chat", "/health"]),
                "status_code": rng.choice([200, 200, 200, 503]),
                "duration_ms": rng.choice([20, 80, 300, 900, 4000]),
            }
        else:
            ev = {
                "event": "llm_call",
                "i": i,
                "model": rng.choice(["gpt-4o", "small"]),
                "usage": {"total_tokens": rng.randint(10, 500)},
            }
        events.append(ev)
    return events


def write_log(path: Path, n: int, seed: int) -> list[dict[str, object]]:
    events = make_events(n, seed)
    with path.open("ab") as f:
        f.write(b"".join(orjson.dumps(ev) + b"\n" for ev in events))
    return events


def test_prometheus_stores_exactly_what_the_chatbot_logged(tmp_path: Path) -> None:
    require("prometheus")
    (tmp_path / "logs").mkdir()
    port = free_port()
    cfg = tmp_path / "chatwatch.yaml"
    cfg.write_text(CONFIG.format(port=port))
    log = tmp_path / "logs" / "bot.log"
    written = write_log(log, 3000, seed=1)

    prom = Prometheus(tmp_path, [f"127.0.0.1:{port}"]).start()
    try:
        with running_chatwatch(cfg, port, tmp_path):
            # More lines while running, by a separate writer process.
            script = (
                "import sys, orjson, pathlib\n"
                "from tests.test_e2e_prometheus import write_log\n"
                "write_log(pathlib.Path(sys.argv[1]), 2000, seed=2)\n"
            )
            subprocess.run([sys.executable, "-c", script, str(log)], check=True, cwd=ROOT)
            written += make_events(2000, seed=2)

            requests = [e for e in written if e["event"] == "http_request"]
            expected_total = len(requests)
            chat_5xx = sum(1 for e in requests if e["route"] == "/chat" and e["status_code"] == 503)
            slow_chat = sum(
                1
                for e in requests
                if e["route"] == "/chat" and int(e["duration_ms"]) <= 1000  # type: ignore[call-overload]
            )
            chat_total = sum(1 for e in requests if e["route"] == "/chat")
            tokens_gpt = sum(
                e["usage"]["total_tokens"]  # type: ignore[index]
                for e in written
                if e["event"] == "llm_call" and e["model"] == "gpt-4o"
            )

            def scalar(expr: str) -> float | None:
                result = prom.query(expr)
                return float(result[0]["value"][1]) if result else None

            wait_until(
                lambda: scalar("sum(chatbot_http_requests_total)") == expected_total,
                timeout=40,
                what=f"Prometheus to see {expected_total} requests",
            )
            assert (
                scalar('chatbot_http_requests_total{route="/chat",status_code="503"}') == chat_5xx
            )
            le1 = 'chatbot_http_request_duration_seconds_bucket{route="/chat",le="1.0"}'
            assert scalar(le1) == slow_chat
            count = 'chatbot_http_request_duration_seconds_count{route="/chat"}'
            assert scalar(count) == chat_total
            assert scalar('chatbot_llm_tokens_total{model="gpt-4o"}') == tokens_gpt
            up = prom.query('up{job="chatwatch"}')
            assert up and up[0]["value"][1] == "1"
    finally:
        prom.stop()


def test_promtool_check_metrics_accepts_our_exposition(tmp_path: Path) -> None:
    promtool = require("promtool")
    (tmp_path / "logs").mkdir()
    port = free_port()
    cfg = tmp_path / "chatwatch.yaml"
    cfg.write_text(CONFIG.format(port=port))
    write_log(tmp_path / "logs" / "bot.log", 500, seed=3)
    with running_chatwatch(cfg, port, tmp_path) as cw:
        wait_until(lambda: "chatbot_llm_tokens_total{" in cw.metrics(), what="metrics")
        text = cw.metrics()
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
