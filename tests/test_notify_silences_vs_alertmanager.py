"""Our /api/v2 against a real Alertmanager 0.25 (Debian prometheus-alertmanager).

Both get the same routing tree, the same alerts and the same silence requests; their
answers must be the same JSON, byte for byte once what cannot agree is masked: silence
ids (random UUIDs), and times each side takes from its own clock (a silence's start,
every updatedAt, an alert's endsAt), of which only the format is compared. Errors are
compared as status and body.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml

from agent.alerting.alert import Alert
from agent.notify.config import AlertingConfig
from agent.server.config import ServerConfig
from tests.notify_support import HookServer
from tests.realservers import running_alertmanager
from tests.server_support import Handlers, running

pytestmark = pytest.mark.timeout(120)

ROUTES = """
route:
  receiver: team
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1h
  repeat_interval: 4h
  routes:
    - {{receiver: db, matchers: ['team="db"'], continue: true}}
    - {{receiver: team}}
receivers:
  - name: team
    webhook_configs: [{{url: "{hook}", send_resolved: true}}]
  - name: db
    webhook_configs: [{{url: "{hook}", send_resolved: true}}]
"""
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def hook() -> Iterator[HookServer]:
    server = HookServer().start()
    yield server
    server.stop()


@pytest.fixture
def alertmanager(tmp_path: Path, hook: HookServer) -> Iterator[str]:
    config = ROUTES.format(hook=hook.url)
    with running_alertmanager(config, tmp_path) as url:
        yield url


class Pair:
    """The same request to Alertmanager and to chatwatch; answers masked and compared."""

    def __init__(self, am: httpx.AsyncClient, cw: httpx.AsyncClient, handlers: Handlers) -> None:
        self.am = am
        self.cw = cw
        self.handlers = handlers
        self.ids: list[dict[str, str]] = [{}, {}]
        """Silence id -> placeholder, per side, in order of first appearance."""

    async def both(self, method: str, path: str, **kw: Any) -> list[httpx.Response]:
        """`<silenceN>` in the path or a JSON body stands for that side's Nth silence id."""
        out = []
        for side, client in enumerate((self.am, self.cw)):
            real = {f"<{name}>": sid for sid, name in self.ids[side].items()}
            side_path = path
            for name, sid in real.items():
                side_path = side_path.replace(name, sid)
            side_kw = dict(kw)
            if isinstance(kw.get("json"), dict):
                side_kw["json"] = {
                    k: real.get(v, v) if isinstance(v, str) else v for k, v in kw["json"].items()
                }
            out.append(await client.request(method, side_path, **side_kw))
        return out

    def mask(self, side: int, value: Any, times: tuple[str, ...]) -> Any:
        if isinstance(value, dict):
            if value.get("status") == {"state": "expired"}:
                times = (*times, "endsAt")  # expired by each side's clock
            out = {}
            for k, v in value.items():
                if k in times and isinstance(v, str):
                    assert TIME.fullmatch(v), f"{k}: {v!r} is not go-openapi's DateTime"
                    out[k] = "<time>"
                else:
                    out[k] = self.mask(side, v, times)
            return out
        if isinstance(value, list):
            return [self.mask(side, v, times) for v in value]
        if isinstance(value, str) and re.fullmatch(r"[0-9a-f-]{36}", value):
            names = self.ids[side]
            return f"<{names.setdefault(value, f'silence{len(names)}')}>"
        return value

    async def same(self, method: str, path: str, times: tuple[str, ...] = (), **kw: Any) -> Any:
        """Both answer alike: status, content type, and the JSON (masked) in key order."""
        am, cw = await self.both(method, path, **kw)
        assert (cw.status_code, cw.headers.get("content-type")) == (
            am.status_code,
            am.headers.get("content-type"),
        ), f"{method} {path}: {am.text!r} vs {cw.text!r}"
        if not am.content:
            assert cw.content == b""
            return None
        am_json = json.dumps(self.mask(0, am.json(), times))
        cw_json = json.dumps(self.mask(1, cw.json(), times))
        assert cw_json == am_json, f"{method} {path}"
        return am.json()


@pytest_asyncio.fixture
async def pair(tmp_path: Path, alertmanager: str, hook: HookServer) -> AsyncIterator[Pair]:
    cfg = AlertingConfig.model_validate(yaml.safe_load(ROUTES.format(hook=hook.url)))
    handlers = Handlers(state_dir=tmp_path / "cw", alerting=cfg)
    server_cfg = ServerConfig(listen="127.0.0.1:0", enable_admin_api=True)
    async with (
        running(handlers, server_cfg) as server,
        httpx.AsyncClient(base_url=f"{alertmanager}/api/v2", timeout=10) as am,
        httpx.AsyncClient(base_url=f"{server.url}/api/v2", timeout=10) as cw,
    ):
        yield Pair(am, cw, handlers)


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def matcher(name: str, value: str, regex: bool = False, equal: bool = True) -> dict[str, Any]:
    return {"name": name, "value": value, "isRegex": regex, "isEqual": equal}


def silence(*matchers: dict[str, Any], start: float, end: float, **extra: Any) -> dict[str, Any]:
    return {
        "matchers": list(matchers),
        "startsAt": iso(start),
        "endsAt": iso(end),
        "createdBy": "oncall",
        "comment": "provider outage",
        **extra,
    }


async def fire(pair: Pair, alerts: list[dict[str, Any]], starts: float) -> None:
    """The same alerts to both: posted to Alertmanager, handed to our notifier."""
    posted = [{**a, "startsAt": iso(starts)} for a in alerts]
    r = await pair.am.post("/alerts", json=posted)
    assert r.status_code == 200, r.text
    now = time.time()
    pair.handlers.notifier.send(
        [
            Alert(
                labels=a["labels"],
                annotations=a["annotations"],
                starts_at=float(int(starts)),
                generator_url=a["generatorURL"],
            )
            for a in alerts
        ],
        now,
    )


ALERTS = [
    {
        "labels": {"alertname": "LLMDown", "provider": "openai", "team": "db", "job": "llm"},
        "annotations": {"summary": "LLM failing", "runbook": "https://runbooks/llm"},
        "generatorURL": "http://chatwatch.test:9317/graph?g0.expr=llm",
    },
    {
        "labels": {"alertname": "ChatErrors", "job": "chat", "instance": "b"},
        "annotations": {"summary": "chat errors"},
        "generatorURL": "http://chatwatch.test:9317/graph?g0.expr=chat",
    },
    {
        "labels": {"alertname": "ChatErrors", "job": "chat", "instance": "a", "zone": "eu"},
        "annotations": {"summary": "chat errors"},
        "generatorURL": "http://chatwatch.test:9317/graph?g0.expr=chat",
    },
]
ALERT_TIMES = ("startsAt", "updatedAt", "endsAt")
SILENCE_TIMES = ("startsAt", "updatedAt")


async def test_silences_alerts_groups_and_receivers_answer_as_alertmanager(pair: Pair) -> None:
    now = time.time()
    await fire(pair, ALERTS, now - 120)
    # Silences in every state, to see the order: active by end, pending by start,
    # expired most recent first.
    created = [
        await pair.same(
            "POST",
            "/silences",
            json=silence(matcher("alertname", "LLMDown"), start=now, end=now + 7200),
        ),
        await pair.same(
            "POST",
            "/silences",
            json=silence(
                matcher("job", "ch.*", regex=True),
                matcher("instance", "b", equal=False),
                start=now,
                end=now + 3600,
            ),
        ),
        await pair.same(
            "POST",
            "/silences",
            json=silence(matcher("zone", "eu"), start=now + 600, end=now + 9000),
        ),
        await pair.same(
            "POST",
            "/silences",
            json=silence(matcher("alertname", "Gone"), start=now, end=now + 600),
        ),
        await pair.same(
            "POST",
            "/silences",
            json=silence(matcher("alertname", "GoneToo"), start=now, end=now + 600),
        ),
    ]
    assert all(set(c) == {"silenceID"} for c in created)
    await pair.same("DELETE", "/silence/<silence3>")
    await pair.same("DELETE", "/silence/<silence4>")
    await pair.same("DELETE", "/silence/<silence4>")  # again: nothing to do, still 200

    listed = await pair.same("GET", "/silences", SILENCE_TIMES)
    assert [s["status"]["state"] for s in listed] == [
        "active",
        "active",
        "pending",
        "expired",
        "expired",
    ]
    await pair.same("GET", "/silence/<silence1>", SILENCE_TIMES)
    for filters in (['alertname="LLMDown"'], ["job=~ch.*", 'instance!="b"'], ["zone=eu"], ["x=y"]):
        await pair.same("GET", "/silences", SILENCE_TIMES, params={"filter": filters})

    for params in (
        {},
        {"silenced": "false"},
        {"active": "false"},
        {"active": "false", "silenced": "true", "inhibited": "false"},
        {"filter": 'job=~"ch.*"'},
        {"filter": ["alertname=ChatErrors", 'zone=""']},
        {"filter": 'zone!=""'},
        {"receiver": "db"},
        {"receiver": "te.*", "silenced": "false"},
        {"silenced": "no"},
    ):
        alerts = await pair.same("GET", "/alerts", ALERT_TIMES, params=params)
        if not params:  # not an empty comparison: all three, two of them silenced
            states = [a["status"]["state"] for a in alerts]
            assert sorted(states) == ["active", "suppressed", "suppressed"]
    for params in ({}, {"silenced": "false"}, {"receiver": "team"}, {"filter": "job=llm"}):
        groups = await pair.same("GET", "/alerts/groups", ALERT_TIMES, params=params)
    assert groups and groups[0]["alerts"][0]["status"]["silencedBy"]
    await pair.same("GET", "/receivers")


async def test_updating_a_silence_keeps_or_replaces_it_as_alertmanager_does(pair: Pair) -> None:
    now = time.time()
    await pair.same(
        "POST",
        "/silences",
        json=silence(matcher("alertname", "LLMDown"), start=now, end=now + 3600),
    )
    (am, cw) = await pair.both("GET", "/silence/<silence0>")
    # The start as shown (milliseconds), a later end: updated in place, same id.
    for side, shown in enumerate((am.json(), cw.json())):
        client = (pair.am, pair.cw)[side]
        body = silence(matcher("alertname", "LLMDown"), start=now, end=now + 7200, id=shown["id"])
        body["startsAt"] = shown["startsAt"]
        r = await client.post("/silences", json=body)
        assert r.json() == {"silenceID": shown["id"]}
    # Other matchers: a new silence, the old one expired.
    await pair.same(
        "POST",
        "/silences",
        json=silence(
            matcher("alertname", "ChatErrors"), start=now, end=now + 3600, id="<silence0>"
        ),
    )
    listed = await pair.same("GET", "/silences", SILENCE_TIMES)
    assert [s["status"]["state"] for s in listed] == ["active", "expired"]
    # A pending silence may move its start later.
    await pair.same(
        "POST",
        "/silences",
        json=silence(matcher("zone", "eu"), start=now + 600, end=now + 1200),
    )
    await pair.same(
        "POST",
        "/silences",
        json=silence(matcher("zone", "eu"), start=now + 900, end=now + 1800, id="<silence2>"),
    )
    await pair.same("GET", "/silences", SILENCE_TIMES)


@pytest.mark.parametrize(
    ("method", "path", "request_body", "params"),
    [
        # start not before end / end in the past
        ("POST", "/silences", "start_after_end", None),
        ("POST", "/silences", "in_the_past", None),
        # matchers that would mute everything, or are malformed
        ("POST", "/silences", "matches_empty", None),
        ("POST", "/silences", "bad_label_name", None),
        ("POST", "/silences", "no_matchers", None),
        ("POST", "/silences", "missing_comment", None),
        ("POST", "/silences", "missing_is_regex", None),
        ("POST", "/silences", "unknown_id", None),
        ("GET", "/silence/0b5a6a4f-2c35-4f8f-9a55-8c1a7a0b0c0d", None, None),
        ("GET", "/silence/nope", None, None),
        ("DELETE", "/silence/0b5a6a4f-2c35-4f8f-9a55-8c1a7a0b0c0d", None, None),
        ("GET", "/silences", None, {"filter": "bad"}),
        ("GET", "/silences", None, {"filter": 'a="b'}),
        ("GET", "/alerts", None, {"filter": "alertname"}),
        ("GET", "/alerts/groups", None, {"filter": 'x=y"z'}),
    ],
)
async def test_errors_answer_as_alertmanager(
    pair: Pair, method: str, path: str, request_body: str | None, params: dict[str, str] | None
) -> None:
    now = time.time()
    bodies = {
        "start_after_end": silence(matcher("a", "b"), start=now + 60, end=now + 30),
        "in_the_past": silence(matcher("a", "b"), start=now - 7200, end=now - 3600),
        "matches_empty": silence(matcher("a", ".*", regex=True), start=now, end=now + 60),
        "bad_label_name": silence(matcher("a-b", "x"), start=now, end=now + 60),
        "no_matchers": silence(start=now, end=now + 60),
        "missing_comment": {
            k: v
            for k, v in silence(matcher("a", "b"), start=now, end=now + 60).items()
            if k != "comment"
        },
        "missing_is_regex": silence({"name": "a", "value": "b"}, start=now, end=now + 60),
        "unknown_id": silence(
            matcher("a", "b"), start=now, end=now + 60, id="0b5a6a4f-2c35-4f8f-9a55-8c1a7a0b0c0d"
        ),
    }
    kw: dict[str, Any] = {}
    if request_body is not None:
        kw["json"] = bodies[request_body]
    if params is not None:
        kw["params"] = params
    await pair.same(method, path, **kw)


async def test_status_has_alertmanagers_shape(pair: Pair) -> None:
    (am, cw) = await pair.both("GET", "/status")
    a, c = am.json(), cw.json()
    assert list(c) == list(a)
    assert c["cluster"] == a["cluster"] == {"peers": [], "status": "disabled"}
    assert list(c["versionInfo"]) == list(a["versionInfo"])
    assert c["versionInfo"]["version"] == a["versionInfo"]["version"]  # amtool compares them
    assert TIME.fullmatch(c["uptime"]) and TIME.fullmatch(a["uptime"])
    ours, theirs = (yaml.safe_load(x["config"]["original"]) for x in (c, a))
    assert ours["route"]["receiver"] == theirs["route"]["receiver"] == "team"
    assert [r["name"] for r in ours["receivers"]] == [r["name"] for r in theirs["receivers"]]
    assert ours["receivers"][0]["webhook_configs"][0]["url"] == "<secret>"
