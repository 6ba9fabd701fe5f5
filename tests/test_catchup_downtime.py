"""Fault: the agent is down (killed with SIGKILL) while the chatbot goes on logging.

The source names its event time (`timestamp: {field: ts}`), so after the restart the
lines written meanwhile are read in their own time before live tailing resumes
(agent/catchup.py): errors logged while the agent was down fire with `startsAt` at the
time they were logged; an alert that fired and resolved within the downtime is sent
once, as resolved, only to integrations with `send_resolved`; `/-/ready` is false until
the backlog is caught up; every line is counted once.
"""

from __future__ import annotations

import datetime
import json
import math
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.notify_support import HookServer
from tests.realservers import Chatwatch, free_port, running_chatwatch, wait_until

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


@pytest.fixture
def hooks() -> Iterator[tuple[HookServer, HookServer]]:
    told_resolved, told_firing_only = HookServer().start(), HookServer().start()
    yield told_resolved, told_firing_only
    told_resolved.stop()
    told_firing_only.stop()


def write_half_an_hour(log: Path) -> int:
    """Append the backlog of a downtime: half an hour at 333 lines/s (26 MB, many turns of
    the event loop to read), info lines only. Returns how many lines."""
    n = 600_000
    start = time.time() - 1800
    with log.open("ab") as f:
        f.write(
            b"".join(
                b'{"ts": %.3f, "level": "info", "msg": "%d"}\n' % (start + i * 0.003, i)
                for i in range(n)
            )
        )
    return n


def write_config(tmp_path: Path, log: Path, port: int, rule: str, hooks: Any) -> Path:
    (tmp_path / "rules.yml").write_text(f"""
groups:
  - name: chatbot
    rules:
      - alert: ChatbotErrors
        expr: {rule}
""")
    resolved, firing_only = hooks
    config = tmp_path / "chatwatch.yaml"
    config.write_text(f"""
sources: [{{name: chatbot, paths: ["{log}"], format: json, timestamp: {{field: ts}}}}]
state_dir: {tmp_path / "state"}
checkpoint: {{interval: 1s}}
server: {{listen: "127.0.0.1:{port}", enable_admin_api: true}}
metrics:
  - {{name: chatbot_lines_total, type: counter}}
  - {{name: chatbot_errors_total, type: counter, match: {{level: error}}}}
rule_files: ["rules.yml"]
evaluation_interval: 1s
alerting:
  route: {{receiver: hook, group_wait: 0s, group_interval: 1s}}
  receivers:
    - name: hook
      webhook_configs:
        - {{url: "{resolved.url}", send_resolved: true}}
        - {{url: "{firing_only.url}", send_resolved: false}}
""")
    return config


def write(log: Path, *events: dict[str, Any]) -> None:
    with log.open("a") as f:
        f.writelines(json.dumps(e) + "\n" for e in events)


def iso(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.UTC).isoformat().replace("+00:00", "Z")


def at(text: str) -> float:
    return datetime.datetime.fromisoformat(text).timestamp()


def checkpointed_lines(tmp_path: Path) -> float:
    doc = orjson.loads((tmp_path / "state" / "checkpoints.json").read_bytes())
    values = doc["metrics"].get("chatbot_lines_total", {}).get("values", [0])
    return float(values[0])


def run_then_kill(config: Path, port: int, tmp_path: Path, log: Path) -> None:
    """A first run that reads one line and checkpoints it; then `kill -9`."""
    cw = Chatwatch(config, port, tmp_path).start()
    write(log, {"ts": iso(time.time()), "level": "info"})
    wait_until(lambda: checkpointed_lines(tmp_path) == 1, what="the line in a checkpoint")
    cw.stop(signal.SIGKILL)


def settle(cw: Chatwatch) -> None:
    """Until an evaluation after now has run and nothing is queued for delivery."""
    cw.wait_evaluated(time.time())
    wait_until(
        lambda: cw.sample("chatwatch_notification_queue_length", receiver="hook") == 0,
        what="nothing queued",
    )


def test_errors_logged_while_down_fire_at_the_time_they_were_logged(
    tmp_path: Path, hooks: tuple[HookServer, HookServer]
) -> None:
    log = tmp_path / "chatbot.log"
    log.touch()
    port = free_port()
    config = write_config(tmp_path, log, port, "increase(chatbot_errors_total[5m]) > 0", hooks)
    run_then_kill(config, port, tmp_path, log)

    logged = math.floor(time.time()) - 1.0  # on the evaluation grid: fired at exactly then
    write(log, *({"ts": iso(logged), "level": "error"} for _ in range(3)))
    with running_chatwatch(config, port, tmp_path) as cw:
        wait_until(lambda: hooks[0].requests, what="the firing notification")
        assert cw.sample("chatbot_errors_total") == 3
        assert cw.sample("chatbot_lines_total") == 4
        assert cw.sample("chatwatch_catchup_events_total", source="chatbot") == 3
        assert "caught up with the backlog in its own time" in cw.logs()
    [body] = hooks[0].bodies()
    assert body["status"] == "firing"
    [alert] = body["alerts"]
    assert alert["labels"] == {"alertname": "ChatbotErrors"}
    assert at(alert["startsAt"]) == logged


def test_alert_that_fired_and_resolved_while_down_is_sent_once_as_resolved(
    tmp_path: Path, hooks: tuple[HookServer, HookServer]
) -> None:
    log = tmp_path / "chatbot.log"
    log.touch()
    port = free_port()
    config = write_config(tmp_path, log, port, "increase(chatbot_errors_total[3s]) > 0", hooks)
    run_then_kill(config, port, tmp_path, log)

    logged = float(math.ceil(time.time()))
    write(log, {"ts": iso(logged), "level": "error"})
    # The downtime outlasts the alert: its window ends 3 s after the error.
    wait_until(lambda: time.time() > logged + 6, what="a downtime of 6 s after the error")
    with running_chatwatch(config, port, tmp_path) as cw:
        wait_until(lambda: hooks[0].requests, what="the resolved notification")
        settle(cw)
        assert cw.sample("chatwatch_catchup_alerts_resolved_total") == 1
        logs = cw.logs()
    [body] = hooks[0].bodies()  # once, and resolved: nobody was told it fired
    assert body["status"] == "resolved"
    [alert] = body["alerts"]
    assert alert["labels"] == {"alertname": "ChatbotErrors"}
    assert at(alert["startsAt"]) == logged
    assert logged + 3 <= at(alert["endsAt"]) <= logged + 4
    assert hooks[1].requests == []  # send_resolved: false: nothing at all
    assert "alert fired and resolved while chatwatch was down" in logs


def test_not_ready_until_the_backlog_is_caught_up_and_every_line_counted_once(
    tmp_path: Path, hooks: tuple[HookServer, HookServer]
) -> None:
    log = tmp_path / "chatbot.log"
    log.touch()
    port = free_port()
    config = write_config(tmp_path, log, port, "increase(chatbot_errors_total[5m]) > 100", hooks)
    run_then_kill(config, port, tmp_path, log)

    n = write_half_an_hour(log)
    cw = Chatwatch(config, port, tmp_path).start(wait_ready=False)
    try:
        answers: list[int] = []
        reloads: list[int] = []

        def ready() -> bool:
            answers.append(httpx.get(f"{cw.url}/-/ready", timeout=2).status_code)
            if answers[-1] == 503 and not reloads:  # a reload asked for meanwhile: no wait
                reloads.append(httpx.post(f"{cw.url}/-/reload", timeout=2).status_code)
            return answers[-1] == 200

        wait_until(ready, timeout=60, interval=0.05, what="ready after catch-up")
        assert 503 in answers  # not ready while catching up
        assert reloads == [503]  # answered at once, not held for the whole catch-up
        assert "caught up with the backlog in its own time" in cw.logs()
        assert cw.sample("chatwatch_catchup_in_progress") == 0
        assert cw.sample("chatwatch_catchup_events_total", source="chatbot") == n
        assert cw.sample("chatwatch_catchup_remaining_bytes", source="chatbot") == 0
        assert cw.sample("chatbot_lines_total") == n + 1
        # Half an hour of log time evaluated at its own pace, not as one spike.
        assert cw.sample("chatwatch_catchup_log_time_seconds") == pytest.approx(time.time(), abs=60)
    finally:
        assert cw.stop() == 0
    assert hooks[0].requests == [] and hooks[1].requests == []


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill9", "sigterm"])
def test_stopped_during_catch_up_then_restart_counts_every_line_once(
    tmp_path: Path, hooks: tuple[HookServer, HookServer], sig: signal.Signals
) -> None:
    """No checkpoint is written while catching up, not even at a clean shutdown: killed
    or stopped then, the next start catches up again from the checkpoint before it."""
    log = tmp_path / "chatbot.log"
    log.touch()
    port = free_port()
    config = write_config(tmp_path, log, port, "increase(chatbot_errors_total[5m]) > 100", hooks)
    run_then_kill(config, port, tmp_path, log)
    n = write_half_an_hour(log)

    cw = Chatwatch(config, port, tmp_path).start(wait_ready=False)
    wait_until(
        lambda: httpx.get(f"{cw.url}/-/ready", timeout=2).status_code == 503,
        interval=0.02,
        what="the agent catching up",
    )
    cw.stop(sig)
    assert checkpointed_lines(tmp_path) == 1

    with running_chatwatch(config, port, tmp_path) as cw:
        assert cw.sample("chatbot_lines_total") == n + 1
        assert cw.logs().count("caught up with the backlog in its own time") == 1


def test_restart_while_firing_with_nothing_written_meanwhile_sends_nothing_again(
    tmp_path: Path, hooks: tuple[HookServer, HookServer]
) -> None:
    """Catching up an empty backlog replays the seconds of downtime: the alert that
    fired before the restart still fires after it, and nobody is told twice."""
    log = tmp_path / "chatbot.log"
    log.touch()
    port = free_port()
    config = write_config(tmp_path, log, port, "increase(chatbot_errors_total[5m]) > 0", hooks)
    with running_chatwatch(config, port, tmp_path):
        write(log, {"ts": iso(time.time()), "level": "info"})
        write(log, {"ts": iso(time.time()), "level": "error"})
        wait_until(lambda: len(hooks[0].requests) == 1, what="the firing notification")
    with running_chatwatch(config, port, tmp_path) as cw:
        assert "caught up with the backlog in its own time" in cw.logs()
        settle(cw)
        write(log, {"ts": iso(time.time()), "level": "error"})
        wait_until(lambda: cw.sample("chatbot_errors_total") == 2, what="the second error")
        settle(cw)
    assert [b["status"] for b in hooks[0].bodies()] == ["firing"]
    assert [b["status"] for b in hooks[1].bodies()] == ["firing"]


def test_two_files_written_while_down_are_caught_up_together_in_time_order(
    tmp_path: Path, hooks: tuple[HookServer, HookServer]
) -> None:
    """Two replicas log into two files: the error in one fires at its own time, between
    the lines of the other, and every line of both is counted once."""
    first, second = tmp_path / "bot-1.log", tmp_path / "bot-2.log"
    first.touch()
    second.touch()
    port = free_port()
    config = write_config(
        tmp_path, tmp_path / "bot-*.log", port, "increase(chatbot_errors_total[5m]) > 0", hooks
    )
    run_then_kill(config, port, tmp_path, first)

    now = math.floor(time.time())
    logged = now - 30.0
    write(second, *({"ts": iso(now - 60 + i), "level": "info"} for i in range(60)))
    write(first, {"ts": iso(now - 45), "level": "info"}, {"ts": iso(logged), "level": "error"})
    with running_chatwatch(config, port, tmp_path) as cw:
        wait_until(lambda: hooks[0].requests, what="the firing notification")
        assert cw.sample("chatbot_lines_total") == 1 + 60 + 2
        assert cw.sample("chatwatch_catchup_events_total", source="chatbot") == 62
    [body] = hooks[0].bodies()
    assert at(body["alerts"][0]["startsAt"]) == logged
