"""The rule pack's inhibition end to end: one LLM incident, one notification.

The demo chatbot's bad spell makes LLM calls fail and, through them, chat requests. The
pack raises both LLMHighErrorRate and ChatbotHighErrorRate; with the `inhibit_rules` of
examples/chatwatch.yaml, `chatwatch replay --notifications` (the agent's own dispatcher)
notifies the LLM alert and holds the chat errors it caused. Without the rule, both go out.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy_support import REPO
from tests.test_rulepack_replay import _config, _demo_log

NOTIFY = re.compile(r"^\S+\s+NOTIFY\s+\S+\s+(firing|resolved)\s+group=\{alertname=\"(\w+)\"\}")
FIRING = re.compile(r"^\S+\s+FIRING\s+(\w+)\{")


@pytest.fixture(scope="module")
def demo_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    log = tmp_path_factory.mktemp("inhibit") / "chatbot.log"
    _demo_log(log, 24000)  # 20 minutes at 20 lines/s, a bad spell at 10m
    return log


def replay(tmp_path: Path, log: Path, alerting: dict[str, object]) -> tuple[set[str], set[str]]:
    """(alerts that fired, alerts notified firing) of the replay."""
    config = _config(tmp_path, log)
    doc = yaml.safe_load(config.read_text())
    doc["alerting"] = alerting
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = subprocess.run(
        [sys.executable, "-m", "agent", "replay", "--notifications", "-c", str(config), str(log)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    fired = {m.group(1) for line in lines if (m := FIRING.match(line))}
    notified = {m.group(2) for line in lines if (m := NOTIFY.match(line)) and m[1] == "firing"}
    return fired, notified


def example_alerting() -> dict[str, object]:
    alerting: dict[str, object] = yaml.safe_load(
        (REPO / "examples" / "chatwatch.yaml").read_text()
    )["alerting"]
    return alerting


def test_llm_errors_hold_the_chat_errors_they_cause(tmp_path: Path, demo_log: Path) -> None:
    fired, notified = replay(tmp_path, demo_log, example_alerting())
    assert {"LLMHighErrorRate", "ChatbotHighErrorRate"} <= fired
    assert "LLMHighErrorRate" in notified
    assert "ChatbotHighErrorRate" not in notified


def test_without_the_rule_both_are_notified(tmp_path: Path, demo_log: Path) -> None:
    alerting = example_alerting()
    del alerting["inhibit_rules"]
    _, notified = replay(tmp_path, demo_log, alerting)
    assert {"LLMHighErrorRate", "ChatbotHighErrorRate"} <= notified
