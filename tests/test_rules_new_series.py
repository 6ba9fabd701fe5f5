"""A label value seen for the first time counts from its first event.

A counter series created by an event starts at that event's count; `increase()` over its
first samples would miss it (three timeouts read as two) and `increase(...) >= 3` would
never fire for a new error type. chatwatch records a 0 at the series' creation time, as
Prometheus does with created timestamps. Checked through `chatwatch replay` (simulated
time, exact) and the live agent.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.realservers import free_port, running_chatwatch, wait_until

RULES = """
groups:
  - name: errors
    rules:
      - alert: RepeatedError
        expr: sum by (error_type) (increase(chatbot_errors_total[5m])) >= 3
"""


def write_config(tmp_path: Path, log: Path, port: int) -> Path:
    (tmp_path / "rules.yml").write_text(RULES)
    config = tmp_path / "chatwatch.yaml"
    config.write_text(f"""
sources: [{{name: bot, paths: ["{log}"], format: json}}]
state_dir: {tmp_path / "state"}
server: {{listen: "127.0.0.1:{port}"}}
metrics:
  - name: chatbot_errors_total
    type: counter
    match: {{level: error}}
    labels: {{error_type: error_type}}
  - name: chatbot_lines_total
    type: counter
rule_files: ["rules.yml"]
""")
    return config


def line(t: float, level: str = "info", error_type: str = "") -> str:
    event: dict[str, Any] = {"ts": t, "level": level}
    if error_type:
        event["error_type"] = error_type
    return json.dumps(event) + "\n"


def test_three_errors_of_a_new_type_fire_in_replay(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    t0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    lines = [line(t0 + i) for i in range(60)]  # a healthy minute
    lines += [line(t0 + 60 + 10 * i, "error", "timeout") for i in range(3)]
    lines += [line(t0 + 100 + i) for i in range(30)]
    log.write_text("".join(lines))
    config = write_config(tmp_path, log, free_port())
    out = subprocess.run(
        [sys.executable, "-m", "agent", "replay", "-c", str(config), str(log)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    firing = [ln.split() for ln in out.splitlines() if ln.startswith("2026") and "FIRING" in ln]
    # at the third error, with all three counted
    assert firing == [
        ["2026-01-01T00:01:20Z", "FIRING", 'RepeatedError{error_type="timeout"}', "value=3"]
    ], out


def test_three_errors_of_a_new_type_fire_live(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    log.touch()
    port = free_port()
    config = write_config(tmp_path, log, port)

    def alerts(cw: Any) -> list[dict[str, Any]]:
        with urllib.request.urlopen(cw.url + "/api/v1/alerts", timeout=5) as r:
            return list(json.load(r)["data"]["alerts"])

    with running_chatwatch(config, port, tmp_path) as cw:
        with log.open("a") as f:
            f.write(line(time.time()))
        wait_until(lambda: "chatbot_lines_total 1.0" in cw.metrics(), what="first line")
        cw.wait_evaluated(time.time())  # the rules have seen the bot before its first error
        for n in range(1, 4):
            with log.open("a") as f:
                f.write(line(time.time(), "error", "timeout"))
            wait_until(
                lambda n=n: cw.sample("chatbot_errors_total", error_type="timeout") == n,
                what=f"error {n} counted",
            )
            cw.wait_evaluated(time.time())  # one error per evaluation
        (alert,) = wait_until(lambda: alerts(cw), what="RepeatedError")
        assert alert["labels"] == {"alertname": "RepeatedError", "error_type": "timeout"}
        assert float(alert["value"]) == 3.0
