"""Fault: a log carries a runaway label value (a 500 KB `user_id`).

Uncapped, 200 such lines made /metrics 100 MB. Each label value taken from an event is
capped at `max_label_value_bytes` of UTF-8 (root default 1024, per metric overridable):
a longer one is cut on a character boundary and ends in `…`, the event still counts,
and `chatwatch_label_values_truncated_total{metric,label}` says how often.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.realservers import Chatwatch, free_port, wait_until

pytestmark = pytest.mark.slow

LINES = 200
VALUE_BYTES = 500_000

CONFIG = """
sources: [{{name: chatbot, paths: ["{log}"], format: json, start_at: beginning}}]
state_dir: {state}
server: {{listen: "127.0.0.1:{port}"}}
metrics:
  - name: chatbot_messages_total
    type: counter
    match: {{event: message}}
    labels: {{user: user_id}}
  - name: chatbot_logins_total
    type: counter
    match: {{event: message}}
    labels: {{user: user_id}}
    max_label_value_bytes: 64
"""


def runaway(i: int) -> str:
    """A distinct 500 KB value: ASCII for even lines, two-byte characters for odd ones."""
    prefix = f"user-{i:04d}-"
    fill = "x" if i % 2 == 0 else "é"
    return prefix + fill * ((VALUE_BYTES - len(prefix)) // len(fill.encode()))


def test_runaway_label_values_are_truncated_and_counted(tmp_path: Path) -> None:
    log = tmp_path / "chatbot.log"
    with log.open("w", encoding="utf-8") as f:
        for i in range(LINES):
            f.write(json.dumps({"event": "message", "user_id": runaway(i)}, ensure_ascii=False))
            f.write("\n")
        f.write(json.dumps({"event": "message", "user_id": "alice"}) + "\n")
    assert log.stat().st_size > LINES * VALUE_BYTES
    port = free_port()
    config = tmp_path / "chatwatch.yaml"
    config.write_text(CONFIG.format(log=log, state=tmp_path / "state", port=port))

    cw = Chatwatch(config, port, tmp_path).start()
    try:
        wait_until(lambda: sum(cw.samples("chatbot_logins_total")) == LINES + 1)
        text = cw.metrics()
        messages = {
            s.labels["user"]: s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "chatbot_messages_total"
        }
        logins = {
            s.labels["user"]: s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "chatbot_logins_total"
        }
        truncated = {
            metric: cw.sample("chatwatch_label_values_truncated_total", metric=metric, label="user")
            for metric in ("chatbot_messages_total", "chatbot_logins_total")
        }
    finally:
        assert cw.stop() == 0

    # 200 series of about 1 KiB and 200 of 64 bytes, not 100 MB.
    assert len(text.encode()) < 400_000, len(text.encode())
    # Every event counted, each runaway value in its own series, cut to its metric's cap.
    for series, cap in ((messages, 1024), (logins, 64)):
        assert sum(series.values()) == LINES + 1
        assert series.pop("alice") == 1  # a short value is left alone
        assert len(series) == LINES
        for i, value in enumerate(sorted(series)):
            assert value.startswith(f"user-{i:04d}-")
            assert value.endswith("…")
            size = len(value.encode())
            assert cap - 4 < size <= cap, (value[:20], size)
            assert runaway(i).startswith(value[:-1])
    assert truncated == {"chatbot_messages_total": LINES, "chatbot_logins_total": LINES}
