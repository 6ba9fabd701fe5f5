"""Fault: the real agent process is restarted (SIGTERM) while an alert fires.

End to end through `chatwatch run`: a log line crosses a threshold, the webhook gets the
firing message; the agent is restarted and the condition is seen again (no second firing
message); then the condition clears and the resolve arrives.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

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
