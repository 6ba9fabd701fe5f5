"""The chat-widget-backend recipe (examples/recipes/chat-widget-backend/): a Node.js
backend logging pino-http's JSON lines (numeric levels, epoch-millisecond times).

The sample is pino's JSON; `chatwatch replay` of it (with `--timestamp-format unix_ms` and
with the default `auto`) yields the counts a plain reading of the log gives, recording rules
that agree with the log's last five minutes and its last start line, and the alert timeline
of the spells generate.py wrote. Live, `chatwatch run` knows the uptime of a backend started
before it, and reports a restart.

What every recipe promises (the sample is what generate.py writes, `chatwatch check`,
promtool, the rule unit tests, runbooks) is in test_recipes.py."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy_support import REPO
from tests.realservers import free_port, running_chatwatch, wait_until
from tests.recipe_support import chatwatch, load_generator

RECIPE = REPO / "examples" / "recipes" / "chat-widget-backend"
SAMPLE = RECIPE / "sample.log"
EVENT = re.compile(r"^(\S+)\s+(FIRING|RESOLVED)\s+(\w+)\{")
REQUEST_MSGS = {"request completed", "request errored"}


GEN = load_generator(RECIPE)


def _records() -> list[dict[str, Any]]:
    return [json.loads(line) for line in SAMPLE.read_text().splitlines()]


def _endpoint(url: str) -> str:
    """The recipe's `endpoint` label, worked out without its regex."""
    path = url.split("?")[0]
    if not path.startswith("/api/widget/"):
        return "other"
    word = path.rsplit("/", 1)[1]
    return word if word.isalpha() and word.islower() else "other"


def test_sample_log_is_pino_json() -> None:
    records = _records()
    for r in records:
        assert list(r)[:4] == ["level", "time", "pid", "hostname"], r
        assert list(r)[-1] == "msg"
        assert r["level"] in {30, 40, 50, 60}
        assert isinstance(r["time"], int) and r["time"] > 10**12  # epoch ms
        if r["msg"] in REQUEST_MSGS:
            assert isinstance(r["responseTime"], int)
            assert r["req"]["headers"].get("authorization", "[Redacted]") == "[Redacted]"
    times = [r["time"] for r in records]
    assert times == sorted(times)


@pytest.fixture(scope="module")
def replay() -> str:
    config, log = str(RECIPE / "chatwatch.yaml"), str(SAMPLE)
    result = chatwatch("replay", "-c", config, "--timestamp-format", "unix_ms", log)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"# replayed {len(_records())} lines" in result.stdout
    assert "could not be decoded" not in result.stdout
    assert "had no usable" not in result.stdout
    return result.stdout


def test_auto_timestamps_read_epoch_ms_the_same(replay: str) -> None:
    auto = chatwatch("replay", "-c", str(RECIPE / "chatwatch.yaml"), str(SAMPLE))
    assert auto.returncode == 0, auto.stderr[-2000:]
    without_wall_time = re.compile(r" in \d+\.\ds:")
    assert without_wall_time.sub("", auto.stdout) == without_wall_time.sub("", replay)


def _metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples = {}
    for family in text_string_to_metric_families(text[text.index("# HELP") :]):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def _key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return (name, frozenset(labels.items()))


def test_replay_counts_what_the_log_says(replay: str) -> None:
    records = _records()
    requests = [r for r in records if r["msg"] in REQUEST_MSGS]
    got = _metrics(replay)

    by_labels = Counter(
        (r["req"]["method"], _endpoint(r["req"]["url"]), str(r["res"]["statusCode"]))
        for r in requests
    )
    assert {"config", "sessions", "messages"} == {e for _, e, _ in by_labels}
    for (method, endpoint, status), n in by_labels.items():
        labels = {"method": method, "endpoint": endpoint, "status_code": status}
        assert got[_key("widget_http_requests_total", **labels)] == n
        if int(status) >= 500:
            assert got[_key("widget_http_errors_total", **labels)] == n
    assert sum(v for (name, _), v in got.items() if name == "widget_http_requests_total") == len(
        requests
    )
    errors = [r for r in requests if r["res"]["statusCode"] >= 500]
    assert errors and all(r["msg"] == "request errored" and r["level"] == 50 for r in errors)
    assert sum(v for (name, _), v in got.items() if name == "widget_http_errors_total") == len(
        errors
    )
    limited = [r for r in requests if r["res"]["statusCode"] == 429]
    hits = Counter((r["req"]["method"], _endpoint(r["req"]["url"])) for r in limited)
    for (method, endpoint), n in hits.items():
        assert got[_key("widget_rate_limit_hits_total", method=method, endpoint=endpoint)] == n

    for endpoint in ("config", "sessions", "messages"):
        times = [r["responseTime"] for r in requests if _endpoint(r["req"]["url"]) == endpoint]
        name = "widget_http_response_time_seconds"
        assert got[_key(f"{name}_count", endpoint=endpoint)] == len(times)
        assert got[_key(f"{name}_sum", endpoint=endpoint)] == pytest.approx(sum(times) / 1000)
        assert got[_key(f"{name}_bucket", endpoint=endpoint, le="1.0")] == sum(
            t <= 1000 for t in times
        )

    starts = [r["time"] for r in records if r["msg"] == "server listening"]
    assert len(starts) == 2
    assert got[_key("widget_process_start_time_seconds")] == pytest.approx(starts[-1] / 1000)
    for level, n in Counter(str(r["level"]) for r in records).items():
        assert got[_key("widget_log_events_total", level=level)] == n


def test_recording_rules_agree_with_the_last_five_minutes_of_the_log(replay: str) -> None:
    records = _records()
    got = _metrics(replay)
    # Replay evaluates every second; the last evaluation is the first at or after the
    # last line. Its 5m window holds exactly the lines after `end - 300`.
    end = math.ceil(records[-1]["time"] / 1000)
    window = [
        r for r in records if r["msg"] in REQUEST_MSGS and end - 300 < r["time"] / 1000 <= end
    ]
    errors = [r for r in window if r["res"]["statusCode"] >= 500]
    assert got[_key("widget:http_requests:rate5m")] == pytest.approx(len(window) / 300)
    assert got[_key("widget:http_error_rate:percent5m")] == pytest.approx(
        100 * len(errors) / len(window)
    )
    average_ms = sum(r["responseTime"] for r in window) / len(window)
    assert got[_key("widget:http_response_time:avg5m_milliseconds")] == pytest.approx(average_ms)
    last_start = max(r["time"] for r in records if r["msg"] == "server listening") / 1000
    assert got[_key("widget:process_uptime:seconds")] == pytest.approx(end - last_start)


def _timeline(replay: str) -> list[tuple[float | None, str, str]]:
    """(seconds after the first line or None at the end, FIRING|RESOLVED, alertname)."""
    start = _records()[0]["time"] / 1000
    out = []
    for line in replay.splitlines():
        m = EVENT.match(line)
        if m:
            when = None if m.group(1) == "(end)" else dt.datetime.fromisoformat(m.group(1))
            out.append((None if when is None else when.timestamp() - start, *m.group(2, 3)))
    return out


def test_each_spell_raises_its_alerts_which_resolve_after_it(replay: str) -> None:
    timeline = _timeline(replay)
    assert not [e for e in timeline if e[0] is None], f"still firing at the end: {timeline}"
    fired: dict[str, list[float]] = {}
    resolved: dict[str, list[float]] = {}
    for t, state, name in timeline:
        assert t is not None
        (fired if state == "FIRING" else resolved).setdefault(name, []).append(t)
    assert set(fired) == {
        "WidgetHighErrorRate",
        "WidgetSlowResponses",
        "WidgetRateLimited",
        "WidgetBackendRestarted",
    }
    assert all(len(fired[n]) == len(resolved[n]) == 1 for n in fired), timeline
    spells = {
        "WidgetHighErrorRate": GEN.LLM_OUTAGE,
        "WidgetSlowResponses": GEN.LLM_OUTAGE,
        "WidgetRateLimited": GEN.RATE_LIMIT_BURST,
    }
    for name, (begin, end) in spells.items():
        assert begin < fired[name][0] < end, (name, fired[name], (begin, end))
        assert end < resolved[name][0] <= end + 6 * 60, (name, resolved[name], end)
    # The restart alert fires at the first evaluation after the new start line, and
    # resolves when that change leaves the 15m window.
    records = _records()
    starts = [r["time"] for r in records if r["msg"] == "server listening"]
    restart = (starts[-1] - records[0]["time"]) / 1000
    assert GEN.CRASH_AT < restart < GEN.CRASH_AT + GEN.RESTART_AFTER
    assert restart < fired["WidgetBackendRestarted"][0] <= restart + 1
    assert resolved["WidgetBackendRestarted"][0] - fired["WidgetBackendRestarted"][0] == 15 * 60


def _gauge(metrics: str, name: str) -> float | None:
    m = re.search(rf"^{re.escape(name)} (\S+)$", metrics, re.M)
    return None if m is None else float(m.group(1))


def test_live_agent_knows_the_uptime_and_reports_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`chatwatch run` with the recipe's config as it is: started after the backend, it
    reads the log from the beginning, so the uptime counts from the `server listening`
    line written 30 s before; a crash and a new start line raise WidgetBackendRestarted on
    the console receiver and move the start time."""
    records = _records()
    log = tmp_path / "app.log"
    port = free_port()
    for name, value in {
        "WIDGET_LOGS": str(log),
        "CHATWATCH_STATE_DIR": str(tmp_path / "state"),
        "CHATWATCH_LISTEN": f"127.0.0.1:{port}",
    }.items():
        monkeypatch.setenv(name, value)  # the agent subprocess inherits them
    starts = [r for r in records if r["msg"] == "server listening"]
    (crash,) = [r for r in records if r["msg"] == "uncaught exception"]
    started_ms = int(time.time() * 1000) - 30_000
    requests = [r for r in records if r["msg"] in REQUEST_MSGS][:20]
    with log.open("w") as f:
        for i, r in enumerate([starts[0], *requests]):
            f.write(json.dumps({**r, "time": started_ms + 1000 * i}, separators=(",", ":")))
            f.write("\n")

    with running_chatwatch(RECIPE / "chatwatch.yaml", port, tmp_path) as cw:

        def uptime_known() -> str | None:
            metrics = cw.metrics()
            return metrics if "widget:process_uptime:seconds " in metrics else None

        metrics = wait_until(uptime_known, timeout=10, what="the uptime recording rule")
        assert _gauge(metrics, "widget_process_start_time_seconds") == started_ms / 1000
        uptime = _gauge(metrics, "widget:process_uptime:seconds")
        assert uptime is not None and 30 <= uptime < 30 + 20
        assert "WidgetBackendRestarted" not in cw.logs()

        restarted_ms = int(time.time() * 1000)
        with log.open("a") as f:
            for r in (crash, starts[1]):
                f.write(json.dumps({**r, "time": restarted_ms}, separators=(",", ":")) + "\n")
        wait_until(
            lambda: "[FIRING:1] WidgetBackendRestarted" in cw.logs(),
            timeout=10,
            what="the restart alert on the console receiver",
        )

        # The alert can fire in an early evaluation, before the regular one that records
        # the uptime again: wait for the recording rule to follow.
        def uptime_reset() -> str | None:
            metrics = cw.metrics()
            uptime = _gauge(metrics, "widget:process_uptime:seconds")
            return metrics if uptime is not None and uptime < 30 else None

        metrics = wait_until(uptime_reset, timeout=10, what="the uptime recorded again")
    assert _gauge(metrics, "widget_process_start_time_seconds") == restarted_ms / 1000
    uptime = _gauge(metrics, "widget:process_uptime:seconds")
    assert uptime is not None and 0 <= uptime < 10
