"""Fault: errors are logged in the first moment after the agent started.

Lines read before the agent's first evaluation used to be taken as a backlog: the
history started with their counts already in, with no zero before them, so
`increase(errors[5m]) > 0` never saw them arrive and never fired. The agent now reads
what the files held at start, evaluates once, and only then reads on: lines written
after start are new to the history and alert like any later line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.notify_support import HookServer
from tests.realservers import free_port, running_chatwatch, wait_until

pytestmark = [pytest.mark.timeout(60), pytest.mark.slow]

RULES = """
groups:
  - name: chatbot
    rules:
      - alert: ChatbotErrors
        expr: increase(chatbot_errors_total[5m]) > 0
"""


@pytest.fixture
def hook() -> Iterator[HookServer]:
    server = HookServer().start()
    yield server
    server.stop()


def test_three_errors_logged_right_after_start_alert(tmp_path: Path, hook: HookServer) -> None:
    log = tmp_path / "chatbot.log"
    log.touch()
    (tmp_path / "rules.yml").write_text(RULES)
    port = free_port()
    config = tmp_path / "chatwatch.yaml"
    # A long interval: the errors are surely read before the first evaluation on the grid.
    config.write_text(f"""
sources: [{{name: chatbot, paths: ["{log}"], format: json}}]
state_dir: {tmp_path / "state"}
server: {{listen: "127.0.0.1:{port}"}}
metrics:
  - {{name: chatbot_errors_total, type: counter, match: {{level: error}}, labels: {{kind: kind}}}}
rule_files: ["rules.yml"]
evaluation_interval: 3s
alerting:
  route: {{receiver: hook, group_wait: 0s}}
  receivers: [{{name: hook, webhook_configs: [{{url: "{hook.url}"}}]}}]
""")
    with running_chatwatch(config, port, tmp_path) as cw:
        with log.open("a") as f:
            for _ in range(3):
                f.write(json.dumps({"level": "error", "kind": "timeout"}) + "\n")
        wait_until(
            lambda: cw.sample("chatbot_errors_total", kind="timeout") == 3, what="3 errors read"
        )
        wait_until(lambda: hook.requests, what="the alert at the webhook")
    body = hook.bodies()[0]
    assert body["status"] == "firing"
    assert [a["labels"] for a in body["alerts"]] == [
        {"alertname": "ChatbotErrors", "kind": "timeout"}
    ]
