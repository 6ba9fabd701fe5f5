"""Fault: the agent is restarted (a deploy, a config change that needs one).

Counters, histograms and gauges come back with the values they had (active sessions do
not drop to 0, Prometheus sees no counter reset) and go on counting from there. A metric
whose definition changed while the agent was down (here: its buckets) cannot continue:
it starts fresh, said once in the log, and the other metrics are not affected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.realservers import Chatwatch, free_port, wait_until

pytestmark = pytest.mark.slow

CONFIG = """
sources: [{{name: chatbot, paths: ["{log}"], format: json, start_at: beginning}}]
state_dir: {state}
checkpoint: {{interval: 1h}}  # written at start and at shutdown only
server: {{listen: "127.0.0.1:{port}"}}
metrics:
  - name: chatbot_replies_total
    type: counter
    match: {{event: reply}}
    labels: {{model: model}}
  - name: chatbot_reply_seconds
    type: histogram
    match: {{event: reply}}
    value: seconds
    buckets: {buckets}
  - name: chatbot_active_sessions
    type: gauge
    match: {{event: {{in: [start, end]}}}}
    action: {{start: inc, end: dec}}
"""


def test_counters_histograms_and_gauges_go_on_after_a_restart_and_new_buckets_start_fresh(
    tmp_path: Path,
) -> None:
    log = tmp_path / "chatbot.log"
    port = free_port()
    config = tmp_path / "chatwatch.yaml"

    def configure(buckets: list[float]) -> None:
        config.write_text(
            CONFIG.format(log=log, state=tmp_path / "state", port=port, buckets=buckets)
        )

    def write(*events: dict[str, Any]) -> None:
        with log.open("a") as f:
            f.writelines(json.dumps(e) + "\n" for e in events)

    def values(cw: Chatwatch) -> dict[str, float | None]:
        return {
            "replies": cw.sample("chatbot_replies_total", model="gpt"),
            "observed": cw.sample("chatbot_reply_seconds_count"),
            "under_1s": cw.sample("chatbot_reply_seconds_bucket", le="1.0"),
            "sessions": cw.sample("chatbot_active_sessions"),
        }

    configure([1, 5])
    write(*[{"event": "start"}] * 3, {"event": "end"})
    write(*[{"event": "reply", "model": "gpt", "seconds": 0.5}] * 4)
    cw = Chatwatch(config, port, tmp_path).start()
    try:
        wait_until(lambda: cw.sample("chatbot_replies_total", model="gpt") == 4)
        before = values(cw)
    finally:
        assert cw.stop() == 0
    assert before == {"replies": 4, "observed": 4, "under_1s": 4, "sessions": 2}

    cw = Chatwatch(config, port, tmp_path).start()
    try:
        assert values(cw) == before  # the first scrape after the restart: nothing reset
        write({"event": "reply", "model": "gpt", "seconds": 3}, {"event": "start"})
        wait_until(lambda: cw.sample("chatbot_active_sessions") == 3)
        assert values(cw) == {"replies": 5, "observed": 5, "under_1s": 4, "sessions": 3}
    finally:
        assert cw.stop() == 0
    assert "definition changed" not in cw.logs()

    configure([1, 2, 5])  # new buckets: the saved counts cannot be split into them
    cw = Chatwatch(config, port, tmp_path).start()
    try:
        assert values(cw) == {"replies": 5, "observed": 0, "under_1s": 0, "sessions": 3}
        write({"event": "reply", "model": "gpt", "seconds": 1.5})
        wait_until(lambda: cw.sample("chatbot_reply_seconds_count") == 1)
        assert cw.sample("chatbot_reply_seconds_bucket", le="2.0") == 1
        assert cw.sample("chatbot_replies_total", model="gpt") == 6
    finally:
        assert cw.stop() == 0
    changed = [line for line in cw.logs().splitlines() if "definition changed" in line]
    assert len(changed) == 1, changed
    assert "chatbot_reply_seconds" in changed[0]
    assert "buckets [1.0, 5.0] -> [1.0, 2.0, 5.0]" in changed[0]
