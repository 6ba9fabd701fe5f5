"""`chatwatch replay`: logs replayed in their own time give the alert timeline the agent
would have produced live. The logs are generated here with known timestamps, so every
firing and resolve time is known to the second."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from agent.alerting.rule_file import load_rule_files
from agent.commands.replay import Replay, format_entry, timestamp_parser
from agent.config import load

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z

CONFIG = """
sources:
  - name: bot
    paths: ["/var/log/bot/*.log"]
metrics:
  - name: chatbot_queue_depth
    type: gauge
    match: {event: queue}
    action: set
    value: depth
  - name: chatbot_errors_total
    type: counter
    match: {level: error}
    labels: {route: route}
rule_files: ["rules.yml"]
evaluation_interval: 1s
"""

RULES = """
groups:
  - name: bot
    rules:
      - alert: QueueBacklog
        expr: chatbot_queue_depth > 100
        for: 10s
        annotations: {summary: "queue at {{ $value }}"}
      - alert: QueueFull
        expr: chatbot_queue_depth > 1000
      - alert: Errors
        expr: sum by (route) (chatbot_errors_total) >= 4
        keep_firing_for: 5s
"""


def write_config(tmp_path: Path, rules: str = RULES) -> Path:
    (tmp_path / "rules.yml").write_text(rules)
    cfg = tmp_path / "cw.yml"
    cfg.write_text(CONFIG)
    return cfg


def write_log(path: Path, events: Iterable[Mapping[str, object]]) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")
    return path


def queue_log(depths: list[tuple[float, int]], fmt: str = "unix") -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for ts, depth in depths:
        if fmt == "rfc3339":
            stamp: object = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + (
                f".{round(ts % 1 * 1000):03d}Z"
            )
        elif fmt == "unix_ms":
            stamp = int(ts * 1000)
        else:
            stamp = ts
        out.append({"ts": stamp, "event": "queue", "depth": depth})
    return out


# A queue that is fine, then backed up from T0+60.5 to T0+120.2, sampled every 0.5 s.
BACKLOG = [(T0 + i / 2, 150 if T0 + 60.5 <= T0 + i / 2 < T0 + 120.2 else 10) for i in range(0, 400)]


def replay(cfg_path: Path, logs: list[Path], **kw: object) -> Replay:
    cfg = load(cfg_path)
    groups = load_rule_files(cfg.rule_files, base_dir=cfg.base_dir)
    r = Replay(cfg, groups, **kw)  # type: ignore[arg-type]
    r.show_pending = True
    r.run([str(p) for p in logs])
    return r


def timeline(r: Replay) -> list[tuple[float, str, str]]:
    return [(e.ts - T0, e.kind, e.labels["alertname"]) for e in r.timeline]


def test_backlog_fires_after_for_and_resolves_when_the_queue_drains(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    log = write_log(tmp_path / "bot.log", queue_log(BACKLOG))
    r = replay(cfg, [log])
    # evaluations run every whole second of log time; the sample at 60.5 is seen at 61
    assert timeline(r) == [
        (61.0, "pending", "QueueBacklog"),
        (71.0, "firing", "QueueBacklog"),
        (121.0, "resolved", "QueueBacklog"),
    ]
    firing = r.timeline[1]
    assert firing.annotations == {"summary": "queue at 150"}
    assert firing.since == T0 + 61
    assert r.stats.lines == 400 and r.stats.events == 400
    assert r.stats.evaluations == 200  # T0+1 ... T0+200; the last line is at T0+199.5
    assert "chatbot_queue_depth 10.0" in r.metrics_text()


def test_threshold_crossing_to_firing_takes_at_most_one_interval(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    for offset in (0.001, 0.5, 0.999, 1.0):
        crossing = T0 + 30 + offset
        depths = [(T0 + i, 10) for i in range(31)] + [(crossing, 5000), (T0 + 40, 5000)]
        log = write_log(tmp_path / "q.log", queue_log(depths))
        r = replay(cfg, [log])
        fired = [
            e.ts for e in r.timeline if e.kind == "firing" and e.labels["alertname"] == "QueueFull"
        ]
        assert len(fired) == 1
        assert 0 <= fired[0] - crossing <= 1.0


@pytest.mark.parametrize("fmt", ["rfc3339", "unix_ms", "auto"])
def test_timestamp_formats(tmp_path: Path, fmt: str) -> None:
    cfg = write_config(tmp_path)
    log = write_log(tmp_path / "bot.log", queue_log(BACKLOG, "rfc3339" if fmt == "auto" else fmt))
    r = replay(cfg, [log], timestamp_format=fmt)
    assert [t for t, kind, _ in timeline(r) if kind == "firing"] == [71.0]


def test_strptime_format_and_nested_field(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    events = [
        {
            "meta": {"time": time.strftime("%d/%m/%Y %H:%M:%S", time.gmtime(ts))},
            "event": "queue",
            "depth": d,
        }
        for ts, d in BACKLOG
        if ts == int(ts)
    ]
    log = write_log(tmp_path / "bot.log", events)
    r = replay(cfg, [log], timestamp_field="meta.time", timestamp_format="%d/%m/%Y %H:%M:%S")
    assert [t for t, kind, _ in timeline(r) if kind == "firing"] == [71.0]


def test_two_replicas_merge_in_time_order_and_gz_is_read(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    # each replica logs 2 errors, 10 s apart; together they reach 4 at T0+25.5
    a = write_log(
        tmp_path / "a.log",
        [{"ts": T0 + t, "level": "error", "route": "/chat"} for t in (5, 15.5)]
        + [{"ts": T0 + 100, "level": "info"}],
    )
    b = write_log(
        tmp_path / "b.log.gz",
        [{"ts": T0 + t, "level": "error", "route": "/chat"} for t in (10, 25.5)],
    )
    r = replay(cfg, [a, b])
    assert timeline(r) == [(26.0, "pending", "Errors"), (26.0, "firing", "Errors")]
    assert 'chatbot_errors_total{route="/chat"} 4.0' in r.metrics_text()


def test_lines_without_timestamp_or_out_of_order_are_counted(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    log = tmp_path / "bot.log"
    log.write_text(
        json.dumps({"ts": T0 + 10, "event": "queue", "depth": 5})
        + "\n"
        + "not json\n"
        + json.dumps({"event": "queue", "depth": 7})
        + "\n"
        + json.dumps({"ts": T0 + 5, "event": "queue", "depth": 9})
        + "\n"
    )
    r = replay(cfg, [log])
    assert (r.stats.lines, r.stats.decode_errors, r.stats.no_timestamp, r.stats.out_of_order) == (
        4,
        1,
        1,
        1,
    )
    assert "chatbot_queue_depth 9.0" in r.metrics_text()


def test_cli_prints_the_timeline_and_final_metrics(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    log = write_log(tmp_path / "bot.log", queue_log(BACKLOG))
    result = subprocess.run(
        [sys.executable, "-m", "agent", "replay", "-c", str(cfg), str(log)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        "2026-01-01T00:01:11Z  FIRING    QueueBacklog{}  value=150  summary='queue at 150'",
        "2026-01-01T00:02:01Z  RESOLVED  QueueBacklog{}  after 50s",
    ]
    assert lines[3].startswith("# replayed 400 lines (400 events) spanning 3m20s in ")
    assert "chatbot_queue_depth 10.0" in result.stdout


def test_cli_reports_bad_arguments(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "agent", "replay", "-c", str(cfg), str(tmp_path / "nope.log")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "nope.log: no such file" in result.stderr
    with pytest.raises(ValueError, match="--timestamp-format"):
        timestamp_parser("iso")


def test_format_entry_of_a_resolve() -> None:
    from agent.commands.replay import TimelineEntry

    e = TimelineEntry(T0 + 90, "resolved", {"alertname": "A", "route": "/x"}, 1.0, {}, T0)
    assert format_entry(e) == '2026-01-01T00:01:30Z  RESOLVED  A{route="/x"}  after 1m30s'


def test_cri_logs_use_the_runtime_timestamp(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    cfg.write_text(
        cfg.read_text().replace('paths: ["/var/log/bot/*.log"]', "paths: [x]\n    format: cri")
    )
    lines = []
    for ts, depth in BACKLOG:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{round(ts % 1 * 1e9):09d}Z"
        lines.append(f"{stamp} stdout F " + json.dumps({"event": "queue", "depth": depth}))
    log = tmp_path / "0.log"
    log.write_text("\n".join(lines) + "\n")
    r = replay(cfg, [log])  # default timestamp fields: ts, then the runtime's `time`
    assert [t for t, kind, _ in timeline(r) if kind == "firing"] == [71.0]
    assert r.stats.no_timestamp == 0


# -- replay --notifications: the route tree, backtested ---------------------------------------

NOTIFY_RULES = """
groups:
  - name: bot
    rules:
      - alert: QueueBacklog
        expr: chatbot_queue_depth > 100
        labels: {severity: warning}
      - alert: QueueLong
        expr: chatbot_queue_depth > 2000
        labels: {severity: warning}
      - alert: QueueFull
        expr: chatbot_queue_depth > 1000
        labels: {severity: critical}
"""

ALERTING = """
alerting:
  route:
    receiver: team-slack
    group_by: [severity]
    group_wait: {group_wait}
    group_interval: 1m
    repeat_interval: 4h
    routes:
      - matchers: ['severity="critical"']
        receiver: pager
        repeat_interval: 10m
  receivers:
    - name: team-slack
      slack_configs: [{{api_url: "http://127.0.0.1:9/slack", send_resolved: {send_resolved}}}]
    - name: pager
      webhook_configs: [{{url: "http://127.0.0.1:9/pager", send_resolved: {send_resolved}}}]
"""


def write_routed_config(
    tmp_path: Path, *, send_resolved: bool = True, group_wait: str = "0s"
) -> Path:
    cfg = write_config(tmp_path, NOTIFY_RULES)
    alerting = ALERTING.format(group_wait=group_wait, send_resolved=str(send_resolved).lower())
    cfg.write_text(CONFIG + alerting)
    return cfg


def full_queue(until: float, end: float = 600) -> list[dict[str, object]]:
    """Depth 10, then 5000 (every queue alert fires at T0+61), then 10 again from
    `until` on (they resolve at the next whole second); a sample every 5 s."""
    depths = [(T0 + t, 10) for t in range(0, 60, 5)]
    depths += [(T0 + 60.5 + t, 5000) for t in range(0, int(until - 60), 5)]
    depths += [(T0 + until + 0.5 + t, 10) for t in range(0, int(end - until), 5)]
    return queue_log(depths)


def replay_cli(cfg: Path, log: Path, *args: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "agent", "replay", "--no-metrics", "-c", str(cfg), str(log), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def notify_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if "  NOTIFY  " in line]


def sent(lines: list[str]) -> list[tuple[str, str, str]]:
    """(time, receiver, status) of each NOTIFY line."""
    return [(f[0], f[2], f[3]) for f in (line.split() for line in notify_lines(lines))]


def test_critical_pages_and_warnings_go_to_slack_grouped_by_severity(tmp_path: Path) -> None:
    cfg = write_routed_config(tmp_path)
    log = write_log(tmp_path / "bot.log", full_queue(until=300))
    lines = replay_cli(cfg, log, "--notifications")
    assert notify_lines(lines) == [
        '2026-01-01T00:01:01Z  NOTIFY    team-slack  firing    group={severity="warning"}  '
        "2 alerts: QueueBacklog, QueueLong",
        '2026-01-01T00:01:01Z  NOTIFY    pager       firing    group={severity="critical"}  '
        "1 alert: QueueFull",
        '2026-01-01T00:05:01Z  NOTIFY    team-slack  resolved  group={severity="warning"}  '
        "2 alerts: QueueBacklog, QueueLong",
        '2026-01-01T00:05:01Z  NOTIFY    pager       resolved  group={severity="critical"}  '
        "1 alert: QueueFull",
    ]
    # each notification sits in the timeline right after the alert change that caused it
    at = lines.index(notify_lines(lines)[0])
    assert lines[at - 1].startswith("2026-01-01T00:01:01Z  FIRING    QueueFull{")
    assert "# 4 notifications would have been sent: team-slack 2, pager 2" in lines


@pytest.mark.parametrize("send_resolved", [True, False])
def test_resolved_notification_only_with_send_resolved(tmp_path: Path, send_resolved: bool) -> None:
    cfg = write_routed_config(tmp_path, send_resolved=send_resolved)
    log = write_log(tmp_path / "bot.log", full_queue(until=300))
    lines = replay_cli(cfg, log, "--notifications")
    assert sum("RESOLVED  Queue" in line for line in lines) == 3  # the alerts did resolve
    resolved = [s for s in sent(lines) if s[2] == "resolved"]
    if send_resolved:
        assert resolved == [
            ("2026-01-01T00:05:01Z", "team-slack", "resolved"),
            ("2026-01-01T00:05:01Z", "pager", "resolved"),
        ]
    else:
        assert resolved == []
    assert [s for s in sent(lines) if s[2] == "firing"] == [
        ("2026-01-01T00:01:01Z", "team-slack", "firing"),
        ("2026-01-01T00:01:01Z", "pager", "firing"),
    ]


def test_a_receiver_with_two_integrations_names_each_and_resolves_per_integration(
    tmp_path: Path,
) -> None:
    full = "groups: [{name: q, rules: [{alert: QueueFull, expr: chatbot_queue_depth > 1000}]}]"
    cfg = write_config(tmp_path, full)
    cfg.write_text(
        CONFIG
        + """
alerting:
  route: {receiver: ops, group_by: [alertname]}
  receivers:
    - name: ops
      slack_configs: [{api_url: "http://127.0.0.1:9/slack"}]   # send_resolved: false
      webhook_configs: [{url: "http://127.0.0.1:9/hook"}]      # send_resolved: true
"""
    )
    log = write_log(tmp_path / "bot.log", full_queue(until=300))
    lines = replay_cli(cfg, log, "--notifications")
    assert notify_lines(lines) == [
        '2026-01-01T00:01:01Z  NOTIFY    ops/slack[0]    firing    group={alertname="QueueFull"}  '
        "1 alert: QueueFull",
        '2026-01-01T00:01:01Z  NOTIFY    ops/webhook[0]  firing    group={alertname="QueueFull"}  '
        "1 alert: QueueFull",
        # resolved at 00:05:01; told on the group's next tick (default group_interval 5m)
        '2026-01-01T00:06:01Z  NOTIFY    ops/webhook[0]  resolved  group={alertname="QueueFull"}  '
        "1 alert: QueueFull",
    ]
    assert "# 3 notifications would have been sent: ops/slack[0] 1, ops/webhook[0] 2" in lines


def test_repeat_interval_re_pages_in_log_time(tmp_path: Path) -> None:
    """Firing for 35 minutes: the pager (repeat_interval 10m) is reminded three times;
    Slack (4h) hears of it once."""
    cfg = write_routed_config(tmp_path)
    log = write_log(tmp_path / "bot.log", full_queue(until=2160, end=2400))
    lines = replay_cli(cfg, log, "--notifications")
    assert [(at, status) for at, receiver, status in sent(lines) if receiver == "pager"] == [
        ("2026-01-01T00:01:01Z", "firing"),
        # Reminders on the first group_interval tick *more* than 10m after the last one
        # (Alertmanager's needsUpdate), so 11 minutes apart with group_interval 1m.
        ("2026-01-01T00:12:01Z", "firing"),
        ("2026-01-01T00:23:01Z", "firing"),
        ("2026-01-01T00:34:01Z", "firing"),
        ("2026-01-01T00:36:01Z", "resolved"),
    ]
    assert [(at, status) for at, receiver, status in sent(lines) if receiver == "team-slack"] == [
        ("2026-01-01T00:01:01Z", "firing"),
        ("2026-01-01T00:36:01Z", "resolved"),
    ]


def test_group_wait_between_evaluations_is_kept_to_the_millisecond(tmp_path: Path) -> None:
    """The live notifier wakes when a group is due, not at the next evaluation: alerts
    firing at T0+61 with group_wait 2.5s are sent at T0+63.5."""
    cfg = write_routed_config(tmp_path, group_wait="2500ms")
    log = write_log(tmp_path / "bot.log", full_queue(until=300))
    lines = replay_cli(cfg, log, "--notifications")
    assert [s for s in sent(lines) if s[2] == "firing"] == [
        ("2026-01-01T00:01:03.500Z", "team-slack", "firing"),
        ("2026-01-01T00:01:03.500Z", "pager", "firing"),
    ]


def test_notifications_without_a_route_say_so(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    log = write_log(tmp_path / "bot.log", queue_log(BACKLOG))
    lines = replay_cli(cfg, log, "--notifications")
    assert notify_lines(lines) == []
    assert lines[0].startswith("2026-01-01T00:01:11Z  FIRING    QueueBacklog{}")
    assert lines[-1] == (
        "# --notifications: the config has no alerting.route, so the agent sends no "
        "notifications (docs/notify.md shows how to add one)"
    )


def test_without_the_flag_nothing_is_routed(tmp_path: Path) -> None:
    cfg = write_routed_config(tmp_path)
    log = write_log(tmp_path / "bot.log", full_queue(until=300))
    lines = replay_cli(cfg, log)
    assert notify_lines(lines) == [] and not any("notification" in line for line in lines)
    assert sum("FIRING    Queue" in line for line in lines) == 3


def test_format_notification_of_a_group_with_a_resolve() -> None:
    from agent.commands.replay import NotifyEntry, format_notification
    from agent.notify.notification import Notification, NotifiedAlert

    def alert(name: str, route: str, ends_at: float | None) -> NotifiedAlert:
        labels = {"alertname": name, "route": route}
        return NotifiedAlert(labels, {}, T0, ends_at, "", route)

    n = Notification(
        receiver="ops",
        integration="ops/email[1]",
        group_key="{}:{}",
        group_labels={"team": "bot", "env": "prod"},
        alerts=[
            alert("Errors", "/a", None),
            alert("Errors", "/b", T0 + 60),
            alert("Slow", "/a", None),
        ],
        external_url="",
        created_at=T0 + 90,
    )
    line = format_notification(NotifyEntry(T0 + 90, "ops/email[1]", n), width=14)
    assert line == (
        '2026-01-01T00:01:30Z  NOTIFY    ops/email[1]    firing    group={env="prod",team="bot"}  '
        "3 alerts (1 resolved): Errors (2), Slow"
    )


# Backed up from T0+60.5 to T0+120.2 as BACKLOG, with a worse spell (500) from T0+90 to T0+100.
PEAKED = [(ts, 500 if T0 + 90 <= ts < T0 + 100 else depth) for ts, depth in BACKLOG]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "replay", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_table_format_has_a_row_per_firing_with_its_peak(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    still = [(ts + 200, 5000) for ts, _ in BACKLOG[:40]]  # full from T0+200 to the end
    log = write_log(tmp_path / "bot.log", queue_log(PEAKED + still))
    result = run_cli("-c", str(cfg), str(log), "--format", "table", "--no-metrics")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        "ALERT         LABELS  FIRED AT              RESOLVED AT           LASTED  PEAK",
        "QueueBacklog  -       2026-01-01T00:01:11Z  2026-01-01T00:02:01Z  50s     500",
        "QueueFull     -       2026-01-01T00:03:20Z  still firing          -       5000",
        "QueueBacklog  -       2026-01-01T00:03:30Z  still firing          -       5000",
    ]
    assert lines[4] == ""
    assert lines[5].startswith("# replayed 440 lines (440 events) spanning 3m40s in ")
    assert "chatbot_queue_depth" not in result.stdout, "--no-metrics"


def test_json_format_is_one_document_for_scripts(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    log = write_log(tmp_path / "bot.log", queue_log(PEAKED))
    result = run_cli("-c", str(cfg), str(log), "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["alerts"] == [
        {
            "alertname": "QueueBacklog",
            "labels": {"alertname": "QueueBacklog"},
            "annotations": {"summary": "queue at 150"},
            "activeAt": "2026-01-01T00:01:01Z",
            "firedAt": "2026-01-01T00:01:11Z",
            "resolvedAt": "2026-01-01T00:02:01Z",
            "peakValue": "500",
        }
    ]
    assert [(e["time"], e["state"]) for e in doc["timeline"]] == [
        ("2026-01-01T00:01:11Z", "firing"),
        ("2026-01-01T00:02:01Z", "resolved"),
    ]
    assert doc["stats"]["lines"] == 400 and doc["stats"]["fired"] == 1
    assert "chatbot_queue_depth 10.0" in doc["metrics"]
    assert doc["summary"].startswith("replayed 400 lines")
