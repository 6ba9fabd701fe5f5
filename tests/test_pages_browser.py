"""The web pages in a real browser (headless Chromium through Selenium) on a real agent.

One `chatwatch run` reads a log in which one route answers 5xx, two route names are XSS
payloads, and a queue is too long: `ChatbotErrors` fires (one alert per route),
`QueueTooLong` is pending, `ChatbotSilent` is inactive and `BrokenRule` fails to
evaluate. Notifications go to a local webhook. Each test loads a page and checks what a
user sees; a screenshot of each page is saved under test-artifacts/pages/. Silences are
created and expired on a second agent, one that allows writes (`enable_admin_api`).

Debian's `chromium` and `chromium-driver` (.ci/run installs them); the driver is named
explicitly so Selenium Manager never tries to download one.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.notify_support import HookServer
from tests.realservers import Chatwatch, free_port, require, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "pages"
XSS_IMG = "<img src=x onerror=alert(1)>"
XSS_SCRIPT = '"><script>window.__xss = 1</script>'
ERRORS_EXPR = 'sum by (route) (chatbot_requests_total{status="500"}) > 0'

RULES = f"""
groups:
  - name: chatbot
    rules:
      - alert: ChatbotErrors
        expr: '{ERRORS_EXPR}'
        labels: {{severity: page}}
        annotations:
          summary: "5xx answers on {{{{ $labels.route }}}}"
          description: "{{{{ $value }}}} requests answered 5xx since the agent started."
      - alert: QueueTooLong
        expr: chatbot_queue_length > 10
        for: 1h
        labels: {{severity: warning}}
        annotations: {{summary: "queue is {{{{ $value }}}} long"}}
      - alert: ChatbotSilent
        expr: absent(chatbot_requests_total)
        for: 2m
      - alert: BrokenRule
        expr: chatbot_requests_total * on (route) chatbot_requests_total
"""


@pytest.fixture(scope="module")
def hook() -> Iterator[HookServer]:
    server = HookServer().start()
    yield server
    server.stop()


def start_agent(tmp: Path, hook: HookServer | None, admin: bool = False) -> tuple[Chatwatch, Path]:
    """`chatwatch run` on an empty log with RULES; notifications go to `hook`; with `admin`
    writes (silences) are allowed without auth (`enable_admin_api: true`)."""
    log = tmp / "chatbot.log"
    log.touch()
    (tmp / "rules.yml").write_text(RULES)
    port = free_port()
    alerting = ""
    if hook is not None:
        alerting = f"""
alerting:
  route: {{receiver: hook, group_by: [alertname], group_wait: 0s, group_interval: 100ms}}
  receivers: [{{name: hook, webhook_configs: [{{url: "{hook.url}"}}]}}]
"""
    admin_api = ", enable_admin_api: true" if admin else ""
    config = tmp / "chatwatch.yaml"
    config.write_text(f"""
sources: [{{name: chatbot, paths: ["{log}"], format: json}}]
state_dir: {tmp / "state"}
server: {{listen: "127.0.0.1:{port}", external_url: "http://127.0.0.1:{port}"{admin_api}}}
metrics:
  - name: chatbot_requests_total
    type: counter
    match: {{event: request}}
    labels: {{route: route, status: status}}
  - {{name: chatbot_queue_length, type: gauge, match: {{event: queue}}, value: length}}
rule_files: ["rules.yml"]
evaluation_interval: 500ms
{alerting}""")
    return Chatwatch(config, port, tmp).start(), log


def write(log: Path, events: list[dict[str, Any]]) -> None:
    with log.open("a") as f:
        f.writelines(json.dumps(e) + "\n" for e in events)


def request(route: str, status: str) -> dict[str, Any]:
    return {"event": "request", "route": route, "status": status}


def wait_for_alerts(cw: Chatwatch, expected: list[tuple[str, str]]) -> None:
    """Until the alerts of the rules named in `expected` are those (alertname, state)."""
    names = {name for name, _ in expected}

    def settled() -> bool:
        alerts = httpx.get(f"{cw.url}/api/v1/alerts", timeout=2).json()["data"]["alerts"]
        states = [(a["labels"]["alertname"], a["state"]) for a in alerts]
        return sorted(s for s in states if s[0] in names) == expected

    wait_until(settled, timeout=30, what=f"alerts {expected}")


LINES = 95
"""Lines the `agent` fixture writes."""


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory, hook: HookServer) -> Iterator[Chatwatch]:
    """The chatbot's log over a few evaluations: /api/chat answers 5xx more and more,
    /api/login now and then, and the queue grows past its threshold."""
    cw, log = start_agent(tmp_path_factory.mktemp("pages"), hook)
    try:
        for i in range(8):
            # /api/chat answers both 200 and 500 from the first line on: BrokenRule's
            # `on (route)` finds duplicates in its first evaluation, so it never fires
            events = [request("/api/chat", "200")] * 4 + [request("/api/chat", "500")] * (i + 1)
            events += [request("/api/login", "200")] * 2
            if i % 3 == 1:
                events.append(request("/api/login", "500"))
            events.append({"event": "queue", "length": 5 * i + 7})
            write(log, events)
            cw.wait_evaluated(time.time())  # the next round lands in a later evaluation
        wait_until(
            lambda: cw.sample("chatwatch_lines_read_total", source="chatbot") == LINES,
            what=f"all {LINES} lines read",
        )
        cw.wait_evaluated(time.time())  # and evaluated: the pages show the last values
        wait_for_alerts(cw, [("ChatbotErrors", "firing")] * 2 + [("QueueTooLong", "pending")])
        yield cw
    finally:
        cw.stop()


@pytest.fixture
def xss_agent(tmp_path: Path) -> Iterator[Chatwatch]:
    """Two route names in the log are XSS payloads; both routes answer 5xx."""
    cw, log = start_agent(tmp_path, None)
    try:
        write(log, [request(XSS_IMG, "500"), request(XSS_SCRIPT, "500")])
        wait_for_alerts(cw, [("ChatbotErrors", "firing")] * 2)
        yield cw
    finally:
        cw.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = require("chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",  # tests run as root in CI
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,900",
        "--lang=en-US",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=require("chromedriver"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def load(browser: webdriver.Chrome, url: str) -> None:
    browser.get(url)
    WebDriverWait(browser, 20).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def screenshot(browser: webdriver.Chrome, name: str) -> Path:
    """The whole page (not only the window) as a PNG under test-artifacts/pages/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    path = ARTIFACTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def texts(browser: webdriver.Chrome, css: str) -> list[str]:
    return [e.text for e in browser.find_elements(By.CSS_SELECTOR, css)]


def csp_violations(browser: webdriver.Chrome) -> list[str]:
    return [
        entry["message"]
        for entry in browser.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]
    ]


def test_overview_shows_health_sources_and_alert_counts(
    agent: Chatwatch, browser: webdriver.Chrome
) -> None:
    load(browser, agent.url + "/")
    assert browser.title == "Overview · chatwatch"
    health = browser.find_element(By.ID, "health").text
    assert "ready" in health and "0.1.0" in health
    counts = browser.find_element(By.ID, "alert-counts").text
    assert "2 firing" in counts.replace("\n", " ")
    assert "1 pending" in counts.replace("\n", " ")
    assert "1 rule fails to evaluate" in counts
    source = browser.find_element(By.ID, "source-1").text
    assert "chatbot" in source and "chatbot.log" in source
    assert f"{LINES} lines read" in source
    assert "decode errors:\nnone" in source or "decode errors: none" in source
    screenshot(browser, "overview")
    assert csp_violations(browser) == []


def test_alertmanager_style_links_land_on_the_matching_page(
    agent: Chatwatch, browser: webdriver.Chrome
) -> None:
    """Alertmanager's default templates link to `<external URL>/#/alerts?receiver=...`
    (its UI); the fragment never reaches the server, so the overview sends it on."""
    load(browser, agent.url + "/#/alerts?receiver=team%5C.llm")
    WebDriverWait(browser, 10).until(lambda d: urlsplit(d.current_url).path == "/alerts")
    assert browser.title == "Alerts · chatwatch"
    load(browser, agent.url + "/#/silences/new")
    WebDriverWait(browser, 10).until(lambda d: urlsplit(d.current_url).path == "/silences")
    load(browser, agent.url + "/")
    assert urlsplit(browser.current_url).path == "/"
    assert csp_violations(browser) == []


def test_alerts_page_shows_each_rule_state_and_the_alerts(
    agent: Chatwatch, browser: webdriver.Chrome
) -> None:
    load(browser, agent.url + "/alerts")
    rules = {
        d.get_attribute("data-rule"): d.get_attribute("class")
        for d in browser.find_elements(By.CSS_SELECTOR, "details.rule")
    }
    assert rules == {
        "ChatbotErrors": "rule rule-firing",
        "QueueTooLong": "rule rule-pending",
        "ChatbotSilent": "rule rule-inactive",
        "BrokenRule": "rule rule-inactive",
    }
    summaries = texts(browser, "tr.alert .summary")
    assert summaries == [
        "5xx answers on /api/chat",
        "5xx answers on /api/login",
        "queue is 42 long",
    ]
    assert texts(browser, "tr.alert-pending .badge") == ["pending"]
    screenshot(browser, "alerts")

    box = browser.find_element(By.ID, "filter")
    box.clear()
    box.send_keys('route="/api/chat"')
    box.submit()
    WebDriverWait(browser, 10).until(ec.url_contains("filter="))
    assert texts(browser, "tr.alert .summary") == ["5xx answers on /api/chat"]
    assert csp_violations(browser) == []


def test_xss_payloads_in_labels_render_as_text_and_run_nothing(
    xss_agent: Chatwatch, browser: webdriver.Chrome
) -> None:
    agent = xss_agent
    pages = [
        "/alerts",
        "/graph?g0.expr=chatbot_requests_total",
        "/graph?g0.expr=" + quote(ERRORS_EXPR),
    ]
    for page in pages:
        load(browser, agent.url + page)
        values = texts(browser, ".label .lvalue")
        assert XSS_IMG in values, page
        assert XSS_SCRIPT in values, page
        assert browser.find_elements(By.CSS_SELECTOR, 'img[src="x"]') == [], page
        for script in browser.find_elements(By.TAG_NAME, "script"):
            src, kind = script.get_attribute("src"), script.get_attribute("type")
            assert (src and "/static/" in src) or kind == "application/json", (page, src)
        assert browser.execute_script("return window.__xss === undefined"), page
        with pytest.raises(NoAlertPresentException):
            _ = browser.switch_to.alert.text
    load(browser, agent.url + "/alerts")
    summaries = texts(browser, "tr.alert .summary")
    assert f"5xx answers on {XSS_IMG}" in summaries
    assert f"5xx answers on {XSS_SCRIPT}" in summaries
    screenshot(browser, "alerts-xss")


def test_rules_page_shows_health_and_the_last_error(
    agent: Chatwatch, browser: webdriver.Chrome
) -> None:
    load(browser, agent.url + "/rules")
    rows = {
        r.find_element(By.CSS_SELECTOR, ".rule-name").text: r
        for r in browser.find_elements(By.CSS_SELECTOR, "tr.rule-row")
    }
    assert set(rows) == {"ChatbotErrors", "QueueTooLong", "ChatbotSilent", "BrokenRule"}
    assert "ok" in rows["ChatbotErrors"].find_element(By.CSS_SELECTOR, ".badge.health-ok").text
    broken = rows["BrokenRule"]
    assert broken.find_element(By.CSS_SELECTOR, ".badge.health-err").text == "err"
    assert "duplicate series" in broken.find_element(By.CSS_SELECTOR, ".rule-error").text
    screenshot(browser, "rules")


def test_config_page_shows_the_config_without_the_webhook_url(
    agent: Chatwatch, browser: webdriver.Chrome, hook: HookServer
) -> None:
    load(browser, agent.url + "/config")
    shown = browser.find_element(By.ID, "running-config").text
    assert "chatbot_requests_total" in shown
    assert hook.url not in browser.page_source
    assert "url: <secret>" in shown
    assert "ChatbotErrors" in " ".join(texts(browser, "pre.rule-file"))
    screenshot(browser, "config")


def test_generator_url_of_a_notification_lands_on_a_graph_with_points(
    agent: Chatwatch, browser: webdriver.Chrome, hook: HookServer, tmp_path: Path
) -> None:
    def firing_link() -> str | None:
        for body in hook.bodies():
            for a in body["alerts"]:
                if a["labels"]["alertname"] == "ChatbotErrors" and a["status"] == "firing":
                    return str(a["generatorURL"])
        return None

    link = wait_until(firing_link, timeout=20, what="a ChatbotErrors notification")
    assert link.startswith(agent.url + "/graph?")
    assert parse_qs(urlsplit(link).query)["g0.expr"] == [ERRORS_EXPR]
    # Follow it as a user does: a click on the link in the message.
    message = tmp_path / "notification.html"
    message.write_text(f'<p>ChatbotErrors is firing. <a id="source" href="{link}">Source</a></p>')
    load(browser, message.as_uri())
    browser.find_element(By.ID, "source").click()
    WebDriverWait(browser, 20).until(ec.url_contains("/graph?"))
    chart = WebDriverWait(browser, 20).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "#chart.drawn"))
    )
    assert browser.find_element(By.ID, "expr").get_attribute("value") == ERRORS_EXPR
    assert int(chart.get_attribute("data-series") or 0) == 2
    assert int(chart.get_attribute("data-points") or 0) >= 4, "points of both series"
    assert chart.find_elements(By.TAG_NAME, "canvas"), "uPlot drew on a canvas"
    table = browser.find_element(By.ID, "values").text
    assert "/api/chat" in table and "/api/login" in table
    screenshot(browser, "graph")
    assert csp_violations(browser) == []


def test_graph_with_a_bad_expression_says_what_is_wrong(
    agent: Chatwatch, browser: webdriver.Chrome
) -> None:
    load(browser, agent.url + "/graph")
    box = browser.find_element(By.ID, "expr")
    box.send_keys("sum(rate(chatbot_requests_total[5m])")
    browser.find_element(By.CSS_SELECTOR, "form.query button[type=submit]").click()
    error = WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.ID, "query-error")))
    assert "unclosed left parenthesis" in error.text
    assert browser.find_elements(By.ID, "chart") == []
    screenshot(browser, "graph-error")


@pytest.fixture
def admin_agent(tmp_path: Path) -> Iterator[Chatwatch]:
    """An agent that allows writes, with ChatbotErrors firing for /api/chat and routed to
    a webhook of its own (the module's hook stays the first agent's)."""
    hook = HookServer().start()
    cw, log = start_agent(tmp_path, hook, admin=True)
    try:
        write(log, [request("/api/chat", "500")])
        wait_for_alerts(cw, [("ChatbotErrors", "firing")])
        wait_until(
            lambda: httpx.get(f"{cw.url}/api/v2/alerts", timeout=2).json(),
            what="the alert in the notifier",
        )
        yield cw
    finally:
        cw.stop()
        hook.stop()


def alert_row(browser: webdriver.Chrome, route: str) -> Any:
    for row in browser.find_elements(
        By.CSS_SELECTOR, 'details[data-rule="ChatbotErrors"] tr.alert'
    ):
        if route in row.find_element(By.CSS_SELECTOR, ".labels").text:
            return row
    raise AssertionError(f"no ChatbotErrors alert for {route}")


def test_silence_an_alert_from_its_link_then_expire_it(
    admin_agent: Chatwatch, browser: webdriver.Chrome
) -> None:
    agent = admin_agent
    load(browser, agent.url + "/alerts")
    row = alert_row(browser, "/api/chat")
    assert row.find_elements(By.CSS_SELECTOR, ".badge.silenced") == []
    row.find_element(By.CSS_SELECTOR, "a.silence-link").click()
    WebDriverWait(browser, 20).until(ec.url_contains("/silences?filter="))
    names = [e.get_attribute("value") for e in browser.find_elements(By.CSS_SELECTOR, ".m-name")]
    values = [e.get_attribute("value") for e in browser.find_elements(By.CSS_SELECTOR, ".m-value")]
    assert names == ["alertname", "route", "severity", ""]
    assert values == ["ChatbotErrors", "/api/chat", "page", ""]

    browser.find_element(By.ID, "created-by").send_keys("oncall")
    browser.find_element(By.ID, "comment").send_keys(f"provider outage {XSS_IMG}")
    browser.find_element(By.ID, "create-silence").click()
    created = WebDriverWait(browser, 20).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "tr.silence.created"))
    )
    silence_id = created.get_attribute("data-id")
    assert "silence-active" in (created.get_attribute("class") or "")
    assert created.find_element(By.CSS_SELECTOR, ".silence-state").text == "active"
    matchers = texts(browser, "tr.silence.created .matcher")
    assert matchers == ["alertname=ChatbotErrors", "route=/api/chat", "severity=page"]
    assert created.find_element(By.CSS_SELECTOR, ".comment").text == f"provider outage {XSS_IMG}"
    assert created.find_element(By.CSS_SELECTOR, ".created-by").text == "oncall"
    assert browser.find_elements(By.CSS_SELECTOR, 'img[src="x"]') == []
    api = httpx.get(f"{agent.url}/api/v2/silence/{silence_id}", timeout=5).json()
    assert api["status"]["state"] == "active" and api["createdBy"] == "oncall"
    screenshot(browser, "silences")
    assert csp_violations(browser) == []

    load(browser, agent.url + "/alerts")
    mark = alert_row(browser, "/api/chat").find_element(By.CSS_SELECTOR, ".badge.silenced")
    assert mark.text == "silenced"
    assert mark.get_attribute("title") == f"silenced by {silence_id}"
    screenshot(browser, "alerts-silenced")

    load(browser, agent.url + "/silences")
    browser.find_element(By.CSS_SELECTOR, f'button.expire[data-id="{silence_id}"]').click()
    WebDriverWait(browser, 20).until(
        ec.presence_of_element_located(
            (By.CSS_SELECTOR, f'tr.silence-expired[data-id="{silence_id}"]')
        )
    )
    assert browser.find_elements(By.CSS_SELECTOR, "button.expire") == []
    assert browser.find_element(By.ID, "expire-error").is_displayed() is False
    load(browser, agent.url + "/alerts")
    assert alert_row(browser, "/api/chat").find_elements(By.CSS_SELECTOR, ".badge.silenced") == []
    assert csp_violations(browser) == []


def test_silences_page_without_write_access_says_so_and_has_no_form(
    agent: Chatwatch, browser: webdriver.Chrome
) -> None:
    load(browser, agent.url + "/silences")
    assert browser.title == "Silences · chatwatch"
    notice = browser.find_element(By.ID, "writes-off")
    assert notice.is_displayed()
    assert "server.enable_admin_api: true" in notice.text
    assert browser.find_elements(By.ID, "silence-form") == []
    assert browser.find_elements(By.TAG_NAME, "button") == []
    nav = texts(browser, ".topbar nav a")
    assert nav == ["Overview", "Alerts", "Rules", "Graph", "Silences", "Config"]
    screenshot(browser, "silences-read-only")
