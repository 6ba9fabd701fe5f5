"""The go-live-chat recipe (examples/recipes/go-live-chat/): a Go live-chat server with an
AI consultant, logging with log/slog's JSONHandler.

The sample is slog's JSON; `chatwatch replay` of it yields the counts a plain reading of
the log gives, raises each alert during the spell that should raise it, and resolves every
one of them before the log ends. Live, `chatwatch run` with the recipe's config sends an
alert to a stand-in Slack webhook.

What every recipe promises (the sample is what generate.py writes, `chatwatch check` and
the Slack URL it needs, promtool, the rule unit tests, runbooks) is in test_recipes.py."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy_support import REPO
from tests.notify_support import HookServer
from tests.realservers import free_port, running_chatwatch, wait_until
from tests.recipe_support import chatwatch, load_generator

RECIPE = REPO / "examples" / "recipes" / "go-live-chat"
SAMPLE = RECIPE / "sample.log"
# A recognisable secret: it must not show up in anything chatwatch prints.
WEBHOOK = "https://hooks.slack.com/services/T0RECIPE/B0RECIPE/do-not-print-me"
EVENT = re.compile(r"^(\S+)\s+(FIRING|RESOLVED)\s+(\w+)\{")
START = dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC)  # generate.py's default --start


GEN = load_generator(RECIPE)


def _chatwatch(*args: str) -> subprocess.CompletedProcess[str]:
    result = chatwatch(*args, env={"SLACK_WEBHOOK_URL": WEBHOOK})
    assert WEBHOOK not in result.stdout + result.stderr
    return result


def _records() -> list[dict[str, Any]]:
    return [json.loads(line) for line in SAMPLE.read_text().splitlines()]


def test_sample_log_is_slog_json_with_a_correlation_id_on_every_line() -> None:
    records = _records()
    for r in records:
        assert list(r)[:4] == ["time", "level", "msg", "correlation_id"], r
        assert r["level"] in {"DEBUG", "INFO", "WARN", "ERROR"}
        # time.RFC3339Nano in UTC: nanoseconds with trailing zeros trimmed.
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?Z", r["time"])
    times = [dt.datetime.fromisoformat(r["time"]) for r in records]
    assert times == sorted(times)
    assert times[0] == START


@pytest.fixture(scope="module")
def replay() -> str:
    result = _chatwatch("replay", "-c", str(RECIPE / "chatwatch.yaml"), str(SAMPLE))
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"# replayed {len(_records())} lines" in result.stdout
    assert "could not be decoded" not in result.stdout
    assert "had no usable" not in result.stdout
    return result.stdout


def _metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples = {}
    metrics_text = text[text.index("# HELP") :]
    for family in text_string_to_metric_families(metrics_text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def _key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return (name, frozenset(labels.items()))


def test_replay_counts_what_the_log_says(replay: str) -> None:
    records = _records()
    msgs = Counter(r["msg"] for r in records)
    got = _metrics(replay)

    opened, closed = msgs["websocket connection opened"], msgs["websocket connection closed"]
    assert got[_key("livechat_ws_connections_total", outcome="opened")] == opened
    failed = msgs["websocket connection failed"]
    assert got[_key("livechat_ws_connections_total", outcome="failed")] == failed
    assert got[_key("livechat_ws_active_connections")] == opened - closed
    codes = Counter(str(r["code"]) for r in records if r["msg"] == "websocket connection closed")
    for code, n in codes.items():
        assert got[_key("livechat_ws_closed_total", code=code)] == n

    sent = [r for r in records if r["msg"] == "message sent"]
    types = Counter(r["type"] for r in sent)
    assert (
        got[_key("livechat_messages_total", direction="received", type="user_message")]
        == (msgs["message received"])
    )
    assert (
        got[_key("livechat_messages_total", direction="sent", type="ai_answer")]
        == (types["ai_answer"])
    )
    assert got[_key("livechat_messages_total", direction="sent", type="error")] == types["error"]
    assert types["error"] == msgs["ai request failed"] > 0
    response = "livechat_response_duration_seconds"
    assert got[_key(f"{response}_count")] == len(sent)
    within_2s = sum(r["response_time"] <= 2_000_000_000 for r in sent)
    assert got[_key(f"{response}_bucket", le="2.0")] == within_2s
    assert got[_key(f"{response}_sum")] == pytest.approx(
        sum(r["response_time"] for r in sent) / 1e9
    )

    assert got[_key("livechat_cache_lookups_total", result="hit")] == msgs["cache hit"]
    assert got[_key("livechat_cache_lookups_total", result="miss")] == msgs["cache miss"]

    done = [r for r in records if r["msg"] == "ai request completed"]
    model = {"model": "gpt-4o"}
    assert got[_key("livechat_ai_requests_total", result="completed", **model)] == len(done)
    assert (
        got[_key("livechat_ai_requests_total", result="failed", **model)]
        == (msgs["ai request failed"])
    )
    assert got[_key("livechat_ai_prompt_tokens_total", **model)] == sum(
        r["usage"]["prompt_tokens"] for r in done
    )
    assert got[_key("livechat_ai_completion_tokens_total", **model)] == sum(
        r["usage"]["completion_tokens"] for r in done
    )
    assert got[_key("livechat_ai_cost_usd_total", **model)] == pytest.approx(
        math.fsum(r["cost_usd"] for r in done)
    )
    ai_count = got[_key("livechat_ai_request_duration_seconds_count", **model)]
    assert ai_count == len(done) + msgs["ai request failed"]

    reasons = Counter(r["reason"] for r in records if r["msg"] == "auth failed")
    for reason, n in reasons.items():
        assert got[_key("livechat_auth_failures_total", reason=reason)] == n
    for level, n in Counter(r["level"] for r in records).items():
        assert got[_key("livechat_log_events_total", level=level)] == n


def test_replay_gives_the_genai_metrics_and_the_cost_from_tokens(replay: str) -> None:
    """The `genai` preset over the same lines: calls, errors by status code, tokens and
    durations, and the cost worked out from the tokens and the config's price, which
    matches what the server logged as `cost_usd`."""
    records = _records()
    got = {
        (name, frozenset((k, v) for k, v in labels if v)): value
        for (name, labels), value in _metrics(replay).items()
    }
    config = yaml.safe_load((RECIPE / "chatwatch.yaml").read_text())
    price = config["pricing"]["gpt-4o"]
    done = [r for r in records if r["msg"] == "ai request completed"]
    failed = [r for r in records if r["msg"] == "ai request failed"]
    gpt4o = {"gen_ai_system": "openai", "gen_ai_request_model": "gpt-4o"}

    assert got[_key("gen_ai_client_requests_total", **gpt4o)] == len(done) + len(failed)
    for code, n in Counter(str(r["status_code"]) for r in failed).items():
        assert got[_key("gen_ai_client_errors_total", **gpt4o, error_type=code)] == n
    for kind, field in (("input", "prompt_tokens"), ("output", "completion_tokens")):
        tokens = [r["usage"][field] for r in done]
        labels = {**gpt4o, "gen_ai_token_type": kind}
        assert got[_key("gen_ai_client_token_usage_count", **labels)] == len(tokens)
        assert got[_key("gen_ai_client_token_usage_sum", **labels)] == sum(tokens)
        within = sum(t <= 1024 for t in tokens)
        assert got[_key("gen_ai_client_token_usage_bucket", **labels, le="1024.0")] == within
    duration = "gen_ai_client_operation_duration_seconds"
    assert got[_key(f"{duration}_count", **gpt4o)] == len(done)
    assert got[_key(f"{duration}_sum", **gpt4o)] == pytest.approx(
        math.fsum(r["duration"] for r in done) / 1e9
    )
    for code in {str(r["status_code"]) for r in failed}:
        took = [r["duration"] / 1e9 for r in failed if str(r["status_code"]) == code]
        labels = {**gpt4o, "error_type": code}
        assert got[_key(f"{duration}_count", **labels)] == len(took)
        assert got[_key(f"{duration}_bucket", **labels, le="5.12")] == sum(t <= 5.12 for t in took)

    cost = math.fsum(
        (
            r["usage"]["prompt_tokens"] * price["input"]
            + r["usage"]["completion_tokens"] * price["output"]
        )
        / 1e6
        for r in done
    )
    assert got[_key("gen_ai_client_cost_usd_total", **gpt4o)] == pytest.approx(cost)
    assert cost == pytest.approx(math.fsum(r["cost_usd"] for r in done))


def _timeline(replay: str) -> list[tuple[float | None, str, str]]:
    """(seconds after the start or None at the end, FIRING|RESOLVED, alertname)."""
    out = []
    for line in replay.splitlines():
        m = EVENT.match(line)
        if m:
            when = None if m.group(1) == "(end)" else dt.datetime.fromisoformat(m.group(1))
            out.append((None if when is None else (when - START).total_seconds(), *m.group(2, 3)))
    return out


SPELL_ALERTS = {
    "cache_outage": {
        "LiveChatHighErrorRate",
        "LiveChatSlowResponses",
        "LiveChatCacheHitRateLow",
        "LiveChatAICostOverBudget",
    },
    "auth_burst": {"LiveChatAuthFailureBurst"},
    "upgrade": {"LiveChatConnectionSuccessLow"},
}


def test_each_spell_raises_its_alerts_which_resolve_after_it(replay: str) -> None:
    timeline = _timeline(replay)
    assert not [e for e in timeline if e[0] is None], f"still firing at the end: {timeline}"
    fired: dict[str, list[float]] = {}
    resolved: dict[str, list[float]] = {}
    for t, state, name in timeline:
        assert t is not None
        (fired if state == "FIRING" else resolved).setdefault(name, []).append(t)
    assert set(fired) == set().union(*SPELL_ALERTS.values())
    # Each alert fires once, while its spell lasts, and resolves within 15 minutes of its end
    # (the cost alert reads 15 minutes of spend; the others 5 minutes or less).
    for spell, names in SPELL_ALERTS.items():
        begin, end = GEN.SPELLS[spell]
        for name in names:
            assert len(fired[name]) == 1 and len(resolved[name]) == 1, timeline
            assert begin < fired[name][0] < end, (name, fired[name], (begin, end))
            assert end < resolved[name][0] <= end + 15 * 60, (name, resolved[name], end)
    # The auth burst alert reads one minute: it ends within two of the burst.
    assert resolved["LiveChatAuthFailureBurst"][0] <= GEN.AUTH_BURST[1] + 120


def _evaluated_since(metrics: str, since: float) -> bool:
    """Every rule group has been evaluated (its history snapshot taken) at or after `since`."""
    stamps = re.findall(
        r"^chatwatch_rule_group_last_evaluation_timestamp_seconds\{[^}]*\} (\S+)$", metrics, re.M
    )
    return bool(stamps) and min(float(s) for s in stamps) >= since


def test_live_agent_sends_an_auth_burst_to_slack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`chatwatch run` with the recipe's config as it is (log path, state, port and the
    webhook URL from the environment): a burst of `auth failed` lines reaches the Slack
    webhook as a firing LiveChatAuthFailureBurst, and the URL is never logged."""
    slack = HookServer().start()
    log = tmp_path / "livechat.log"
    log.touch()
    port = free_port()
    for name, value in {
        "LIVECHAT_LOGS": str(log),
        "CHATWATCH_STATE_DIR": str(tmp_path / "state"),
        "CHATWATCH_LISTEN": f"127.0.0.1:{port}",
        "SLACK_WEBHOOK_URL": slack.url,
    }.items():
        monkeypatch.setenv(name, value)  # the agent subprocess inherits them
    # One reason, as in the sample's burst: a series that first appears at N counts from
    # there (in Prometheus too), so the first line only creates it.
    failures = [r for r in _records() if r.get("reason") == "invalid signature"][:15]

    def append(records: list[dict[str, Any]]) -> None:
        with log.open("a") as f:
            for r in records:
                now = GEN.go_time(time.time_ns())
                f.write(json.dumps({**r, "time": now}, separators=(",", ":")) + "\n")

    try:
        with running_chatwatch(RECIPE / "chatwatch.yaml", port, tmp_path) as cw:
            append(failures[:1])  # the counter exists before the burst
            wait_until(lambda: "livechat_auth_failures_total{" in cw.metrics(), timeout=10)
            seen = time.time()  # ... and the rules' history holds it at 1 before the burst
            wait_until(
                lambda: _evaluated_since(cw.metrics(), seen),
                timeout=10,
                what="a rule evaluation after the first failure was counted",
            )
            append(failures[1:])
            wait_until(lambda: slack.requests, timeout=15, what="a message on the Slack hook")
            logs = cw.logs()
    finally:
        slack.stop()
    (message,) = slack.bodies()
    assert message["text"].startswith("[FIRING:1] LiveChatAuthFailureBurst")
    assert slack.url not in logs
