"""Recipe examples/recipes/fastapi-support-bot: a FastAPI support bot's Python `logging` text
log, decoded by a regex with its tracebacks joined to their records (`multiline: {preset:
python}`), replayed through the recipe's config and rules with the real CLI.

Expectations come from the generator (`generate.py --counts`: what it wrote, per handler,
category, resolution, error type ...), never from chatwatch's own output.

What every recipe promises (the sample is what generate.py writes, `chatwatch check` and
the webhook URL it needs, promtool, the rule unit tests, runbooks) is in test_recipes.py."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from agent.config import load
from agent.decode.formats import make_decoder
from tests.deploy_support import REPO
from tests.notify_support import HookServer
from tests.realservers import free_port, running_chatwatch, wait_until
from tests.recipe_support import chatwatch, load_generator

RECIPE = REPO / "examples" / "recipes" / "fastapi-support-bot"
SAMPLE = RECIPE / "sample.log"
CONFIG = RECIPE / "chatwatch.yaml"
ENV = {**os.environ, "SUPPORT_BOT_WEBHOOK_URL": "http://127.0.0.1:9/not-used-by-replay"}
ASCTIME = "%Y-%m-%d %H:%M:%S,%f"
TIMELINE = re.compile(r"^(\S+)\s+(FIRING|RESOLVED)\s+(\w+)\{([^}]*)\}")

# The generator's counts -> (chatwatch metric, its label names in the generator's order).
METRICS = {
    "handlers": ("support_bot_handler_matches_total", ("handler",)),
    "conversations": ("support_bot_conversations_total", ("category", "resolution")),
    "escalations": ("support_bot_escalations_total", ("reason",)),
    "errors": ("support_bot_errors_total", ("logger", "error_type")),
    "exceptions": ("support_bot_exceptions_total", ("logger", "exception_type")),
    "llm": ("support_bot_llm_calls_total", ("model", "outcome")),
    "http": ("support_bot_http_requests_total", ("method", "path", "status_code")),
    "lines": ("support_bot_log_lines_total", ("level",)),
}


def _chatwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return chatwatch(*args, env=ENV)


def _utc(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso).replace(tzinfo=dt.UTC)


@dataclass
class Replay:
    timeline: list[tuple[dt.datetime | None, str, str, dict[str, str]]]
    """(time or None for "(end)", FIRING|RESOLVED, alertname, labels) in order."""
    summary: str
    metrics: dict[str, dict[tuple[tuple[str, str], ...], float]]

    def events(self, alertname: str) -> list[tuple[dt.datetime | None, str, dict[str, str]]]:
        return [(t, state, lb) for t, state, name, lb in self.timeline if name == alertname]


def _parse_replay(stdout: str) -> Replay:
    timeline = []
    for line in stdout.splitlines():
        m = TIMELINE.match(line)
        if m:
            when = None if m.group(1) == "(end)" else _utc(m.group(1).removesuffix("Z"))
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(4)))
            timeline.append((when, m.group(2), m.group(3), labels))
    summary = "\n".join(
        ln
        for ln in stdout.splitlines()
        if ln.startswith("# ") and not ln.startswith(("# HELP", "# TYPE"))
    )
    metrics: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    exposition = stdout[stdout.find("# HELP") :] if "# HELP" in stdout else ""
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            metrics.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return Replay(timeline, summary, metrics)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """generate.py run with its defaults (as sample.log was made): the log and its counts."""
    tmp = tmp_path_factory.mktemp("support-bot")
    log, counts = tmp / "sample.log", tmp / "counts.json"
    subprocess.run(
        [sys.executable, str(RECIPE / "generate.py"), "--out", str(log), "--counts", str(counts)],
        check=True,
        timeout=60,
    )
    assert log.read_bytes() == SAMPLE.read_bytes(), "the counts are not sample.log's"
    return log, json.loads(counts.read_text())


@pytest.fixture(scope="module")
def replay() -> Replay:
    result = _chatwatch("replay", "-c", str(CONFIG), str(SAMPLE))
    assert result.returncode == 0, result.stderr[-2000:]
    return _parse_replay(result.stdout)


def test_sample_log_is_python_logging_text_with_tracebacks(
    generated: tuple[Path, dict[str, Any]],
) -> None:
    _, counts = generated
    lines = SAMPLE.read_text().splitlines()
    assert counts["continuation_lines"] > 0  # tracebacks are part of the sample
    # The real logging format, with Python's default asctime.
    first = lines[0]
    assert re.match(
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[INFO\] \[req:-\] \[session:-\] ", first
    )
    assert dt.datetime.strptime(first[:23], ASCTIME) == dt.datetime.fromisoformat(counts["start"])


def test_replay_counts_what_the_bot_logged(
    replay: Replay, generated: tuple[Path, dict[str, Any]]
) -> None:
    _, counts = generated
    for key, (metric, label_names) in METRICS.items():
        expected = {
            tuple(sorted(zip(label_names, row[:-1], strict=True))): float(row[-1])
            for row in counts["metrics"][key]
        }
        assert replay.metrics.get(metric) == expected, metric
    # Every record is one event, its traceback included; no line is left undecoded.
    lines = counts["records"] + counts["continuation_lines"]
    assert f"replayed {lines} lines ({counts['records']} events)" in replay.summary
    assert "could not be decoded" not in replay.summary
    assert "no usable" not in replay.summary  # every event had its asctime read


def test_decoder_joins_each_traceback_to_its_record() -> None:
    """The decoder on every line of the sample, as replay feeds it: a record and the
    traceback after it are one event, with the exception the bot caught."""
    (source,) = load(CONFIG, env=ENV).sources
    reasons: Counter[str] = Counter()
    events: list[dict[str, Any]] = []
    decoder = make_decoder(source, lambda reason: reasons.update([reason]))
    decoder.decode(SAMPLE.read_bytes().splitlines(), events)
    decoder.flush(events)
    records = _records(SAMPLE.read_text().splitlines())
    assert reasons == {}
    assert len(events) == len(records)
    caught = load_generator(RECIPE).EXCEPTION_TYPES
    for event, record in zip(events, records, strict=True):
        assert event["ts"] and event["level"] and event["logger"]
        assert record[0].endswith(event["message"])
        if len(record) == 1:
            assert "exception" not in event
            continue
        error_type = re.search(r"error_type=(\w+)", event["message"])
        assert error_type is not None
        assert event["exception"]["type"] == caught[error_type.group(1)]
        assert event["exception"]["stacktrace"] == "\n".join(record[1:])


def test_automation_rate_is_recorded(replay: Replay) -> None:
    (rate,) = replay.metrics["support_bot:automation_rate:ratio_rate10m"].values()
    assert 0.5 < rate <= 1  # the log ends healthy


def _ceil_second(t: dt.datetime) -> dt.datetime:
    whole = t.replace(microsecond=0)
    return whole if whole == t else whole + dt.timedelta(seconds=1)


def _errors_within_5m(error_times: list[str]) -> Iterator[tuple[dt.datetime, int]]:
    """(evaluation time, errors in the 5 minutes up to it) at every whole second the count
    changes, as the rules see it evaluated every second: errors logged at or before the
    evaluation, after the evaluation 5 minutes earlier."""
    times = sorted(_utc(t) for t in error_times)
    window = dt.timedelta(minutes=5)
    checkpoints = sorted(
        {_ceil_second(t) for t in times} | {_ceil_second(t) + window for t in times}
    )
    for at in checkpoints:
        yield at, sum(1 for t in times if at - window < t <= at)


def test_repeated_error_alert_fires_at_the_third_timeout_and_resolves(
    replay: Replay, generated: tuple[Path, dict[str, Any]]
) -> None:
    _, counts = generated
    bad_start, bad_end = map(_utc, counts["bad_spell"])
    events = replay.events("SupportBotRepeatedError")
    assert {lb["error_type"] for _, _, lb in events} == {"timeout"}, events
    assert [state for _, state, _ in events] == ["FIRING", "RESOLVED"]
    (fired_at, _, labels), (resolved_at, _, _) = events
    assert labels == {"error_type": "timeout", "severity": "warning"}

    counted = list(_errors_within_5m(counts["error_times"]["timeout"]))
    third = next(at for at, n in counted if n >= 3)
    below = next(at for at, n in counted if at > third and n < 3)
    assert bad_start <= third < bad_end
    assert fired_at is not None and resolved_at is not None
    assert abs((fired_at - third).total_seconds()) <= 1, (fired_at, third)
    assert abs((resolved_at - below).total_seconds()) <= 1, (resolved_at, below)
    # The other error types stay below 3 in any 5 minutes: no alert for them.
    for error_type, times in counts["error_times"].items():
        if error_type != "timeout":
            assert max(n for _, n in _errors_within_5m(times)) < 3


def test_low_automation_rate_fires_in_the_bad_spell_and_resolves_after_it(
    replay: Replay, generated: tuple[Path, dict[str, Any]]
) -> None:
    _, counts = generated
    bad_start, bad_end = map(_utc, counts["bad_spell"])
    events = replay.events("SupportBotLowAutomationRate")
    assert [state for _, state, _ in events] == ["FIRING", "RESOLVED"], events
    (fired_at, _, _), (resolved_at, _, _) = events
    assert fired_at is not None and resolved_at is not None
    assert bad_start + dt.timedelta(minutes=3) <= fired_at <= bad_end  # `for: 3m`
    assert bad_end < resolved_at <= bad_end + dt.timedelta(minutes=10)  # the 10m window


def test_healthy_stretches_raise_nothing_and_everything_resolves(
    replay: Replay, generated: tuple[Path, dict[str, Any]]
) -> None:
    _, counts = generated
    bad_start = _utc(counts["bad_spell"][0])
    assert replay.timeline, "no alert at all"
    assert all(t is not None and t >= bad_start for t, *_ in replay.timeline), replay.timeline
    assert _utc(counts["end"]) - max(t for t, *_ in replay.timeline if t) > dt.timedelta(minutes=5)


def test_replay_with_the_asctime_format_spelled_out_gives_the_same_timeline(
    replay: Replay,
) -> None:
    result = _chatwatch(
        "replay",
        "-c",
        str(CONFIG),
        "--timestamp-field",
        "ts",
        "--timestamp-format",
        ASCTIME,
        "--no-metrics",
        str(SAMPLE),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert _parse_replay(result.stdout).timeline == replay.timeline


def test_readme_quotes_the_sample() -> None:
    readme = RECIPE / "README.md"
    sample = set(SAMPLE.read_text().splitlines())
    quoted = [ln for ln in readme.read_text().splitlines() if re.match(r"\d{4}-\d\d-\d\d ", ln)]
    assert quoted and all(ln in sample for ln in quoted)


def _records(lines: list[str]) -> list[list[str]]:
    """Lines grouped into records: a line with a timestamp and the traceback lines after it."""
    records: list[list[str]] = []
    for line in lines:
        if re.match(r"\d{4}-\d\d-\d\d ", line) or not records:
            records.append([line])
        else:
            records[-1].append(line)
    return records


def test_live_agent_posts_the_alert_to_the_webhook_with_the_exception_types(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`chatwatch run` on the recipe's config (only the port changed): the bot logs three
    timeouts with their tracebacks, and the webhook gets SupportBotRepeatedError. The
    last traceback ends the file: its record is counted once the file is quiet."""
    config = yaml.safe_load(CONFIG.read_text())
    port = free_port()
    config["server"]["listen"] = f"127.0.0.1:{port}"
    config["rule_files"] = [str(RECIPE / "rules.yml")]
    (tmp_path / "chatwatch.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    log = tmp_path / "app.log"
    log.write_text("")
    hook = HookServer().start()
    monkeypatch.setenv("SUPPORT_BOT_WEBHOOK_URL", hook.url)
    monkeypatch.setenv("SUPPORT_BOT_LOG", str(log))
    monkeypatch.setenv("CHATWATCH_STATE_DIR", str(tmp_path / "state"))

    records = _records(SAMPLE.read_text().splitlines())
    timeouts = [r for r in records if "[ERROR]" in r[0] and "error_type=timeout" in r[0]][:3]
    healthy = records[:40]
    tracebacks = [ln for r in timeouts for ln in r[1:]]
    try:
        with running_chatwatch(tmp_path / "chatwatch.yaml", port, tmp_path) as cw:
            with log.open("a") as f:
                f.write("".join(ln + "\n" for r in healthy + timeouts for ln in r))
            bodies = wait_until(hook.bodies, timeout=15, what="a webhook notification")
            metrics = cw.metrics()
    finally:
        hook.stop()
    (body,) = bodies
    assert body["status"] == "firing"
    (alert,) = body["alerts"]
    assert alert["labels"] == {
        "alertname": "SupportBotRepeatedError",
        "error_type": "timeout",
        "severity": "warning",
    }
    assert alert["annotations"]["summary"] == "3 timeout errors in 5 minutes"
    assert body["groupLabels"] == {"alertname": "SupportBotRepeatedError", "error_type": "timeout"}

    def sample(name: str, **labels: str) -> float | None:
        for family in text_string_to_metric_families(metrics):
            for s in family.samples:
                if s.name == name and s.labels == labels:
                    return s.value
        return None

    # The tracebacks are part of their records: no line is left undecoded, and each
    # timeout is counted by the exception the bot caught.
    assert tracebacks
    for reason in ("no_match", "empty"):
        assert sample("chatwatch_decode_errors_total", reason=reason, source="support-bot") == 0
    assert sample("support_bot_errors_total", logger="support_bot.llm", error_type="timeout") == 3
    caught = load_generator(RECIPE).EXCEPTION_TYPES["timeout"]
    assert (
        sample("support_bot_exceptions_total", logger="support_bot.llm", exception_type=caught) == 3
    )
    assert sample("support_bot_log_lines_total", level="ERROR") == 3
