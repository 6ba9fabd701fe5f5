"""The web pages as the server sends them: status, headers, auth, escaping, errors.

What a browser does with them (the chart, clicks, no script running from a label) is in
test_pages_browser.py; these check the HTTP side on a real server with handlers whose
answers the tests choose.
"""

from __future__ import annotations

import html
import re
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from agent.notify.config import AlertingConfig
from agent.server.config import BasicAuthConfig, ServerConfig
from agent.server.pages.render import CSP
from agent.server.pages.views import AlertView, GroupView, RuleView, RunningConfig
from tests.notify_support import fire
from tests.server_support import Handlers, client_of

PAGES = ["/", "/alerts", "/rules", "/graph", "/silences", "/config"]
XSS_IMG = "<img src=x onerror=alert(1)>"
XSS_SCRIPT = '"><script>document.title="pwned"</script>'


def key(name: str, **labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"__name__": name, **labels}.items()))


def rule(name: str, state: str, alerts: list[AlertView], **extra: Any) -> RuleView:
    fields: dict[str, Any] = {
        "name": name,
        "kind": "alerting",
        "query": f"chatbot_errors_total > 0 # {name}",
        "health": "ok",
        "last_error": "",
        "last_evaluation": 1_714_564_800.0,
        "evaluation_time": 0.0004,
        "labels": {"severity": "page"},
        "state": state,
        "annotations": {"summary": "errors on {{ $labels.route }}"},
        "alerts": alerts,
    }
    return RuleView(**{**fields, **extra})


def alert(route: str, state: str = "firing") -> AlertView:
    return AlertView(
        {"alertname": "ChatbotErrors", "route": route, "severity": "page"},
        {"summary": f"errors on {route}"},
        state,  # type: ignore[arg-type]
        3.0,
        1_714_564_680.0,
    )


def with_rules(handlers: Handlers, *rules: RuleView) -> Handlers:
    group = GroupView("chatbot", "rules/chatbot.yml", 1.0, 0, 1_714_564_800.0, 0.001, list(rules))
    handlers.groups_view = [group]  # type: ignore[attr-defined]
    return handlers


@pytest.mark.parametrize("path", PAGES)
async def test_each_page_is_html_with_a_content_security_policy(path: str) -> None:
    async with client_of(Handlers()) as client:
        r = await client.get(path)
        head = await client.head(path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in r.text, "no inline script: the CSP would block it"
    assert ' style="' not in r.text, "no inline style: the CSP would block it"
    assert 'href="/alerts"' in r.text and 'href="/graph"' in r.text
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(r.content))


@pytest.mark.parametrize("path", [*PAGES, "/static/chatwatch.css"])
async def test_pages_need_the_same_basic_auth_as_metrics(path: str) -> None:
    cfg = ServerConfig(
        listen="127.0.0.1:0",
        basic_auth=BasicAuthConfig(username="ops", password="s3cret"),  # type: ignore[arg-type]
    )
    async with client_of(Handlers(), cfg) as client:
        anonymous = await client.get(path)
        metrics = await client.get("/metrics")
        wrong = await client.get(path, auth=("ops", "nope"))
        right = await client.get(path, auth=("ops", "s3cret"))
    assert anonymous.status_code == metrics.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic ")
    assert wrong.status_code == 401
    assert right.status_code == 200


async def test_static_files_carry_the_vendored_chart_library_and_its_licence() -> None:
    async with client_of(Handlers()) as client:
        uplot = await client.get("/static/uPlot.iife.min.js")
        licence = await client.get("/static/uPlot.LICENSE")
        css = await client.get("/static/chatwatch.css")
        missing = await client.get("/static/nothing.js")
    assert uplot.status_code == 200
    assert uplot.headers["content-type"] == "text/javascript; charset=utf-8"
    assert uplot.text.startswith("/*! https://github.com/leeoniya/uPlot")
    assert "MIT License" in licence.text
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert missing.status_code == 404


async def test_alerts_page_lists_rules_by_state_with_their_alerts() -> None:
    handlers = with_rules(
        Handlers(),
        rule("ChatbotErrors", "firing", [alert("/api/chat"), alert("/api/login", "pending")]),
        rule("ChatbotSilent", "inactive", []),
    )
    async with client_of(handlers) as client:
        r = await client.get("/alerts")
    text = r.text
    assert r.status_code == 200
    assert "ChatbotErrors" in text and "ChatbotSilent" in text
    assert text.count('class="alert alert-firing"') == 1
    assert text.count('class="alert alert-pending"') == 1
    assert "errors on /api/chat" in text
    assert "(2 active" in text


async def test_alerts_filter_by_label_and_by_state() -> None:
    handlers = with_rules(
        Handlers(),
        rule("ChatbotErrors", "firing", [alert("/api/chat"), alert("/api/login")]),
        rule("ChatbotSilent", "inactive", []),
    )
    async with client_of(handlers) as client:
        chat = await client.get("/alerts", params={"filter": 'route="/api/chat"'})
        regex = await client.get("/alerts", params={"filter": "{route=~'/api/l.*'}"})
        firing = await client.get("/alerts", params={"state": "firing"})
        bad = await client.get("/alerts", params={"filter": "route=~'('"})
    assert "errors on /api/chat" in chat.text and "errors on /api/login" not in chat.text
    assert "1 not matching the filter" in chat.text
    assert "ChatbotSilent" not in chat.text, "a filter hides rules without a matching alert"
    assert "errors on /api/login" in regex.text and "errors on /api/chat" not in regex.text
    assert "ChatbotErrors" in firing.text and "ChatbotSilent" not in firing.text
    assert bad.status_code == 200
    assert 'id="filter-error"' in bad.text and "not a regular expression" in bad.text


async def test_a_rule_with_many_alerts_shows_some_and_links_to_all() -> None:
    many = [alert(f"/r{i:03d}") for i in range(120)]
    handlers = with_rules(
        Handlers(), rule("ChatbotErrors", "firing", many), rule("ChatbotSilent", "inactive", [])
    )
    async with client_of(handlers) as client:
        page = await client.get("/alerts")
        only = await client.get("/alerts", params={"filter": 'alertname="ChatbotErrors"'})
    assert page.text.count('class="alert alert-firing"') == 50
    assert "70 more alerts of ChatbotErrors" in page.text
    assert "/alerts?filter=alertname%3D%22ChatbotErrors%22" in page.text
    assert only.text.count('class="alert alert-firing"') == 120


async def test_labels_and_annotations_from_logs_are_escaped() -> None:
    handlers = with_rules(
        Handlers(), rule("ChatbotErrors", "firing", [alert(XSS_IMG), alert(XSS_SCRIPT)])
    )
    handlers.samples.add(key("chatbot_errors_total", route=XSS_IMG), time.time(), 1.0)
    handlers.samples.add(key("chatbot_errors_total", route=XSS_SCRIPT), time.time(), 2.0)
    async with client_of(handlers) as client:
        alerts = (await client.get("/alerts")).text
        graph = (await client.get("/graph", params={"g0.expr": "chatbot_errors_total"})).text
    for text in (alerts, graph):
        assert XSS_IMG not in text and "<script>document" not in text
        assert "<img" not in text
    assert html.escape(XSS_IMG, quote=False) in alerts
    assert "&lt;img src=x onerror=alert(1)&gt;" in graph, "the values table shows it as text"
    data = re.search(r'<script type="application/json" id="graph-data">(.*?)</script>', graph, re.S)
    assert data is not None
    assert "<" not in data.group(1), "the chart's JSON cannot close its script element"


async def test_rules_page_shows_health_last_error_and_timing() -> None:
    handlers = with_rules(
        Handlers(),
        rule("ChatbotErrors", "firing", [alert("/api/chat")]),
        rule(
            "ChatbotBroken",
            "inactive",
            [],
            health="err",
            last_error="found duplicate series for the match group",
        ),
        RuleView(
            name="route:errors:rate5m",
            kind="recording",
            query="sum by (route) (rate(chatbot_errors_total[5m]))",
            health="unknown",
            last_error="",
            last_evaluation=None,
            evaluation_time=0.0,
            labels={},
        ),
    )
    async with client_of(handlers) as client:
        r = await client.get("/rules")
    assert "3 rules in 1 group," in r.text and "1 failing" in r.text
    assert "found duplicate series for the match group" in r.text
    assert "route:errors:rate5m" in r.text and "record:" in r.text
    assert "never" in r.text, "a rule not evaluated yet"
    assert "/graph?g0.expr=sum+by+%28route%29" in r.text, "each expression links to its graph"


async def test_graph_evaluates_the_expression_over_the_history() -> None:
    handlers = Handlers()
    now = time.time()
    for i in range(120):
        t = now - 119 + i
        handlers.samples.append(
            t,
            [
                (key("chatbot_requests_total", route="/a"), 2.0 * i),
                (key("chatbot_requests_total", route="/b"), 1.0 * i),
            ],
        )
    async with client_of(handlers) as client:
        r = await client.get(
            "/graph",
            params={"g0.expr": "sum by (route) (rate(chatbot_requests_total[1m]))", "g0.tab": "1"},
        )
    assert r.status_code == 200
    assert "2 series" in r.text
    values = re.findall(r'<td class="num" title="([^"]+)">', r.text)
    assert [float(v) for v in values] == [2.0, 1.0]
    assert '<script src="/static/uPlot.iife.min.js"></script>' in r.text


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("sum(rate(x[5m]", "unclosed left parenthesis"),
        ("rate(x)", "expected type matrix in call to function 'rate', got vector"),
    ],
)
async def test_graph_shows_a_clear_error_for_a_bad_expression(expr: str, message: str) -> None:
    async with client_of(Handlers()) as client:
        r = await client.get("/graph", params={"g0.expr": expr})
    assert r.status_code == 400
    error = re.search(r'<div class="error" id="query-error">(.*?)</div>', r.text, re.S)
    assert error is not None
    assert message in html.unescape(error.group(1))
    assert 'id="chart"' not in r.text


async def test_graph_rejects_a_bad_range() -> None:
    async with client_of(Handlers()) as client:
        r = await client.get("/graph", params={"g0.expr": "up", "g0.range_input": "soon"})
    assert r.status_code == 400
    assert "g0.range_input" in r.text


async def test_config_page_shows_what_the_handlers_give() -> None:
    handlers = Handlers()
    handlers.config_view = RunningConfig(  # type: ignore[attr-defined]
        "/etc/chatwatch/chatwatch.yaml",
        "server:\n  basic_auth:\n    password: <secret>\n",
        [("/etc/chatwatch/rules.yml", "groups: []\n")],
    )
    async with client_of(handlers) as client:
        r = await client.get("/config")
    assert "password: &lt;secret&gt;" in r.text
    assert "/etc/chatwatch/rules.yml" in r.text


async def test_a_page_that_fails_answers_500_and_the_server_keeps_serving() -> None:
    handlers = Handlers()

    def broken() -> list[GroupView]:
        raise RuntimeError("rules are broken")

    handlers.rule_groups = broken  # type: ignore[method-assign]
    async with client_of(handlers) as client:
        failed = await client.get("/rules")
        after = await client.get("/config")
    assert failed.status_code == 500
    assert "RuntimeError: rules are broken" in failed.text
    assert after.status_code == 200


# -- /silences ------------------------------------------------------------------------------

ADMIN = ServerConfig(listen="127.0.0.1:0", enable_admin_api=True)


def silence(comment: str, *matchers: tuple[str, str], hours: float = 1.0) -> dict[str, Any]:
    now = time.time()
    return {
        "matchers": [
            {"name": n, "value": v, "isRegex": False, "isEqual": True} for n, v in matchers
        ],
        "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + hours * 3600)),
        "createdBy": "oncall",
        "comment": comment,
    }


async def test_silences_page_lists_silences_by_state_with_their_matchers(tmp_path: Path) -> None:
    async with client_of(Handlers(state_dir=tmp_path), ADMIN) as client:
        kept = await client.post(
            "/api/v2/silences", json=silence("provider outage", ("alertname", "LLMDown"))
        )
        gone = await client.post(
            "/api/v2/silences", json=silence("deploy", ("route", "/api/chat"), ("env", "prod"))
        )
        await client.delete(f"/api/v2/silence/{gone.json()['silenceID']}")
        r = await client.get("/silences")
    kept_id = kept.json()["silenceID"]
    assert r.status_code == 200
    rows = re.findall(r'<tr class="silence silence-(\w+)[^"]*" id="silence-([^"]+)"', r.text)
    assert rows == [("active", kept_id), ("expired", gone.json()["silenceID"])]
    assert '<span class="lname">alertname</span>=<span class="lvalue">LLMDown</span>' in r.text
    assert '<span class="lname">env</span>=<span class="lvalue">prod</span>' in r.text
    assert "provider outage" in r.text and "oncall" in r.text
    assert r.text.count('class="secondary expire"') == 1, "only the active one can be expired"
    assert 'id="silence-form"' in r.text and '<script src="/static/silences.js">' in r.text


async def test_silences_page_says_writes_are_off_and_shows_no_form(tmp_path: Path) -> None:
    handlers = Handlers(state_dir=tmp_path)
    body = orjson.dumps(silence("provider outage", ("alertname", "LLMDown")))
    handlers.alertmanager_api.post_silence(body, time.time())  # by amtool, say, before
    async with client_of(handlers) as client:
        r = await client.get("/silences")
        script = await client.get("/static/silences.js")
    assert r.status_code == 200
    notice = re.search(r'<p class="notice" id="writes-off">(.*?)</p>', r.text, re.S)
    assert notice is not None
    assert "server.enable_admin_api: true" in notice.group(1)
    assert "server.basic_auth" in notice.group(1)
    assert "provider outage" in r.text, "the list is still shown"
    assert "<form" not in r.text and "<button" not in r.text
    assert "silences.js" not in r.text
    assert script.status_code == 200, "served all the same; the page just does not load it"


async def test_silences_page_with_basic_auth_shows_the_form() -> None:
    cfg = ServerConfig(
        listen="127.0.0.1:0",
        basic_auth=BasicAuthConfig(username="ops", password="s3cret"),  # type: ignore[arg-type]
    )
    async with client_of(Handlers(), cfg, auth=("ops", "s3cret")) as client:
        r = await client.get("/silences")
    assert 'id="silence-form"' in r.text and 'id="writes-off"' not in r.text


async def test_silence_form_is_prefilled_from_the_filter_in_the_link() -> None:
    link = '{alertname="ChatbotErrors", route="/api/\\"chat\\"", severity="page"}'
    async with client_of(Handlers(), ADMIN) as client:
        r = await client.get("/silences", params={"filter": link})
        bad = await client.get("/silences", params={"filter": "route=~'('"})
    names = re.findall(r'<input class="m-name"[^>]* value="([^"]*)"', r.text)
    values = re.findall(r'<input class="m-value"[^>]* value="([^"]*)"', r.text)
    assert names == ["alertname", "route", "severity", ""], "the matchers, and one empty row"
    assert [html.unescape(v) for v in values] == ["ChatbotErrors", '/api/"chat"', "page", ""]
    assert 'id="filter-error"' in bad.text and "not a regular expression" in bad.text


async def test_xss_in_a_silence_comment_and_matcher_renders_as_text(tmp_path: Path) -> None:
    handlers = Handlers(state_dir=tmp_path)
    async with client_of(handlers, ADMIN) as client:
        posted = await client.post("/api/v2/silences", json=silence(XSS_SCRIPT, ("route", XSS_IMG)))
        r = await client.get("/silences")
        prefilled = await client.get("/silences", params={"filter": f'route="{XSS_IMG}"'})
    assert posted.status_code == 200, posted.text
    for text in (r.text, prefilled.text):
        assert "<img" not in text and "<script>document" not in text
    assert html.escape(XSS_SCRIPT, quote=False).replace('"', "&#34;") in r.text
    assert html.escape(XSS_IMG, quote=False) in r.text
    assert 'value="&lt;img src=x onerror=alert(1)&gt;"' in prefilled.text


ROUTED = AlertingConfig.model_validate(
    yaml.safe_load("route: {receiver: team}\nreceivers: [{name: team}]\n")
)


async def test_alerts_page_marks_silenced_alerts_and_links_each_to_a_silence(
    tmp_path: Path,
) -> None:
    handlers = with_rules(
        Handlers(state_dir=tmp_path, alerting=ROUTED),
        rule("ChatbotErrors", "firing", [alert("/api/chat"), alert("/api/login")]),
    )
    now = time.time()
    labels = {"route": "/api/chat", "severity": "page"}
    handlers.notifier.send(
        [
            fire("ChatbotErrors", now - 60, **labels),
            fire("ChatbotErrors", now - 60, route="/api/login", severity="page"),
        ],
        now,
    )
    async with client_of(handlers, ADMIN) as client:
        before = await client.get("/alerts")
        posted = await client.post(
            "/api/v2/silences", json=silence("known", ("route", "/api/chat"))
        )
        after = await client.get("/alerts")
    silence_id = posted.json()["silenceID"]
    assert "badge mute silenced" not in before.text
    rows = re.findall(r'<tr class="alert alert-firing">(.*?)</tr>', after.text, re.S)
    assert len(rows) == 2
    chat = next(row for row in rows if "/api/chat" in row)
    login = next(row for row in rows if "/api/login" in row)
    assert f'title="silenced by {silence_id}">silenced</a>' in chat
    assert "silenced" not in login.replace("Silence<", "")
    link = re.search(r'<a class="silence-link" href="([^"]+)">Silence</a>', chat)
    assert link is not None
    assert html.unescape(link.group(1)) == (
        "/silences?filter=%7Balertname%3D%22ChatbotErrors%22%2C+route%3D%22%2Fapi%2Fchat%22"
        "%2C+severity%3D%22page%22%7D#new"
    )


async def test_alerts_page_marks_inhibited_alerts(tmp_path: Path) -> None:
    alerting = AlertingConfig.model_validate(
        yaml.safe_load("""
route: {receiver: team}
receivers: [{name: team}]
inhibit_rules:
  - {source_matchers: ['alertname="ChatbotDown"'], target_matchers: ['severity="page"']}
""")
    )
    handlers = with_rules(
        Handlers(state_dir=tmp_path, alerting=alerting),
        rule("ChatbotErrors", "firing", [alert("/api/chat")]),
    )
    now = time.time()
    handlers.notifier.send(
        [
            fire("ChatbotErrors", now - 60, route="/api/chat", severity="page"),
            fire("ChatbotDown", now - 60, severity="critical"),
        ],
        now,
    )
    async with client_of(handlers) as client:
        r = await client.get("/alerts")
    row = re.search(r'<tr class="alert alert-firing">(.*?)</tr>', r.text, re.S)
    assert row is not None
    assert re.search(r'<span class="badge mute inhibited" title="inhibited by \w+">', row.group(1))
    assert "badge mute silenced" not in row.group(1)
