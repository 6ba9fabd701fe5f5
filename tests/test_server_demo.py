"""The demo as a user meets it: the demo writer's log, the bundled config's metrics, and
/metrics served by our server show exactly what was written."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.config import load
from agent.decode.events import Event, Origin
from agent.decode.formats import make_decoder
from agent.metrics.exposition import collector
from agent.metrics.extract import Extractor
from agent.metrics.store import Store
from agent.support.selfmetrics import SelfMetrics
from tests.server_support import Handlers, client_of

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "chatwatch.yaml"
WRITER = ROOT / "examples" / "demo_writer.py"
LINES = 6000


def write_demo_log(path: Path) -> list[dict[str, Any]]:
    args = ["--out", str(path), "--lines", str(LINES), "--rate", "0", "--seed", "21"]
    args += ["--start", "2026-01-01T00:00:00Z", "--burst-every", "60"]
    subprocess.run([sys.executable, str(WRITER), *args], check=True, timeout=60)
    return [json.loads(line) for line in path.read_text().splitlines()]


def samples(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            # An empty label value is no label, as Prometheus stores it.
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if v != ""))
            out.setdefault(s.name, {})[labels] = s.value
    return out


@pytest.fixture
def demo_metrics(tmp_path: Path) -> tuple[list[dict[str, Any]], Handlers]:
    cfg = load(CONFIG)
    events = write_demo_log(tmp_path / "chatbot.log")
    stats = SelfMetrics()
    store = Store(stats)
    extractor = Extractor(cfg.metrics, store, stats)
    problems: list[str] = []
    decoder = make_decoder(cfg.sources[0], problems.append)
    decoded: list[Event] = []
    decoder.decode((tmp_path / "chatbot.log").read_bytes().splitlines(), decoded)
    assert problems == [] and len(decoded) == LINES
    extractor(Origin("chatbot", str(tmp_path / "chatbot.log")), decoded)
    return events, Handlers([collector(store, stats)])


async def test_demo_config_counts_what_the_demo_writer_wrote(
    demo_metrics: tuple[list[dict[str, Any]], Handlers],
) -> None:
    events, handlers = demo_metrics
    async with client_of(handlers) as client:
        r = await client.get("/metrics")
    got = samples(r.text)
    http = [e for e in events if e["event"] == "http_request"]
    llm = [e for e in events if e["event"] == "llm_call"]

    by_route_status = Counter((e["route"], str(e["status_code"])) for e in http)
    assert {
        (dict(k)["route"], dict(k)["status_code"]): v
        for k, v in got["chatbot_http_requests_total"].items()
    } == by_route_status
    chat_count = got["chatbot_http_request_duration_seconds_count"][(("route", "/api/chat"),)]
    assert chat_count == sum(e["route"] == "/api/chat" for e in http)
    under_1s = got["chatbot_http_request_duration_seconds_bucket"][
        (("le", "1.0"), ("route", "/api/chat"))
    ]
    assert under_1s == sum(e["route"] == "/api/chat" and e["duration_ms"] <= 1000 for e in http)

    for model in {e["model"] for e in llm}:
        mine = [e for e in llm if e["model"] == model]
        key = (("model", model),)
        assert got["chatbot_llm_prompt_tokens_total"][key] == sum(
            e["usage"]["prompt_tokens"] for e in mine
        )
        assert got["chatbot_llm_completion_tokens_total"][key] == sum(
            e["usage"]["completion_tokens"] for e in mine
        )
        assert got["chatbot_llm_cost_usd_total"][key] == pytest.approx(
            sum(e["cost_usd"] for e in mine)
        )
        assert got["chatbot_llm_request_duration_seconds_count"][key] == len(mine)
        ok = (("model", model), ("status", "ok"))
        assert got["chatbot_llm_calls_total"][ok] == sum(e["status"] == "ok" for e in mine)
        for error_type in ("timeout", "rate_limited", "server_error"):
            errors = (("error_type", error_type), ("model", model), ("status", "error"))
            assert got["chatbot_llm_calls_total"].get(errors, 0) == sum(
                e.get("error_type") == error_type for e in mine
            )

    kinds = Counter(e["event"] for e in events)
    assert got["chatbot_active_sessions"][()] == kinds["session_started"] - kinds["session_ended"]
    outcomes = Counter((e["category"], e["resolution"]) for e in events if "resolution" in e)
    assert {
        (dict(k)["category"], dict(k)["resolution"]): v
        for k, v in got["chatbot_conversations_total"].items()
    } == outcomes
    reasons = Counter(e["reason"] for e in events if e["event"] == "auth_failure")
    assert {dict(k)["reason"]: v for k, v in got["chatbot_auth_failures_total"].items()} == reasons
    assert sum(got["chatbot_log_events_total"].values()) == LINES

    last = datetime.fromisoformat(events[-1]["ts"].replace("Z", "+00:00")).timestamp()
    assert got["chatbot_last_event_timestamp_seconds"][()] == pytest.approx(last, abs=0.001)


async def test_demo_metrics_pass_promtool_check_metrics(
    demo_metrics: tuple[list[dict[str, Any]], Handlers],
) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    _, handlers = demo_metrics
    async with client_of(handlers) as client:
        r = await client.get("/metrics")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=r.text, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
