"""What the agent hands the pages: the redacted config, range queries, source activity."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from agent.alerting.history import History
from agent.alerting.promql.engine import compile_expr, evaluate
from agent.alerting.query import MAX_STEPS, query_range
from agent.config import load
from agent.decode.events import Origin
from agent.status import SourceActivity, running_config
from agent.support.selfmetrics import SelfMetrics

SECRETS = {
    "slack": "https://hooks.slack.com/services/T000/B000/XXXXSLACKTOKEN",
    "hook": "https://hooks.example.com/chatwatch?token=HOOKTOKEN",
    "signing": "SIGNINGSECRET",
    "header": "Bearer HEADERTOKEN",
    "smtp": "SMTPPASSWORD",
    "server": "SERVERPASSWORD",
    "am": "AMPASSWORD",
}


def test_running_config_redacts_every_secret(tmp_path: Path) -> None:
    (tmp_path / "slack-url").write_text(SECRETS["slack"] + "\n")
    (tmp_path / "rules.yml").write_text("groups: []\n")
    config = tmp_path / "chatwatch.yaml"
    config.write_text(f"""
sources: [{{name: chatbot, paths: ["chatbot.log"]}}]
rule_files: ["rules.yml"]
server:
  listen: "127.0.0.1:9317"
  basic_auth: {{username: ops, password: {SECRETS["server"]}}}
alerting:
  route: {{receiver: team}}
  alertmanagers: [{{url: "http://chatwatch:{SECRETS["am"]}@alertmanager:9093"}}]
  receivers:
    - name: team
      slack_configs: [{{api_url_file: slack-url}}]
      webhook_configs:
        - url: "{SECRETS["hook"]}"
          signing_secret: {SECRETS["signing"]}
          headers: {{Authorization: "{SECRETS["header"]}"}}
      email_configs:
        - {{to: a@example.com, from: b@example.com, smarthost: "smtp:587",
            auth_username: b, auth_password: {SECRETS["smtp"]}}}
""")
    shown = running_config(load(config), str(config))
    for name, secret in SECRETS.items():
        assert secret not in shown.yaml, f"the {name} secret is shown"
    for token in ("XXXXSLACKTOKEN", "HOOKTOKEN", "HEADERTOKEN", "AMPASSWORD"):
        assert token not in shown.yaml
    assert shown.yaml.count("<secret>") == 7
    assert "http://chatwatch:<secret>@alertmanager:9093" in shown.yaml
    assert "Authorization: <secret>" in shown.yaml
    assert "from: b@example.com" in shown.yaml, "keys are spelled as in the file"
    assert "evaluation_interval: 1s" in shown.yaml, "defaults are filled in"
    assert shown.rule_files == [(str(tmp_path / "rules.yml"), "groups: []\n")]
    assert shown.path == str(config.resolve())


def series(name: str, **labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"__name__": name, **labels}.items()))


@pytest.fixture
def history() -> History:
    h = History(retention=3600)
    for i in range(600):  # 10 minutes, one snapshot a second; /b stops after 5 minutes
        snapshot = [(series("requests_total", route="/a"), 3.0 * i)]
        if i < 300:
            snapshot.append((series("requests_total", route="/b"), 1.0 * i))
        h.append(1000.0 + i, snapshot)
    return h


def test_query_range_is_the_instant_query_at_every_step(history: History) -> None:
    text = "sum by (route) (rate(requests_total[1m]))"
    kind, first, result = query_range(text, history, 1100.0, 1599.0, 7.0)
    assert kind == "vector"
    assert first == 1599.0 - 71 * 7.0, "steps count back from the end"
    expr = compile_expr(text)
    by_route = {labels["route"]: (times, values) for labels, times, values in result}
    assert set(by_route) == {"/a", "/b"}
    for route, (times, values) in by_route.items():
        for t, v in zip(times, values, strict=True):
            instant = evaluate(expr, history, t)
            assert isinstance(instant, list)
            (sample,) = [s for s in instant if s.labels["route"] == route]
            assert sample.value == v
    assert by_route["/a"][0][-1] == 1599.0
    assert by_route["/b"][0][-1] < 1300.0 + 300, "a series that went stale leaves the graph"
    assert math.isclose(by_route["/a"][1][-1], 3.0)


def test_query_range_of_a_scalar(history: History) -> None:
    kind, _, result = query_range("scalar(sum(requests_total)) / 2", history, 1500.0, 1510.0, 5.0)
    assert kind == "scalar"
    assert [(labels, times) for labels, times, _ in result] == [({}, [1500.0, 1505.0, 1510.0])]


def test_query_range_refuses_too_many_steps_and_bad_expressions(history: History) -> None:
    with pytest.raises(ValueError, match="too many"):
        query_range("requests_total", history, 0.0, float(MAX_STEPS), 1.0)
    with pytest.raises(ValueError, match="unclosed left parenthesis"):
        query_range("sum(requests_total", history, 1500.0, 1510.0, 5.0)
    with pytest.raises(ValueError, match="step"):
        query_range("requests_total", history, 1500.0, 1510.0, 0.0)


def test_source_activity_measures_lines_per_second_over_the_last_minute() -> None:
    stats = SelfMetrics()
    lines = stats.counter("chatwatch_lines_read_total", "Lines read.", ("source",))
    now = [1000.0]
    activity = SourceActivity(stats, clock=lambda: now[0])
    handed: list[int] = []
    sink = activity.sink("chatbot", lambda origin, events: handed.append(len(events)))
    origin = Origin("chatbot", "/var/log/chatbot.log")
    for _ in range(120):  # 20 lines a second for two minutes
        now[0] += 1.0
        lines.inc(("chatbot",), 20)
        sink(origin, [])
    assert len(handed) == 120, "every batch is handed on"
    assert activity.lines_per_second("chatbot", now[0]) == pytest.approx(20.0)
    assert activity.last_batch["chatbot"] == now[0]
    assert activity.last_file_batch[("chatbot", "/var/log/chatbot.log")] == now[0]
    now[0] += 90.0  # quiet since
    assert activity.lines_per_second("chatbot", now[0]) == 0.0
    assert activity.lines_per_second("other", now[0]) == 0.0
