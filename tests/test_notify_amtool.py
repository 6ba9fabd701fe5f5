"""Scenario: an on-call engineer silences a known LLM provider outage with the real `amtool`.

End to end through `chatwatch run` and a stand-in Slack and webhook: the silence made with
`amtool silence add` keeps the alert off both, while the alert still fires (`/metrics`
ALERTS, `amtool alert query --silenced`); it survives a restart of chatwatch; and
`amtool silence expire` brings the still-firing alert to both receivers at once, though
the group's interval is an hour. Then amtool against the write guard and basic auth.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.server.config import ServerConfig
from tests.notify_support import HookServer
from tests.realservers import Chatwatch, free_port, require, wait_until
from tests.server_support import Handlers, running

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

RULES = """
groups:
  - name: chatbot
    rules:
      - alert: LLMProviderDown
        expr: chatbot_llm_errors > 5
        labels: {severity: critical}
        annotations: {summary: "LLM provider failing"}
      - alert: ChatErrorsHigh
        expr: chatbot_chat_errors > 5
        labels: {severity: warning}
        annotations: {summary: "chat errors high"}
"""


@pytest.fixture
def hook() -> Iterator[HookServer]:
    server = HookServer().start()
    yield server
    server.stop()


def amtool(url: str, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require("amtool"), f"--alertmanager.url={url}", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "HOME": str(home)},
    )


def table(output: str) -> list[dict[str, str]]:
    """amtool's simple output: a header row, then rows aligned under it (Go's tabwriter)."""
    lines = [line for line in output.splitlines() if line.strip()]
    header = [h for h in re.split(r"\s{2,}", lines[0]) if h]
    starts, pos = [], 0
    for h in header:
        pos = lines[0].index(h, pos)
        starts.append(pos)
    ends = [*starts[1:], None]
    return [
        {h: line[a:b].strip() for h, a, b in zip(header, starts, ends, strict=True)}
        for line in lines[1:]
    ]


def alert_names(hook: HookServer, path: str) -> list[str]:
    out = []
    for r in hook.requests:
        if r.path != path:
            continue
        body: dict[str, Any] = r.json()
        if path.endswith("webhook"):
            out += [f"{a['labels']['alertname']}:{a['status']}" for a in body["alerts"]]
        else:
            out.append(str(body["text"]))
    return out


def test_amtool_silence_mutes_slack_and_webhook_survives_restart_and_expiring_notifies_at_once(
    tmp_path: Path, hook: HookServer
) -> None:
    log = tmp_path / "chatbot.log"
    log.touch()
    (tmp_path / "rules.yml").write_text(RULES)
    port = free_port()
    config = tmp_path / "chatwatch.yaml"
    config.write_text(f"""
sources: [{{name: chatbot, paths: ["{log}"], format: json}}]
state_dir: {tmp_path / "state"}
checkpoint: {{interval: 1s}}
server: {{listen: "127.0.0.1:{port}", enable_admin_api: true}}
metrics:
  - {{name: chatbot_llm_errors, type: gauge, match: {{event: llm}}, value: errors}}
  - {{name: chatbot_chat_errors, type: gauge, match: {{event: chat}}, value: errors}}
rule_files: ["rules.yml"]
evaluation_interval: 200ms
alerting:
  route: {{receiver: team, group_by: [alertname], group_interval: 1h, repeat_interval: 4h}}
  receivers:
    - name: team
      slack_configs: [{{api_url: "{hook.url}/slack", send_resolved: true}}]
      webhook_configs: [{{url: "{hook.url}/webhook", send_resolved: true}}]
""")
    url = f"http://127.0.0.1:{port}"

    def write(event: str, errors: int) -> None:
        with log.open("a") as f:
            f.write(json.dumps({"event": event, "errors": errors}) + "\n")

    def settle(cw: Chatwatch) -> None:
        """The rules evaluated what was written, the notifier ticked, nothing is queued."""
        seen = cw.wait_evaluated(time.time())
        cw.wait_evaluated(seen + 0.1)
        wait_until(
            lambda: cw.sample("chatwatch_notification_queue_length", receiver="team") == 0,
            what="nothing queued",
        )

    cw = Chatwatch(config, port, tmp_path).start()
    try:
        added = amtool(
            url,
            "silence",
            "add",
            "-a",
            "oncall",
            "alertname=LLMProviderDown",
            "-d",
            "30m",
            "-c",
            "deploy",
            home=tmp_path,
        )
        assert added.returncode == 0, added.stderr
        assert added.stderr == ""  # no "amtool version and alertmanager version differ"
        sid = added.stdout.strip()
        assert len(sid) == 36

        write("llm", 10)  # silenced
        write("chat", 10)  # not silenced: proves the receivers get what is not muted
        wait_until(lambda: len(hook.requests) == 2, what="ChatErrorsHigh on slack and webhook")
        wait_until(
            lambda: cw.sample("chatwatch_notifications_suppressed_total", reason="silence"),
            what="the LLMProviderDown group flushed and muted",
        )
        settle(cw)
        assert alert_names(hook, "/hook/webhook") == ["ChatErrorsHigh:firing"]
        assert [t.split(" ")[1] for t in alert_names(hook, "/hook/slack")] == ["ChatErrorsHigh"]

        # Still firing, and shown as silenced.
        assert cw.sample("ALERTS", alertname="LLMProviderDown", alertstate="firing") == 1
        query = amtool(url, "silence", "query", home=tmp_path)
        assert query.returncode == 0, query.stderr
        (row,) = table(query.stdout)
        assert row["ID"] == sid
        assert row["Matchers"] == 'alertname="LLMProviderDown"'
        assert (row["Created By"], row["Comment"]) == ("oncall", "deploy")
        as_json = json.loads(amtool(url, "silence", "query", "-o", "json", home=tmp_path).stdout)
        assert [(s["id"], s["status"]["state"], s["comment"]) for s in as_json] == [
            (sid, "active", "deploy")
        ]
        active = table(amtool(url, "alert", "query", home=tmp_path).stdout)
        assert [(a["Alertname"], a["State"]) for a in active] == [("ChatErrorsHigh", "active")]
        silenced = table(amtool(url, "alert", "query", "--silenced", home=tmp_path).stdout)
        assert [(a["Alertname"], a["Summary"], a["State"]) for a in silenced] == [
            ("LLMProviderDown", "LLM provider failing", "suppressed")
        ]
    finally:
        assert cw.stop() == 0

    cw = Chatwatch(config, port, tmp_path).start()
    try:
        write("llm", 12)  # still failing after the restart
        wait_until(lambda: cw.sample("chatbot_llm_errors") == 12, what="new value read")
        settle(cw)
        assert len(hook.requests) == 2  # still muted: the silence came back from the state dir
        listed = json.loads(amtool(url, "silence", "query", "-o", "json", home=tmp_path).stdout)
        assert [s["id"] for s in listed] == [sid]
        alerts = httpx.get(f"{url}/api/v2/alerts", timeout=5).json()
        llm = [a for a in alerts if a["labels"]["alertname"] == "LLMProviderDown"]
        assert [a["status"]["silencedBy"] for a in llm] == [[sid]]

        expired_at = time.monotonic()
        expire = amtool(url, "silence", "expire", sid, home=tmp_path)
        assert expire.returncode == 0, expire.stderr
        wait_until(lambda: len(hook.requests) == 4, timeout=10, what="LLMProviderDown sent")
        assert max(r.at for r in hook.requests) - expired_at < 2.0  # not a group_interval
        settle(cw)
        assert alert_names(hook, "/hook/webhook") == [
            "ChatErrorsHigh:firing",
            "LLMProviderDown:firing",
        ]
        assert "LLMProviderDown" in alert_names(hook, "/hook/slack")[1]
        assert amtool(url, "silence", "query", "-q", home=tmp_path).stdout.strip() == ""
        expired = amtool(url, "silence", "query", "--expired", "-q", home=tmp_path).stdout
        assert expired.split() == [sid]
    finally:
        assert cw.stop() == 0


# -- amtool against the write guard and basic auth (an in-process server) -----------------------


async def run_amtool(url: str, *args: str, home: Path) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        require("amtool"),
        f"--alertmanager.url={url}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HOME": str(home)},
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_amtool_cannot_write_without_auth_or_admin_api(tmp_path: Path) -> None:
    handlers = Handlers(state_dir=tmp_path)
    async with running(handlers, ServerConfig(listen="127.0.0.1:0")) as server:
        code, _, err = await run_amtool(
            server.url, "silence", "add", "alertname=X", "-c", "x", home=tmp_path
        )
        query = await run_amtool(server.url, "silence", "query", home=tmp_path)
    assert code == 1 and "status 403" in err
    assert query[0] == 0  # reads stay open
    assert handlers.notifier.silences.all() == []


async def test_amtool_with_basic_auth_in_the_url(tmp_path: Path) -> None:
    cfg = ServerConfig.model_validate(
        {"listen": "127.0.0.1:0", "basic_auth": {"username": "oncall", "password": "pw-1"}}
    )
    handlers = Handlers(state_dir=tmp_path)
    async with running(handlers, cfg) as server:
        with_auth = server.url.replace("http://", "http://oncall:pw-1@")
        denied = await run_amtool(
            server.url, "silence", "add", "alertname=X", "-c", "x", home=tmp_path
        )
        added = await run_amtool(
            with_auth, "silence", "add", "alertname=X", "-c", "x", home=tmp_path
        )
        listed = await run_amtool(with_auth, "silence", "query", "-q", home=tmp_path)
    assert denied[0] == 1 and "status 401" in denied[2]
    assert added[0] == 0, added[2]
    assert listed[1].split() == [added[1].strip()]
