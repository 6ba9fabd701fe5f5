"""The rule pack on realistic logs: the demo chatbot's log replayed through the Kubernetes
example's metric definitions and rules/chatbot.yml with `chatwatch replay`.

A healthy bot raises nothing; a bad spell (5xx, slow and failing LLM calls, auth
failures) raises the matching alerts, which resolve when it ends; a silent log raises
ChatbotLogSilence two minutes after the last line."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.deploy_support import K8S, REPO, yaml_docs

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
BURST_AT = 600  # seconds after START
BURST_LENGTH = 90
EVENT = re.compile(r"^(\S+)\s+(FIRING|RESOLVED)\s+(\w+)\{")


def _demo_log(path: Path, lines: int) -> None:
    subprocess.run(
        [
            sys.executable,
            str(REPO / "examples" / "demo_writer.py"),
            "--out",
            str(path),
            "--rate",
            "20",
            "--lines",
            str(lines),
            "--seed",
            "3",
            "--start",
            START.isoformat(),
            "--first-burst",
            str(BURST_AT),
            "--burst-every",
            "100000",
            "--burst-length",
            str(BURST_LENGTH),
        ],
        check=True,
        timeout=120,
    )


def _config(tmp_path: Path, log: Path) -> Path:
    (cm,) = [d for d in yaml_docs(K8S / "configmap.yaml") if d["kind"] == "ConfigMap"]
    pod_config = yaml.safe_load(cm["data"]["chatwatch.yaml"])
    config = {
        "sources": [
            {"name": "chatbot", "paths": [str(log)], "format": "json", "start_at": "beginning"}
        ],
        "state_dir": str(tmp_path / "state"),
        "evaluation_interval": "1s",
        "rule_files": [str(REPO / "rules" / "*.yml")],
        "metrics": pod_config["metrics"],
    }
    path = tmp_path / "chatwatch.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _replay(config: Path, log: Path) -> list[tuple[float | None, str, str]]:
    """(seconds after START or None at the end, FIRING|RESOLVED, alertname) in order."""
    result = subprocess.run(
        [sys.executable, "-m", "agent", "replay", "-c", str(config), str(log)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    timeline = []
    for line in result.stdout.splitlines():
        m = EVENT.match(line)
        if m:
            when = None if m.group(1) == "(end)" else dt.datetime.fromisoformat(m.group(1))
            offset = None if when is None else (when - START).total_seconds()
            timeline.append((offset, m.group(2), m.group(3)))
    assert "# replayed" in result.stdout
    return timeline


def test_healthy_bot_is_quiet_and_a_bad_spell_fires_then_resolves(tmp_path: Path) -> None:
    log = tmp_path / "chatbot.log"
    _demo_log(log, 24000)  # 20 minutes at 20 lines/s
    timeline = _replay(_config(tmp_path, log), log)

    fired = {name: t for t, state, name in timeline if state == "FIRING" and t is not None}
    assert all(t >= BURST_AT for t in fired.values()), f"alerts on a healthy bot: {timeline}"
    assert {
        "ChatbotHighErrorRate",
        "LLMHighErrorRate",
        "ChatbotHighLatencyP95",
        "ChatbotAuthFailureBurst",
    } <= set(fired)
    # Log liveness, cost and conversations stay quiet on a bot that logs and resolves.
    assert not {
        "ChatbotLogSilence",
        "ChatbotNoLogs",
        "LLMCostOverBudget",
        "ChatbotNoSuccessfulConversation",
    } & set(fired)
    still_firing = {name for t, _, name in timeline if t is None}
    assert not still_firing, f"not resolved by the end of the log: {still_firing}"


def test_log_silence_fires_two_minutes_after_the_last_line_and_resolves_on_the_next(
    tmp_path: Path,
) -> None:
    full = tmp_path / "full.log"
    _demo_log(full, 12000)  # 10 minutes
    silent = re.compile(r'"ts":"2026-01-01T00:0[567]:')  # nothing from 5:00 to 8:00
    log = tmp_path / "chatbot.log"
    log.write_text("".join(ln for ln in full.read_text().splitlines(True) if not silent.search(ln)))
    timeline = _replay(_config(tmp_path, log), log)

    silence = [(t, state) for t, state, name in timeline if name == "ChatbotLogSilence"]
    assert len(silence) == 2, timeline
    (fired_at, fired), (resolved_at, resolved) = silence
    assert (fired, resolved) == ("FIRING", "RESOLVED")
    assert fired_at is not None and resolved_at is not None
    assert 5 * 60 + 120 <= fired_at <= 5 * 60 + 122  # 2 minutes after the last line
    assert 8 * 60 <= resolved_at <= 8 * 60 + 2  # at the first line after the gap
