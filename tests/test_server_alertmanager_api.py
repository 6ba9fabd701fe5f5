"""Alertmanager's API v2 on a real server: what amtool and Grafana send, what they get back.

The shapes are compared with a real Alertmanager in test_notify_silences_vs_alertmanager.py;
here: the write guard, validation answers, filters and the views of silenced alerts.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.notify.config import AlertingConfig
from agent.server.config import ServerConfig
from tests.notify_support import fire
from tests.server_support import Handlers, client_of

ADMIN = ServerConfig(listen="127.0.0.1:0", enable_admin_api=True)
USER, PASSWORD = "oncall", "s3cr3t-Pa55word"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX"

ALERTING = f"""
route:
  receiver: team
  group_by: [alertname]
  routes:
    - {{receiver: db, matchers: ['team="db"'], continue: true}}
    - {{receiver: team}}
receivers:
  - name: team
    slack_configs: [{{api_url: "{SLACK_URL}"}}]
  - name: db
    webhook_configs: [{{url: "http://hook.internal/db?token=hunter2"}}]
"""


def handlers(tmp_path: Path) -> Handlers:
    cfg = AlertingConfig.model_validate(yaml.safe_load(ALERTING))
    return Handlers(state_dir=tmp_path, alerting=cfg)


def body(*matchers: dict[str, Any], hours: float = 1.0, **extra: Any) -> dict[str, Any]:
    now = time.time()
    return {
        "matchers": list(matchers),
        "startsAt": _iso(now),
        "endsAt": _iso(now + hours * 3600),
        "createdBy": "oncall",
        "comment": "provider outage",
        **extra,
    }


def eq(name: str, value: str, regex: bool = False, equal: bool = True) -> dict[str, Any]:
    return {"name": name, "value": value, "isRegex": regex, "isEqual": equal}


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


# -- the write guard -----------------------------------------------------------------------


async def test_without_auth_writes_are_off_and_reads_stay_open(tmp_path: Path) -> None:
    h = handlers(tmp_path)
    async with client_of(h) as client:
        post = await client.post("/api/v2/silences", json=body(eq("alertname", "X")))
        delete = await client.delete("/api/v2/silence/0b5a6a4f-2c35-4f8f-9a55-8c1a7a0b0c0d")
        reload = await client.post("/-/reload")
        reads = [await client.get(p) for p in ("/api/v2/silences", "/api/v2/alerts")]
    for denied in (post, delete, reload):
        assert denied.status_code == 403
        assert "server.enable_admin_api" in denied.text
    assert post.json().startswith("write endpoints are off")  # a JSON string, as AM answers
    assert h.reloads == 0 and h.notifier.silences.all() == []
    assert [r.status_code for r in reads] == [200, 200]


async def test_enable_admin_api_turns_writes_on(tmp_path: Path) -> None:
    h = handlers(tmp_path)
    async with client_of(h, ADMIN) as client:
        post = await client.post("/api/v2/silences", json=body(eq("alertname", "X")))
        sid = post.json()["silenceID"]
        delete = await client.delete(f"/api/v2/silence/{sid}")
        reload = await client.post("/-/reload")
    assert (post.status_code, delete.status_code, reload.status_code) == (200, 200, 200)
    assert delete.content == b""
    assert h.notifier.silences.get(sid).state(time.time()) == "expired"  # type: ignore[union-attr]


async def test_with_basic_auth_writes_and_reads_need_it(tmp_path: Path) -> None:
    cfg = ServerConfig.model_validate(
        {"listen": "127.0.0.1:0", "basic_auth": {"username": USER, "password": PASSWORD}}
    )
    h = handlers(tmp_path)
    async with client_of(h, cfg) as client:
        anonymous = [
            await client.post("/api/v2/silences", json=body(eq("alertname", "X"))),
            await client.get("/api/v2/silences"),
            await client.get("/api/v2/status"),
        ]
        ok = await client.post(
            "/api/v2/silences", json=body(eq("alertname", "X")), auth=(USER, PASSWORD)
        )
    assert [r.status_code for r in anonymous] == [401, 401, 401]
    assert ok.status_code == 200


def test_client_certificates_required_also_count_as_auth() -> None:
    tls = {"cert_file": "c.pem", "key_file": "k.pem", "client_ca_file": "ca.pem"}
    required = ServerConfig.model_validate(
        {"tls": {**tls, "client_auth_type": "RequireAndVerifyClientCert"}}
    )
    optional = ServerConfig.model_validate(
        {"tls": {**tls, "client_auth_type": "VerifyClientCertIfGiven"}}
    )
    assert required.writes_allowed and not optional.writes_allowed
    assert not ServerConfig().writes_allowed


# -- silences --------------------------------------------------------------------------------


async def test_create_read_update_and_expire(tmp_path: Path) -> None:
    h = handlers(tmp_path)
    async with client_of(h, ADMIN) as client:
        created = await client.post(
            "/api/v2/silences",
            json=body(eq("alertname", "LLMDown"), eq("provider", "open.*", True)),
        )
        sid = created.json()["silenceID"]
        got = (await client.get(f"/api/v2/silence/{sid}")).json()
        update = {**body(), **{k: got[k] for k in ("matchers", "startsAt")}, "id": sid}
        update["comment"] = "still down"
        updated = await client.post("/api/v2/silences", json=update)
        after = (await client.get(f"/api/v2/silence/{sid}")).json()
        await client.delete(f"/api/v2/silence/{sid}")
        expired = (await client.get(f"/api/v2/silence/{sid}")).json()
    assert created.headers["content-type"] == "application/json"
    assert got["status"] == {"state": "active"}
    assert got["matchers"] == [
        {"isEqual": True, "isRegex": False, "name": "alertname", "value": "LLMDown"},
        {"isEqual": True, "isRegex": True, "name": "provider", "value": "open.*"},
    ]
    assert (got["createdBy"], got["comment"]) == ("oncall", "provider outage")
    assert updated.json() == {"silenceID": sid}  # same matchers and start: updated in place
    assert after["comment"] == "still down"
    assert expired["status"]["state"] == "expired"
    assert expired["endsAt"] == expired["updatedAt"]


@pytest.mark.parametrize(
    ("payload", "status", "answer"),
    [
        (
            body(eq("alertname", "X"), hours=-1),
            400,
            "Failed to create silence: start time must be before end time",
        ),
        (
            {
                **body(eq("alertname", "X")),
                "startsAt": "2020-01-01T00:00:00Z",
                "endsAt": "2020-01-02T00:00:00Z",
            },
            400,
            "Failed to create silence: end time can't be in the past",
        ),
        (
            body(eq("team", ".*", True)),
            400,
            "silence invalid: at least one matcher must not match the empty string",
        ),
        (
            body(eq("a-b", "x")),
            400,
            'silence invalid: invalid label matcher 0: invalid label name "a-b"',
        ),
        (
            body(eq("alertname", "X"), id="0b5a6a4f-2c35-4f8f-9a55-8c1a7a0b0c0d"),
            404,
            "silence not found",
        ),
        (body(), 422, {"code": 612, "message": "matchers in body should have at least 1 items"}),
        (
            {k: v for k, v in body(eq("alertname", "X")).items() if k != "comment"},
            422,
            {"code": 602, "message": "comment in body is required"},
        ),
        (
            body({"name": "alertname", "value": "X"}),
            422,
            {"code": 602, "message": "matchers.0.isRegex in body is required"},
        ),
    ],
)
async def test_invalid_silences_get_alertmanagers_answers(
    tmp_path: Path, payload: dict[str, Any], status: int, answer: Any
) -> None:
    h = handlers(tmp_path)
    async with client_of(h, ADMIN) as client:
        r = await client.post("/api/v2/silences", json=payload)
    assert (r.status_code, r.json()) == (status, answer)
    assert h.notifier.silences.all() == []


async def test_a_regex_that_does_not_compile_and_a_body_that_is_not_json(tmp_path: Path) -> None:
    async with client_of(handlers(tmp_path), ADMIN) as client:
        regex = await client.post("/api/v2/silences", json=body(eq("a", "(", True)))
        garbage = await client.post("/api/v2/silences", content=b"xx")
        big = await client.post("/api/v2/silences", content=b" " * (2 << 20))
    assert regex.status_code == 400
    assert regex.json().startswith(
        'silence invalid: invalid label matcher 0: invalid regular expression "(": '
    )
    assert garbage.status_code == 400
    assert garbage.json()["message"].startswith('parsing silence body from "" failed, because ')
    assert big.status_code == 413


async def test_get_and_delete_of_unknown_or_malformed_ids(tmp_path: Path) -> None:
    async with client_of(handlers(tmp_path), ADMIN) as client:
        missing = await client.get("/api/v2/silence/0b5a6a4f-2c35-4f8f-9a55-8c1a7a0b0c0d")
        malformed = await client.get("/api/v2/silence/nope")
        delete = await client.delete("/api/v2/silence/0b5a6a4f-2c35-4f8f-9a55-8c1a7a0b0c0d")
    assert (missing.status_code, missing.content) == (404, b"")
    assert malformed.status_code == 422
    assert malformed.json() == {
        "code": 601,
        "message": 'silenceID in path must be of type uuid: "nope"',
    }
    assert (delete.status_code, delete.json()) == (500, "silence not found")  # as AM 0.25


async def test_silences_list_order_and_filter(tmp_path: Path) -> None:
    h = handlers(tmp_path)
    async with client_of(h, ADMIN) as client:

        async def create(*matchers: dict[str, Any], hours: float) -> str:
            r = await client.post("/api/v2/silences", json=body(*matchers, hours=hours))
            return str(r.json()["silenceID"])

        long = await create(eq("alertname", "A"), hours=3)
        short = await create(eq("alertname", "B"), eq("team", "db", equal=False), hours=1)
        gone = await create(eq("alertname", "C"), hours=2)
        await client.delete(f"/api/v2/silence/{gone}")
        listed = (await client.get("/api/v2/silences")).json()
        by_matcher = await client.get("/api/v2/silences", params={"filter": 'team!="db"'})
        by_value = await client.get("/api/v2/silences", params={"filter": "team=db"})
        bad = await client.get("/api/v2/silences", params={"filter": "team"})
    # active ending first, then pending, then expired (most recent first)
    assert [s["id"] for s in listed] == [short, long, gone]
    assert [s["id"] for s in by_matcher.json()] == [short]
    assert by_value.json() == []  # a filter must be one of the silence's own matchers
    assert (bad.status_code, bad.json()) == (400, "bad matcher format: team")


# -- alerts ------------------------------------------------------------------------------------


async def test_a_silenced_alert_is_listed_suppressed_with_its_silence(tmp_path: Path) -> None:
    h = handlers(tmp_path)
    now = time.time()
    quiet = fire("LLMDown", now - 60, provider="openai", team="db", job="llm")
    loud = fire("ChatErrors", now - 30, job="chat")
    h.notifier.send([quiet, loud], now)
    async with client_of(h, ADMIN) as client:
        r = await client.post("/api/v2/silences", json=body(eq("alertname", "LLMDown")))
        sid = r.json()["silenceID"]
        default = (await client.get("/api/v2/alerts")).json()
        amtool = (
            await client.get(
                "/api/v2/alerts",
                params={"active": "true", "silenced": "false", "inhibited": "false"},
            )
        ).json()
        silenced_only = (
            await client.get("/api/v2/alerts", params={"active": "false", "silenced": "true"})
        ).json()
        to_db = (await client.get("/api/v2/alerts", params={"receiver": "d."})).json()
        filtered = (await client.get("/api/v2/alerts", params={"filter": 'job=~"ll.*"'})).json()
        maybe = (await client.get("/api/v2/alerts", params={"silenced": "maybe"})).json()
        bad_receiver = await client.get("/api/v2/alerts", params={"receiver": "("})
        groups = (await client.get("/api/v2/alerts/groups")).json()
    by_name = {a["labels"]["alertname"]: a for a in default}
    assert sorted(by_name) == ["ChatErrors", "LLMDown"]
    assert [a["fingerprint"] for a in default] == sorted(a["fingerprint"] for a in default)
    assert by_name["LLMDown"]["status"] == {
        "inhibitedBy": [],
        "silencedBy": [sid],
        "state": "suppressed",
    }
    assert by_name["LLMDown"]["receivers"] == [{"name": "db"}, {"name": "team"}]
    assert by_name["ChatErrors"]["status"]["state"] == "active"
    assert [a["labels"]["alertname"] for a in amtool] == ["ChatErrors"]
    assert [a["labels"]["alertname"] for a in silenced_only] == ["LLMDown"]
    assert [a["labels"]["alertname"] for a in to_db] == ["LLMDown"]
    assert [a["labels"]["alertname"] for a in filtered] == ["LLMDown"]
    assert maybe == amtool  # anything but true, 1, yes... is false, as go-openapi reads it
    assert bad_receiver.status_code == 400
    assert bad_receiver.json().startswith("failed to parse receiver param: ")
    assert [(g["labels"], g["receiver"]["name"]) for g in groups] == [
        ({"alertname": "ChatErrors"}, "team"),
        ({"alertname": "LLMDown"}, "db"),
        ({"alertname": "LLMDown"}, "team"),
    ]
    assert groups[1]["alerts"][0]["receivers"] == [{"name": "db"}, {"name": "team"}]


async def test_status_shows_the_alerting_config_with_secrets_redacted(tmp_path: Path) -> None:
    async with client_of(handlers(tmp_path)) as client:
        status = (await client.get("/api/v2/status")).json()
        receivers = (await client.get("/api/v2/receivers")).json()
        head = await client.head("/api/v2/status")
    original = status["config"]["original"]
    assert SLACK_URL not in original and "hunter2" not in original
    config = yaml.safe_load(original)
    assert config["receivers"][0]["slack_configs"][0]["api_url"] == "<secret>"
    assert config["receivers"][1]["webhook_configs"][0]["url"] == "<secret>"
    assert config["route"]["routes"][0]["continue"] is True
    assert config["global"]["resolve_timeout"] == "5m"
    assert status["cluster"] == {"peers": [], "status": "disabled"}
    assert set(status["versionInfo"]) == {
        "branch",
        "buildDate",
        "buildUser",
        "goVersion",
        "revision",
        "version",
    }
    assert status["uptime"].endswith("Z")
    assert receivers == [{"name": "team"}, {"name": "db"}]
    assert head.status_code == 200 and head.content == b""
