"""Fault: the real agent process is restarted (SIGTERM) while an alert fires.

End to end through `chatwatch run`: a log line crosses a threshold, the webhook gets the
firing message; the agent is restarted and the condition is seen again (no second firing
message); then the condition clears and the resolve arrives.
"""

from __future__ import annotations

import datetime
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.notify_support import HookServer
from tests.realservers import free_port, running_chatwatch, wait_until

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

RULES = """
groups:
  - name: chatbot
    rules:
      - alert: QueueTooLong
        expr: chatbot_queue_length > 10
        labels: {severity: warning}
        annotations: {summary: "queue is {{ $value }}"}
"""


@pytest.fixture
def hook() -> Iterator[HookServer]:
    server = HookServer().start()
    yield server
    server.stop()


def test_agent_restart_while_firing_sends_no_duplicate_and_later_resolve(
    tmp_path: Path, hook: HookServer
) -> None:
    log = tmp_path / "chatbot.log"
    log.touch()
    (tmp_path / "rules.yml").write_text(RULES)
    port = free_port()
    config = tmp_path / "chatwatch.yaml"
    config.write_text(f"""
sources: [{{name: chatbot, paths: ["{log}"], format: json}}]
state_dir: {tmp_path / "state"}
checkpoint: {{interval: 1s}}
server: {{listen: "127.0.0.1:{port}"}}
metrics:
  - {{name: chatbot_queue_length, type: gauge, match: {{event: queue}}, value: length}}
rule_files: ["rules.yml"]
alerting:
  route: {{receiver: hook, group_by: [alertname], group_interval: 500ms}}
  receivers: [{{name: hook, webhook_configs: [{{url: "{hook.url}"}}]}}]
""")

    def write(length: int) -> None:
        with log.open("a") as f:
            f.write(json.dumps({"event": "queue", "length": length}) + "\n")

    with running_chatwatch(config, port, tmp_path):
        write(50)
        wait_until(lambda: hook.requests, what="firing message")
    assert [b["status"] for b in hook.bodies()] == ["firing"]

    with running_chatwatch(config, port, tmp_path) as cw:
        write(60)  # still too long after the restart
        wait_until(
            lambda: "chatbot_queue_length 60" in cw.metrics(), what="new value seen by the agent"
        )
        time.sleep(3)  # several evaluations and group ticks
        assert [b["status"] for b in hook.bodies()] == ["firing"]
        write(0)
        wait_until(lambda: len(hook.requests) >= 2, what="resolved message")
        time.sleep(1)
    bodies = hook.bodies()
    assert [b["status"] for b in bodies] == ["firing", "resolved"]
    assert bodies[0]["alerts"][0]["fingerprint"] == bodies[1]["alerts"][0]["fingerprint"]


def test_restart_keeps_pending_for_progress_and_firing_alerts(tmp_path: Path) -> None:
    """A `for` in progress is not started over by a restart, and a firing alert stays
    firing (same activeAt) instead of going back to pending, as Prometheus restores
    alert state from its ALERTS_FOR_STATE series."""
    log = tmp_path / "chatbot.log"
    log.touch()
    (tmp_path / "rules.yml").write_text("""
groups:
  - name: chatbot
    rules:
      - alert: QueueTooLong
        expr: chatbot_queue_length > 10
        for: 3s
""")
    port = free_port()
    config = tmp_path / "chatwatch.yaml"
    config.write_text(f"""
sources: [{{name: chatbot, paths: ["{log}"], format: json}}]
state_dir: {tmp_path / "state"}
checkpoint: {{interval: 1s}}
server: {{listen: "127.0.0.1:{port}"}}
metrics:
  - {{name: chatbot_queue_length, type: gauge, match: {{event: queue}}, value: length}}
rule_files: ["rules.yml"]
""")

    def alerts(cw: Any) -> list[dict[str, Any]]:
        with urllib.request.urlopen(cw.url + "/api/v1/alerts", timeout=5) as r:
            return list(json.load(r)["data"]["alerts"])

    def write(length: int) -> None:
        with log.open("a") as f:
            f.write(json.dumps({"event": "queue", "length": length}) + "\n")

    def at(alert: dict[str, Any]) -> float:
        return datetime.datetime.fromisoformat(alert["activeAt"]).timestamp()

    with running_chatwatch(config, port, tmp_path) as cw:
        write(50)
        first = wait_until(lambda: alerts(cw), what="pending alert")[0]
        assert first["state"] == "pending"
        down = time.time()
    with running_chatwatch(config, port, tmp_path) as cw:
        up = time.time()
        # Pending still, no line needed: the `for` goes on from where it was, moved on by
        # the downtime only (time not watched does not count, as in Prometheus).
        again = wait_until(lambda: alerts(cw), what="restored alert")[0]
        assert again["state"] == "pending"
        assert 0 < at(again) - at(first) < up - down
        write(60)
        fired = wait_until(
            lambda: [a for a in alerts(cw) if a["state"] == "firing"], what="firing alert"
        )[0]
        assert fired["activeAt"] == again["activeAt"]
    with running_chatwatch(config, port, tmp_path) as cw:
        restored = wait_until(lambda: alerts(cw), what="restored alert")[0]
        assert restored["state"] == "firing"  # not pending again: no second `for`
        assert restored["activeAt"] == fired["activeAt"]
