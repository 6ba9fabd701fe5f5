"""Recipe examples/recipes/node-winston: a Node.js chatbot logging winston JSON, replayed
through the recipe's config and rules with the real CLI (`--notifications`, as the README
runs it), and its alerts routed: critical to the pager webhook (re-paged every 30m),
everything else to Slack.

Expectations come from the sample log itself (parsed here, independently of chatwatch)
and from the generator's schedule (`BAD_SPELL`), never from chatwatch's own output.

What every recipe promises (the sample is what generate.py writes, `chatwatch check` and
the receiver URLs it needs, promtool, the rule unit tests, runbooks) is in test_recipes.py."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.alerting.alert import Alert
from agent.config import load
from agent.notify.dispatcher import Dispatcher
from agent.notify.notification import Notification
from agent.notify.notifier import build_dispatcher
from tests.deploy_support import REPO
from tests.notify_support import HookServer
from tests.realservers import free_port, running_chatwatch, wait_until
from tests.recipe_support import chatwatch, load_generator

RECIPE = REPO / "examples" / "recipes" / "node-winston"
SAMPLE = RECIPE / "sample.log"
CONFIG = RECIPE / "chatwatch.yaml"
URLS = {
    "SLACK_WEBHOOK_URL": "http://127.0.0.1:9/slack-not-used-by-replay",
    "PAGER_WEBHOOK_URL": "http://127.0.0.1:9/pager-not-used-by-replay",
}
TIMELINE = re.compile(r"^(\S+)\s+(FIRING|RESOLVED)\s+(\w+)\{([^}]*)\}")
NOTIFY = re.compile(
    r"^(\S+)\s+NOTIFY\s+(\S+)\s+(firing|resolved)\s+group=\{[^}]*\}\s+\d+ alerts?: (.*)$"
)
WINSTON_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


GEN = load_generator(RECIPE)
START = dt.datetime.fromisoformat(GEN.DEFAULT_START)


def _chatwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return chatwatch(*args, env=URLS)


def _lines() -> list[dict[str, Any]]:
    return [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]


def _ts(line: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(line["timestamp"])


# -- the sample log -------------------------------------------------------------------------


def test_lines_are_winston_json_format_output() -> None:
    """format.json() prints keys sorted, without spaces; format.timestamp() is toISOString()."""
    for raw in SAMPLE.read_text(encoding="utf-8").splitlines():
        line = json.loads(raw)
        assert raw == json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert WINSTON_TS.match(line["timestamp"]), raw
        assert line["service"] == "chatbot" and line["level"] in {"info", "warn", "error"}


# -- replay through the real CLI ------------------------------------------------------------


@dataclass
class Replayed:
    timeline: list[tuple[dt.datetime | None, str, str]]
    """(time or None for "(end)", FIRING|RESOLVED, alertname) in order."""
    metrics: dict[str, dict[frozenset[tuple[str, str]], float]]
    notifications: list[tuple[dt.datetime, str, str, str]]
    """(time, receiver, firing|resolved, alert names) of each NOTIFY line, in order."""

    def events(self, alertname: str) -> list[tuple[dt.datetime | None, str]]:
        return [(t, state) for t, state, name in self.timeline if name == alertname]


@pytest.fixture(scope="module")
def replayed() -> Replayed:
    result = _chatwatch("replay", "--notifications", "-c", str(CONFIG), str(SAMPLE))
    assert result.returncode == 0, result.stderr[-2000:]
    timeline: list[tuple[dt.datetime | None, str, str]] = []
    notifications: list[tuple[dt.datetime, str, str, str]] = []
    for line in result.stdout.splitlines():
        m = TIMELINE.match(line)
        if m:
            when = None if m.group(1) == "(end)" else dt.datetime.fromisoformat(m.group(1))
            timeline.append((when, m.group(2), m.group(3)))
        m = NOTIFY.match(line)
        if m:
            when = dt.datetime.fromisoformat(m.group(1))
            notifications.append((when, m.group(2), m.group(3), m.group(4)))
    _, _, exposition = result.stdout.partition("\n# replayed ")
    assert exposition, result.stdout[-2000:]
    metrics: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
    for family in text_string_to_metric_families(exposition.partition("\n\n")[2]):
        for s in family.samples:
            metrics.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
    return Replayed(timeline, metrics, notifications)


def test_replay_counts_what_the_log_holds(replayed: Replayed) -> None:
    lines = _lines()
    m = replayed.metrics

    messages = Counter(
        (ln["type"], ln["urgency"]) for ln in lines if ln["message"] == "Message received"
    )
    assert {
        (dict(k)["type"], dict(k)["urgency"]): v for k, v in m["chatbot_messages_total"].items()
    } == messages

    errors = Counter((ln["errorType"], ln["component"]) for ln in lines if ln["level"] == "error")
    assert len(errors) >= 3
    assert {
        (dict(k)["type"], dict(k)["component"]): v for k, v in m["chatbot_errors_total"].items()
    } == errors

    levels = Counter(ln["level"] for ln in lines)
    assert {dict(k)["level"]: v for k, v in m["chatbot_log_lines_total"].items()} == levels

    took = [ln["processingTime"] / 1000 for ln in lines if ln["message"] == "Request completed"]
    route = frozenset({("route", "/api/chat/message")})
    assert m["http_request_duration_seconds_count"] == {route: len(took)}
    assert m["http_request_duration_seconds_sum"][route] == pytest.approx(sum(took))
    buckets = {
        float(dict(k)["le"]): v
        for k, v in m["http_request_duration_seconds_bucket"].items()
        if dict(k)["route"] == "/api/chat/message"
    }
    assert buckets == {le: sum(1 for t in took if t <= le) for le in buckets}
    assert set(buckets) == {0.1, 0.25, 0.5, 1, 2, 2.5, 5, 10, 30, float("inf")}

    started = sum(1 for ln in lines if ln["message"] == "Session started")
    ended = sum(1 for ln in lines if ln["message"] == "Session ended")
    assert started > ended > 100
    assert m["chatbot_active_sessions"] == {frozenset(): started - ended}
    assert m["chatbot_last_log_timestamp_seconds"] == {
        frozenset(): pytest.approx(_ts(lines[-1]).timestamp())
    }


def test_replay_alerts_fire_in_the_bad_spells_and_resolve(replayed: Replayed) -> None:
    bad_start = START + dt.timedelta(seconds=GEN.BAD_SPELL[0])
    bad_end = START + dt.timedelta(seconds=GEN.BAD_SPELL[1])
    times = [_ts(ln) for ln in _lines()]
    gap, before, after = max((b - a, a, b) for a, b in itertools.pairwise(times))
    assert gap > dt.timedelta(minutes=6)  # the hung event loop

    assert {name for _, _, name in replayed.timeline} == {
        "HighErrorRate",
        "HighResponseTime",
        "ServiceDown",
    }
    assert all(t is not None and t > bad_start for t, _, _ in replayed.timeline), (
        f"an alert on a healthy service, or still firing at the end: {replayed.timeline}"
    )
    minute = dt.timedelta(minutes=1)

    (fired, f_state), (resolved, r_state) = replayed.events("HighErrorRate")
    assert (f_state, r_state) == ("FIRING", "RESOLVED")
    assert fired is not None and resolved is not None
    assert bad_start + 2 * minute < fired < bad_start + 7 * minute  # for: 2m
    assert bad_end < resolved < bad_end + 8 * minute  # once the 5m window has healed

    (fired, f_state), (resolved, r_state) = replayed.events("HighResponseTime")
    assert (f_state, r_state) == ("FIRING", "RESOLVED")
    assert fired is not None and resolved is not None
    assert bad_start + 5 * minute < fired < bad_start + 8 * minute  # for: 5m
    assert bad_end < resolved < bad_end + 8 * minute

    (fired, f_state), (resolved, r_state) = replayed.events("ServiceDown")
    assert (f_state, r_state) == ("FIRING", "RESOLVED")
    assert fired is not None and resolved is not None
    second = dt.timedelta(seconds=1)
    assert before + 5 * minute <= fired <= before + 5 * minute + 2 * second
    assert after <= resolved <= after + 2 * second


# -- routing --------------------------------------------------------------------------------


def _dispatcher() -> Dispatcher:
    cfg = load(CONFIG, env={**os.environ, **URLS})
    return build_dispatcher(cfg.alerting, cfg.server.advertised_url)


def test_replayed_alerts_page_when_critical_and_go_to_slack_otherwise(replayed: Replayed) -> None:
    """The NOTIFY lines of `replay --notifications`: which receiver is told what, in order."""
    sent = [(receiver, status, names) for _, receiver, status, names in replayed.notifications]
    assert [s for s in sent if s[0] == "pager"] == [
        ("pager", "firing", "HighErrorRate"),
        ("pager", "resolved", "HighErrorRate"),
        ("pager", "firing", "ServiceDown"),
        ("pager", "resolved", "ServiceDown"),
    ]
    assert [s for s in sent if s[0] == "slack"] == [
        ("slack", "firing", "HighResponseTime"),
        ("slack", "resolved", "HighResponseTime"),
    ]
    # Each firing message goes out at the evaluation that saw the alert fire (group_wait 0s).
    fired_at = {name: t for t, state, name in replayed.timeline if state == "FIRING"}
    for when, _, status, names in replayed.notifications:
        if status == "firing":
            assert when == fired_at[names]


def test_a_critical_alert_is_re_paged_after_each_30m_a_warning_reminded_after_4h() -> None:
    dispatcher = _dispatcher()
    t0 = START.timestamp()
    down = Alert({"alertname": "ServiceDown", "severity": "critical"}, starts_at=t0)
    slow = Alert(
        {"alertname": "HighResponseTime", "severity": "warning", "route": "/api/chat/message"},
        starts_at=t0,
    )
    sent: list[tuple[float, Notification]] = []
    for second in range(0, 5 * 3600, 15):  # both keep firing for five hours
        now = t0 + second
        dispatcher.ingest([down, slow], now)
        sent.extend((now - t0, n) for n in dispatcher.flush_due(now))
    pages = [at for at, n in sent if n.receiver == "pager"]
    # As in Alertmanager, a reminder goes out on the first group_interval (1m) tick *more*
    # than repeat_interval after the last message: every 31 minutes.
    assert [round(at / 60) for at in pages] == list(range(0, 5 * 60, 31))
    assert all(n.alerts[0].name == "ServiceDown" for _, n in sent if n.receiver == "pager")
    reminders = [at for at, n in sent if n.receiver == "slack"]
    assert [round(at / 60) for at in reminders] == [0, 241]


def test_live_agent_pages_a_silent_service_and_leaves_slack_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`chatwatch run` with the recipe's config as it is (paths, state, port and URLs from
    the environment): lines whose last timestamp is 6 minutes old page through the pager
    webhook within seconds; Slack hears nothing."""
    slack, pager = HookServer().start(), HookServer().start()
    log = tmp_path / "chatbot.log"
    log.touch()
    port = free_port()
    for name, value in {
        "CHATBOT_LOGS": str(log),
        "CHATWATCH_STATE_DIR": str(tmp_path / "state"),
        "CHATWATCH_LISTEN": f"127.0.0.1:{port}",
        "SLACK_WEBHOOK_URL": slack.url,
        "PAGER_WEBHOOK_URL": pager.url,
    }.items():
        monkeypatch.setenv(name, value)  # the agent subprocess inherits them
    lines = [json.loads(raw) for raw in SAMPLE.read_text().splitlines()[:40]]
    shift = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6) - _ts(lines[-1])
    try:
        with running_chatwatch(CONFIG, port, tmp_path) as cw:
            with log.open("a") as f:  # the sample's first lines, the last one 6 minutes old
                for line in lines:
                    when = _ts(line) + shift
                    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
                    line = {**line, "timestamp": stamp}
                    f.write(json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n")
            wait_until(lambda: pager.requests, timeout=15, what="a page from the pager webhook")
            metrics = cw.metrics()
    finally:
        slack.stop()
        pager.stop()

    received = sum(1 for line in lines if line["message"] == "Message received")
    counted = re.findall(r"^chatbot_messages_total\{[^}]*\} (\S+)$", metrics, re.M)
    assert received > 5 and sum(float(v) for v in counted) == received
    (page,) = pager.bodies()
    assert page["receiver"] == "pager" and page["status"] == "firing"
    assert [a["labels"] for a in page["alerts"]] == [
        {"alertname": "ServiceDown", "severity": "critical"}
    ]
    assert page["alerts"][0]["annotations"]["summary"].startswith(
        "The chatbot has logged nothing for 6m"
    )
    assert slack.requests == []
