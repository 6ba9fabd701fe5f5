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
from tests.realservers import Chatwatch, free_port, running_chatwatch, wait_until

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


def settle(cw: Chatwatch) -> None:
    """Until the rules have evaluated what /metrics shows now, the notifier's group has
    ticked since (every 100 ms: before the next evaluation, 200 ms later) and nothing is
    queued: a notification that evaluation caused has been delivered by then."""
    seen = cw.wait_evaluated(time.time())
    cw.wait_evaluated(seen + 0.1)
    wait_until(
        lambda: cw.sample("chatwatch_notification_queue_length", receiver="hook") == 0,
        what="nothing queued",
    )


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
evaluation_interval: 200ms
alerting:
  route: {{receiver: hook, group_by: [alertname], group_interval: 100ms}}
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
        settle(cw)  # the rules reported it firing again, the notifier's group ticked
        assert [b["status"] for b in hook.bodies()] == ["firing"]
        write(0)
        wait_until(lambda: len(hook.requests) >= 2, what="resolved message")
        settle(cw)
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
evaluation_interval: 200ms
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
