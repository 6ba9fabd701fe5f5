"""Fault-free but risky: upgrading from a version that kept its state in three files
(`checkpoints.json` with the offsets alone, `alerts.json`, `notifications.json`).

The upgraded agent reads them once: it reads on from the old offsets (nothing counted
again), keeps the alert that was firing (same start, no second firing message), and,
once its own checkpoint holds all of it, removes the two files it no longer writes.
(Metric values were not kept by that version: they start at 0 this once.)
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.notify_support import HookServer
from tests.realservers import Chatwatch, free_port, running_chatwatch, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

RULES = """
groups:
  - name: chatbot
    rules:
      - alert: QueueTooLong
        expr: chatbot_queue_length > 10
"""


@pytest.fixture
def hook() -> Iterator[HookServer]:
    server = HookServer().start()
    yield server
    server.stop()


def settle(cw: Chatwatch) -> None:
    """Until the rules evaluated what /metrics shows now and the notifier's group ticked
    since, with nothing queued: what that evaluation caused has been delivered."""
    seen = cw.wait_evaluated(time.time())
    cw.wait_evaluated(seen + 0.1)
    wait_until(
        lambda: cw.sample("chatwatch_notification_queue_length", receiver="hook") == 0,
        what="nothing queued",
    )


def firing_since(cw: Chatwatch) -> list[str]:
    with urllib.request.urlopen(cw.url + "/api/v1/alerts", timeout=5) as r:
        return [a["activeAt"] for a in json.load(r)["data"]["alerts"] if a["state"] == "firing"]


def as_earlier_version(state: Path) -> None:
    """Rewrite the state as the version before one checkpoint wrote it."""
    doc = orjson.loads((state / "checkpoints.json").read_bytes())
    (state / "checkpoints.json").write_bytes(
        orjson.dumps({"version": 1, "sources": doc["sources"]}, option=orjson.OPT_INDENT_2)
    )
    (state / "checkpoints.json.1").unlink()
    (state / "alerts.json").write_bytes(orjson.dumps(doc["alerts"]))
    (state / "notifications.json").write_bytes(orjson.dumps({"version": 1, **doc["notifications"]}))


def test_upgrade_reads_the_old_state_files_once_and_forgets_nothing(
    tmp_path: Path, hook: HookServer
) -> None:
    log = tmp_path / "chatbot.log"
    state = tmp_path / "state"
    (tmp_path / "rules.yml").write_text(RULES)
    port = free_port()
    config = tmp_path / "chatwatch.yaml"
    config.write_text(f"""
sources: [{{name: chatbot, paths: ["{log}"], format: json, start_at: beginning}}]
state_dir: {state}
checkpoint: {{interval: 1s}}
server: {{listen: "127.0.0.1:{port}"}}
metrics:
  - {{name: chatbot_queue_length, type: gauge, match: {{event: queue}}, value: length}}
  - {{name: chatbot_lines_total, type: counter}}
rule_files: ["rules.yml"]
evaluation_interval: 200ms
alerting:
  route: {{receiver: hook, group_by: [alertname], group_interval: 100ms}}
  receivers: [{{name: hook, webhook_configs: [{{url: "{hook.url}"}}]}}]
""")

    def write(length: int) -> None:
        with log.open("a") as f:
            f.write(json.dumps({"event": "queue", "length": length}) + "\n")

    for length in (1, 2, 50):
        write(length)
    with running_chatwatch(config, port, tmp_path) as cw:
        wait_until(lambda: hook.requests, what="firing message")
        started: list[str] = firing_since(cw)
        assert cw.sample("chatbot_lines_total") == 3
    as_earlier_version(state)

    with running_chatwatch(config, port, tmp_path) as cw:
        assert cw.sample("chatbot_lines_total") == 0  # read on from the old offsets
        write(60)  # still too long after the upgrade
        wait_until(lambda: cw.sample("chatbot_lines_total") == 1, what="the new line")
        settle(cw)
        assert firing_since(cw) == started  # the same alert, not a new one
        assert [b["status"] for b in hook.bodies()] == ["firing"]  # no second message
        wait_until(
            lambda: not (state / "alerts.json").exists(), what="alerts.json removed after migration"
        )
        logs = cw.logs()
    assert not (state / "notifications.json").exists()
    assert sorted(p.name for p in state.iterdir()) == ["checkpoints.json", "checkpoints.json.1"]
    assert orjson.loads((state / "checkpoints.json").read_bytes())["version"] == 2
    assert logs.count("upgrading the state of an earlier version") == 1
