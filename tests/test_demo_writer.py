"""The demo chatbot log writer, run as a user runs it: a separate process writing a file."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

WRITER = Path(__file__).resolve().parent.parent / "examples" / "demo_writer.py"
START = "2026-01-01T00:00:00Z"
COMMON = {"ts", "level", "logger", "event", "message"}
FIELDS = {
    "http_request": {"route", "method", "status_code", "duration_ms", "request_id"},
    "llm_call": {"model", "provider", "usage", "cost_usd", "duration_ms", "status", "request_id"},
    "session_started": {"session_id", "channel"},
    "session_ended": {"session_id", "channel", "duration_s", "messages"},
    "conversation_ended": {"session_id", "category", "resolution", "turns"},
    "auth_failure": {"reason", "route", "client_ip"},
}


def run_writer(
    *args: str, timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(WRITER), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )


def read_events(path: Path) -> list[dict[str, Any]]:
    text = path.read_text()
    assert text.endswith("\n")
    events = [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(e, dict) for e in events)
    return events


def offset(event: dict[str, Any]) -> float:
    start = datetime.fromisoformat(START.replace("Z", "+00:00"))
    return (datetime.fromisoformat(event["ts"].replace("Z", "+00:00")) - start).total_seconds()


def test_lines_are_json_objects_with_the_documented_fields(tmp_path: Path) -> None:
    out = tmp_path / "bot.log"
    args = ["--lines", "5000", "--rate", "0", "--seed", "7", "--start", START, "--burst-every", "0"]
    run_writer("--out", str(out), *args)
    events = read_events(out)
    assert len(events) == 5000
    kinds = Counter(e["event"] for e in events)
    assert set(kinds) == set(FIELDS)
    for e in events:
        missing = (COMMON | FIELDS[e["event"]]) - set(e)
        assert not missing, (e, missing)
    # The reference mix: mostly HTTP, then LLM calls, a few sessions and auth failures.
    assert 0.70 < kinds["http_request"] / 5000 < 0.88
    assert 0.03 < kinds["llm_call"] / 5000 < 0.10
    assert 0.001 < kinds["auth_failure"] / 5000 < 0.008  # a few a minute, below the pack's 10
    for e in events:
        if e["event"] == "llm_call":
            usage = e["usage"]
            assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
            assert (e["cost_usd"] > 0) == (e["status"] == "ok")
        if e["event"] == "http_request":
            assert isinstance(e["status_code"], int) and e["duration_ms"] > 0
    stamps = [e["ts"] for e in events]
    assert stamps == sorted(stamps)
    assert len(out.read_bytes()) / 5000 < 400  # bench-sized lines (~250 bytes)


def test_sessions_open_before_they_end_and_each_end_has_an_outcome(tmp_path: Path) -> None:
    out = tmp_path / "bot.log"
    run_writer("--out", str(out), "--lines", "8000", "--rate", "0", "--seed", "3", "--start", START)
    events = read_events(out)
    open_sessions: set[str] = set()
    peak = 0
    for prev, e in zip([{}, *events], events, strict=False):
        if e["event"] == "session_started":
            open_sessions.add(e["session_id"])
        elif e["event"] == "session_ended":
            assert e["session_id"] in open_sessions
            open_sessions.remove(e["session_id"])
            assert prev.get("event") == "conversation_ended"
            assert prev["session_id"] == e["session_id"]
        peak = max(peak, len(open_sessions))
    assert 5 < peak < 100  # an active-sessions gauge that moves, stays positive and bounded


def test_same_seed_and_start_give_identical_output(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.log", tmp_path / "b.log", tmp_path / "c.log"
    common = ["--lines", "2000", "--rate", "0", "--start", START]
    run_writer("--out", str(a), "--seed", "11", *common)
    run_writer("--out", str(b), "--seed", "11", *common)
    run_writer("--out", str(c), "--seed", "12", *common)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_error_burst_brings_5xx_and_llm_errors(tmp_path: Path) -> None:
    out = tmp_path / "bot.log"
    # 100 lines per logical second for 200 s: bursts at 60-75 s, 120-135 s and 180-195 s.
    run_writer(
        *("--out", str(out), "--lines", "20000", "--rate", "100", "--seed", "5"),
        *("--start", START, "--burst-every", "60", "--burst-length", "15"),
    )
    events = read_events(out)

    def in_burst(e: dict[str, Any]) -> bool:
        t = offset(e)
        return t >= 60 and (t - 60) % 60 < 15

    def share(events: list[dict[str, Any]], kind: str, bad: str) -> float:
        chosen = [e for e in events if e["event"] == kind]
        if kind == "http_request":
            return sum(e["status_code"] >= 500 for e in chosen) / len(chosen)
        return sum(e["status"] == bad for e in chosen) / len(chosen)

    burst = [e for e in events if in_burst(e)]
    calm = [e for e in events if not in_burst(e)]
    assert len(burst) > 3000
    assert share(burst, "http_request", "") > 0.10
    assert share(calm, "http_request", "") < 0.02
    assert share(burst, "llm_call", "error") > 0.25
    assert share(calm, "llm_call", "error") < 0.03
    # Someone tries stolen tokens during the spell: auth failures jump tenfold.
    auth_burst = sum(e["event"] == "auth_failure" for e in burst) / len(burst)
    auth_calm = sum(e["event"] == "auth_failure" for e in calm) / len(calm)
    assert auth_burst > 5 * auth_calm
    # The whole 5xx burst is visible: every burst window has 5xx, calm stretches few.
    for window in (60, 120, 180):
        window_5xx = [
            e for e in burst if window <= offset(e) < window + 15 and e.get("status_code", 0) >= 500
        ]
        assert len(window_5xx) > 50


def test_rotation_by_rename_and_create_loses_and_repeats_nothing(tmp_path: Path) -> None:
    plain, rotated = tmp_path / "plain.log", tmp_path / "rot" / "bot.log"
    common = ["--lines", "1800", "--rate", "0", "--seed", "9", "--start", START]
    run_writer("--out", str(plain), *common)
    run_writer("--out", str(rotated), "--rotate-every", "500", "--keep", "5", *common)
    parts = [rotated.with_name(f"bot.log.{n}") for n in (3, 2, 1)] + [rotated]
    assert [len(p.read_text().splitlines()) for p in parts] == [500, 500, 500, 300]
    assert not rotated.with_name("bot.log.4").exists()
    assert b"".join(p.read_bytes() for p in parts) == plain.read_bytes()


def test_rotation_keeps_only_the_asked_copies(tmp_path: Path) -> None:
    out = tmp_path / "bot.log"
    run_writer("--out", str(out), "--lines", "1000", "--rate", "0", "--rotate-every", "200")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bot.log", "bot.log.1"]
    assert len(out.with_name("bot.log.1").read_text().splitlines()) == 200


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_it_cleanly_at_a_line_boundary(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "demo" / "chatbot.log"
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), "--out", str(out), "--rate", "50"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        t0 = time.monotonic()
        deadline = t0 + 20
        while time.monotonic() < deadline:
            if out.exists() and out.read_text().count("\n") >= 20:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the writer wrote fewer than 20 lines in 20 s")
        proc.send_signal(sig)
        code = proc.wait(timeout=10)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read() if proc.stderr else ""
    assert code == 0, stderr
    assert "Traceback" not in stderr
    events = read_events(out)  # the last line is complete
    assert 20 <= len(events) <= 50 * elapsed + 5  # paced: never ahead of --rate


def test_stdout_mode_for_piping(tmp_path: Path) -> None:
    result = run_writer("--out", "-", "--lines", "50", "--rate", "0", "--seed", "1", cwd=tmp_path)
    lines = result.stdout.splitlines()
    assert len(lines) == 50
    assert all(isinstance(json.loads(line), dict) for line in lines)
    assert not any(tmp_path.iterdir())  # no demo/chatbot.log written beside it


def test_demo_bursts_fire_and_resolve_the_rule_pack_alerts(tmp_path: Path) -> None:
    # The demo's purpose: with the bundled config and rule pack, a burst makes the error
    # alerts fire, they resolve before the next burst, and the calm stretches stay quiet.
    log = tmp_path / "chatbot.log"
    run_writer(
        "--out", str(log), "--lines", "12000", "--rate", "20", "--seed", "1", "--start", START
    )
    config = WRITER.parent / "chatwatch.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "agent", "replay", "-c", str(config), str(log)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    timeline: dict[str, list[tuple[float, str]]] = {}
    for line in result.stdout.splitlines():
        m = re.match(r"^(\d{4}-\S+Z)\s+(FIRING|RESOLVED)\s+(\w+)\{", line)
        if m:
            at = offset({"ts": m.group(1)})
            timeline.setdefault(m.group(3), []).append((at, m.group(2)))
    # The first burst runs from 60 s to 120 s of log time (10 minutes of log in all).
    for alert in ("ChatbotHighErrorRate", "ChatbotAuthFailureBurst", "LLMProviderRateLimited"):
        states = timeline.get(alert, [])
        assert [s for _, s in states][:2] == ["FIRING", "RESOLVED"], (alert, result.stdout)
        fired, resolved = states[0][0], states[1][0]
        assert 60 <= fired < resolved < 480, (alert, states)
    assert "ChatbotLogSilence" not in timeline
    assert "LLMCostOverBudget" not in timeline


def test_signal_is_acted_on_while_waiting_for_a_future_start(tmp_path: Path) -> None:
    out = tmp_path / "bot.log"
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), "--out", str(out), "--start", "2099-01-01T00:00:00Z"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert out.exists()  # opened, now waiting for 2099
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
        waited = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0
    assert waited < 5
    assert out.read_text() == ""
