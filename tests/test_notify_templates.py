"""Notification templates: Alertmanager's data, functions and default templates, the
messages built from them, and the checks made when the config loads.

What a real Alertmanager renders for the same config is compared in
test_notify_slack_templates_vs_alertmanager.py; here each piece is pinned on its own.
"""

from __future__ import annotations

import datetime
import email
import email.policy
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.config import ConfigError, loads
from agent.notify.config import AlertingConfig
from agent.notify.email.config import EmailConfig
from agent.notify.email.email import build_message as build_email
from agent.notify.email.email import envelope
from agent.notify.integration import DeliveryError
from agent.notify.notification import Notification, NotifiedAlert
from agent.notify.slack.config import SlackConfig
from agent.notify.slack.slack import build_message as build_slack
from agent.notify.slack.slack import go_json
from agent.notify.template import KV, TemplateError, TemplateSet, quote_meta, template_data
from agent.notify.webhook.config import WebhookConfig
from agent.notify.webhook.webhook import Webhook
from agent.support.goformat import go_duration_string, go_time_format
from agent.support.selfmetrics import SelfMetrics
from tests.notify_support import HookServer, alerting, fire, metric, running, wait_for

STARTS = 1_700_000_000.25  # 2023-11-14 22:13:20.25 UTC


def alert(ends: float | None = None, **labels: str) -> NotifiedAlert:
    return NotifiedAlert(
        labels={"alertname": "LLMDown", **labels},
        annotations={"summary": f"{labels.get('provider', '')} <down> & out"},
        starts_at=STARTS,
        ends_at=ends,
        generator_url="http://cw:9317/graph?g0.expr=up&g0.tab=1",
        fingerprint="0123456789abcdef",
    )


def notification(*alerts: NotifiedAlert, group: dict[str, str] | None = None) -> Notification:
    return Notification(
        receiver="team-llm.oncall",
        integration="team-llm.oncall/slack[0]",
        group_key='{}:{alertname="LLMDown"}',
        group_labels={"alertname": "LLMDown"} if group is None else group,
        alerts=list(alerts),
        external_url="http://cw:9317",
        created_at=STARTS + 90.5,
    )


FIRING_TWO = notification(
    alert(provider="openai", severity="critical"),
    alert(provider="anthropic", severity="critical"),
)


def render(text: str, n: Notification = FIRING_TWO, templates: TemplateSet | None = None) -> str:
    return (templates or TemplateSet.default()).render(text, template_data(n))


# ---------------------------------------------------------------------------------------
# The data


def test_data_has_alertmanagers_fields_and_methods() -> None:
    n = notification(
        alert(provider="openai", severity="critical"),
        alert(ends=STARTS + 60, provider="anthropic", severity="critical"),
    )
    assert render("{{ .Receiver }}|{{ .Status }}|{{ .ExternalURL }}", n) == (
        r"team-llm\.oncall|firing|http://cw:9317"
    )
    assert render("{{ len .Alerts }} {{ len .Alerts.Firing }} {{ len .Alerts.Resolved }}", n) == (
        "2 1 1"
    )
    assert render("{{ range .Alerts.Resolved }}{{ .Labels.provider }}{{ end }}", n) == "anthropic"
    assert render("{{ .GroupLabels.alertname }} {{ .CommonLabels.severity }}", n) == (
        "LLMDown critical"
    )
    assert render("[{{ .CommonLabels.provider }}]", n) == "[]"  # missingkey=zero
    assert render("{{ range .Alerts }}{{ .Status }} {{ .Fingerprint }};{{ end }}", n) == (
        "firing 0123456789abcdef;resolved 0123456789abcdef;"
    )


def test_times_print_as_go_and_a_firing_alerts_end_is_the_zero_time() -> None:
    n = notification(alert(provider="a"), alert(ends=STARTS + 60, provider="b"))
    assert render("{{ range .Alerts }}{{ .StartsAt }} / {{ .EndsAt }}\n{{ end }}", n) == (
        "2023-11-14 22:13:20.25 +0000 UTC / 0001-01-01 00:00:00 +0000 UTC\n"
        "2023-11-14 22:13:20.25 +0000 UTC / 2023-11-14 22:14:20.25 +0000 UTC\n"
    )
    text = "{{ range .Alerts }}{{ .EndsAt.IsZero }} {{ .StartsAt.Unix }} {{ end }}"
    assert render(text, n) == "true 1700000000 false 1700000000 "


def test_kv_methods() -> None:
    kv = KV({"severity": "page", "alertname": "X", "app": "bot"})
    assert [p.Name for p in kv.SortedPairs()] == ["alertname", "app", "severity"]
    assert kv.Names() == ["alertname", "app", "severity"]
    assert kv.Values() == ["X", "bot", "page"]
    assert kv.Remove(["app"]) == {"severity": "page", "alertname": "X"}
    text = (
        '{{ .CommonLabels.SortedPairs.Names }} {{ .CommonLabels.Values | join "," }} '
        "{{ with .CommonLabels.Remove .GroupLabels.Names }}{{ .Names }}{{ end }} "
        "{{ range .CommonLabels.SortedPairs }}{{ .Name }}={{ .Value }};{{ end }}"
    )
    n = notification(alert(severity="page", app="bot"))
    assert render(text, n) == (
        "[alertname app severity] LLMDown,bot,page [app severity] "
        "alertname=LLMDown;app=bot;severity=page;"
    )
    # Alertmanager 0.25's KV has no String method: it prints as a Go map
    assert render("{{ .CommonLabels }}", n) == "map[alertname:LLMDown app:bot severity:page]"


def test_receiver_is_quoted_as_a_regular_expression() -> None:
    assert quote_meta("a.b+c(d)[e]{f}^$|*?\\") == r"a\.b\+c\(d\)\[e\]\{f\}\^\$\|\*\?\\"


# ---------------------------------------------------------------------------------------
# The default templates


def test_default_subject_is_alertmanagers() -> None:
    assert render('{{ template "__subject" . }}') == "[FIRING:2] LLMDown (critical)"
    one = notification(
        alert(provider="openai"), group={"alertname": "LLMDown", "provider": "openai"}
    )
    assert render('{{ template "__subject" . }}', one) == "[FIRING:1] LLMDown openai "
    resolved = notification(alert(ends=STARTS + 5, provider="openai"))
    assert render('{{ template "email.default.subject" . }}', resolved) == (
        "[RESOLVED] LLMDown (openai)"
    )
    assert render('{{ template "slack.default.fallback" . }}') == (
        "[FIRING:2] LLMDown (critical) | http://cw:9317/#/alerts?receiver=team-llm%5C.oncall"
    )


def test_default_alert_list() -> None:
    n = notification(alert(provider="openai"))
    assert render('{{ template "__text_alert_list" .Alerts }}', n) == (
        "Labels:\n - alertname = LLMDown\n - provider = openai\n"
        "Annotations:\n - summary = openai <down> & out\n"
        "Source: http://cw:9317/graph?g0.expr=up&g0.tab=1\n"
    )


def test_user_files_override_defaults_and_an_empty_define_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.tmpl").write_text(
        '{{ define "slack.default.title" }}custom {{ .Status }}{{ end }}'
        '{{ define "__subject" }}   {{ end }}'
    )
    templates = TemplateSet.load(["*.tmpl"], tmp_path)
    assert templates.files == [str(tmp_path / "a.tmpl")]
    assert render('{{ template "slack.default.title" . }}', templates=templates) == "custom firing"
    assert render('{{ template "__subject" . }}', templates=templates).startswith("[FIRING:2]")


# ---------------------------------------------------------------------------------------
# Alertmanager's functions


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ('{{ "abc" | toUpper }} {{ "ABC" | toLower }}', "ABC abc"),
        ('{{ title "hELLO wORLD-wide o\'neil" }}', "Hello World-Wide O'neil"),
        ('{{ trimSpace "  x \\n" }}', "x"),
        ('{{ stringSlice "a" "b" "c" | join "-" }}', "a-b-c"),
        ('{{ if match "^LLM" .CommonLabels.alertname }}yes{{ end }}', "yes"),
        ('{{ reReplaceAll "(\\\\w+)Down" "${1} down" .CommonLabels.alertname }}', "LLM down"),
        ("{{ humanizeDuration 3725 }}", "1h 2m 5s"),
        ("{{ range .Alerts }}{{ since .StartsAt }} {{ end }}", "1m30.5s 1m30.5s "),
        (
            '{{ (index .Alerts 0).StartsAt | tz "Europe/Paris" | date "Mon Jan 2 15:04:05 MST" }}',
            "Tue Nov 14 23:13:20 CET",
        ),
        (
            '{{ (index .Alerts 0).StartsAt.Format "2006-01-02T15:04:05.000Z07:00" }}',
            "2023-11-14T22:13:20.250Z",
        ),
        ('{{ "<b>" | safeHtml }}', "<b>"),
    ],
)
def test_functions(text: str, want: str) -> None:
    assert render(text) == want


def test_go_time_layouts_and_durations() -> None:
    t = datetime.datetime(2024, 3, 5, 7, 8, 9, 120000, tzinfo=datetime.UTC)
    assert go_time_format(t, "2006-01-02 15:04:05.999999999 -0700 MST") == (
        "2024-03-05 07:08:09.12 +0000 UTC"
    )
    assert go_time_format(t, "Jan _2 3:04PM, Monday, 06 002") == "Mar  5 7:08AM, Tuesday, 24 065"
    assert go_time_format(t, "2006-01-02T15:04:05Z07:00") == "2024-03-05T07:08:09Z"
    assert [
        go_duration_string(ns) for ns in (0, 1500, 2_500_000, 61 * 10**9, 3_723_500_000_000)
    ] == [
        "0s",
        "1.5µs",
        "2.5ms",
        "1m1s",
        "1h2m3.5s",
    ]


# ---------------------------------------------------------------------------------------
# Errors: at load when certain, at send time with a visible line


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{{ .Recevier }}", "can't evaluate field Recevier in type *template.Data"),
        ('{{ template "slack.custom" . }}', 'template "slack.custom" not defined'),
        ("{{ humanize 3 }}", "function 'humanize' not defined"),
        ("{{ .Status | toUpper | len | toLower }}", "expected string; got int"),
        ("{{ .CommonLabels.x.y }}", "can't evaluate field y in type string"),
        ("{{ if }}", "missing value for if"),
    ],
)
def test_check_rejects_what_cannot_render(text: str, error: str) -> None:
    with pytest.raises(TemplateError, match=error.replace("(", r"\(").replace("*", r"\*")):
        TemplateSet.default().check(text)


def test_a_bad_template_file_names_the_file_and_the_line(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "bad.tmpl").write_text('{{ define "x" }}\n{{ .Foo | nofunc }}{{ end }}')
    config = (
        "sources: [{name: bot, stdin: true, format: json}]\nalerting:\n  templates: ['t/*.tmpl']\n"
    )
    with pytest.raises(ConfigError) as err:
        loads(config, str(tmp_path / "chatwatch.yml"))
    assert err.value.problems == [
        f"{tmp_path / 'chatwatch.yml'}: alerting.templates: {tmp_path / 't' / 'bad.tmpl'}: "
        "line 2, column 11: function 'nofunc' not defined"
    ]


def test_each_bad_field_is_reported_with_its_key_path(tmp_path: Path) -> None:
    config = """
sources: [{name: bot, stdin: true, format: json}]
alerting:
  route: {receiver: r}
  receivers:
    - name: r
      slack_configs:
        - api_url: https://hooks.slack.com/services/T0/B0/XYZ
          title: '{{ template "nope" . }}'
          fields: [{title: ok, value: '{{ .CommonLabels.x | tolower }}'}]
      email_configs:
        - {to: a@b.c, from: c@b.a, smarthost: 'mx:25', headers: {Subject: '{{ .Bad }}'}}
"""
    with pytest.raises(ConfigError) as err:
        loads(config, "c.yml")
    assert err.value.problems == [
        'c.yml: alerting.receivers[0].slack_configs[0].title: template "nope" not defined',
        "c.yml: alerting.receivers[0].slack_configs[0].fields[0].value: line 1, column 22: "
        "function 'tolower' not defined",
        "c.yml: alerting.receivers[0].email_configs[0].headers.Subject: line 1, column 4: "
        "can't evaluate field Bad in type *template.Data (notification templates have "
        ".Receiver, .Status, .Alerts, .GroupLabels, .CommonLabels, .CommonAnnotations, "
        ".ExternalURL)",
    ]
    assert "XYZ" not in "\n".join(err.value.problems)


def slack(**fields: Any) -> SlackConfig:
    return SlackConfig.model_validate({"api_url": "https://hooks.slack.com/x", **fields})


def test_a_field_failing_at_send_time_falls_back_and_says_so() -> None:
    errors: list[tuple[str, str, str]] = []
    templates = TemplateSet.default()
    templates.on_error = lambda *e: errors.append(e)
    cfg = slack(title='{{ .CommonLabels.alertname | tz "Mars/Olympus" }}', text="body")
    msg = build_slack(FIRING_TWO, cfg, templates)
    att = msg["attachments"][0]
    assert att["title"] == "[FIRING:2] LLMDown (critical)"  # Alertmanager's default title
    assert att["text"].startswith("body\nchatwatch: template error in title: error calling tz")
    assert errors == [
        (
            "team-llm.oncall/slack[0]",
            "title",
            "error calling tz: wrong type for value; expected time.Time; got string",
        )
    ]


def test_block_kit_message_shows_a_failing_channel_template() -> None:
    cfg = slack(channel='{{ template "x" .Alerts.Nope }}')
    msg = build_slack(FIRING_TWO, cfg)
    assert "channel" not in msg
    last = msg["attachments"][0]["blocks"][-1]
    assert last["type"] == "context"
    assert "template error in channel" in last["elements"][0]["text"]


# ---------------------------------------------------------------------------------------
# Slack: which message, and Alertmanager's encoding


def test_slack_without_attachment_fields_keeps_the_block_kit_message() -> None:
    msg = build_slack(FIRING_TWO, slack(username="{{ .CommonLabels.severity }}-bot"))
    assert msg["username"] == "critical-bot"
    assert "blocks" in msg["attachments"][0]
    assert "title" not in msg["attachments"][0]


def test_slack_with_any_attachment_field_sends_alertmanagers_attachment() -> None:
    msg = build_slack(FIRING_TWO, slack(text="{{ len .Alerts }} alerts"))
    assert msg == {
        "username": "Alertmanager",
        "attachments": [
            {
                "title": "[FIRING:2] LLMDown (critical)",
                "title_link": "http://cw:9317/#/alerts?receiver=team-llm%5C.oncall",
                "text": "2 alerts",
                "fallback": "[FIRING:2] LLMDown (critical) | "
                "http://cw:9317/#/alerts?receiver=team-llm%5C.oncall",
                "callback_id": "",
                "footer": "",
                "color": "danger",
                "mrkdwn_in": ["fallback", "pretext", "text"],
            }
        ],
    }


def test_alertmanager_slack_message_cannot_be_made_to_ping_by_a_log_line() -> None:
    """Alertmanager posts label values raw; chatwatch escapes Slack's control characters
    in them, so `<!channel>` from a log shows as text. The template's own text is kept."""
    n = notification(alert(provider="<!channel> & <http://evil|click>", severity="critical"))
    text = "<!here> {{ range .Alerts }}{{ .Labels.provider }} {{ .Annotations.summary }}{{ end }}"
    msg = build_slack(n, slack(text=text, title="{{ .CommonLabels.provider }}"))
    att = msg["attachments"][0]
    assert att["text"] == (
        "<!here> &lt;!channel&gt; &amp; &lt;http://evil|click&gt; "
        "&lt;!channel&gt; &amp; &lt;http://evil|click&gt; &lt;down&gt; &amp; out"
    )
    assert att["title"] == "&lt;!channel&gt; &amp; &lt;http://evil|click&gt;"
    assert "<!channel>" not in go_json(msg).decode("unicode_escape")


def test_go_json_escapes_as_go_does() -> None:
    body = go_json({"text": "<a href='x'>&</a>\u2028"})
    assert body == b'{"text":"\\u003ca href=\'x\'\\u003e\\u0026\\u003c/a\\u003e\\u2028"}\n'
    assert json.loads(body) == {"text": "<a href='x'>&</a>\u2028"}


# ---------------------------------------------------------------------------------------
# Email: templated html, text and headers; values escaped in html


def test_email_html_escapes_values_from_logs() -> None:
    n = notification(alert(provider="<script>alert(1)</script>"))
    cfg = EmailConfig.model_validate(
        {
            "to": "oncall@example.org",
            "from": "cw@example.org",
            "smarthost": "mx:25",
            "html": '{{ template "email.default.html" . }}<p>{{ "<i>ok</i>" | safeHtml }}</p>',
            "text": "{{ range .Alerts }}{{ .Annotations.summary }}{{ end }}",
            "headers": {"Subject": '{{ template "email.default.subject" . }}\r\nBcc: x@y'},
        }
    )
    msg = build_email(n, cfg, now=STARTS)
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == "[FIRING:1] LLMDown (<script>alert(1)</script>) Bcc: x@y"
    assert parsed["Bcc"] is None
    html_part = parsed.get_body(("html",))
    text_part = parsed.get_body(("plain",))
    assert html_part is not None and text_part is not None
    html_body = html_part.get_content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_body
    assert "<script>" not in html_body
    assert "<p><i>ok</i></p>" in html_body
    assert 'href="http://cw:9317/graph?g0.expr=up&amp;g0.tab=1"' in html_body
    assert text_part.get_content().strip() == "<script>alert(1)</script> <down> & out"


def test_a_label_value_in_to_cannot_add_recipients() -> None:
    """`to: '{{ .GroupLabels.team }}@example.org'` with a team label written by a log line
    such as `ops, attacker@evil.example`: the value can only be part of one address."""
    n = notification(alert(team="ops"))
    cfg = EmailConfig.model_validate(
        {
            "to": "{{ .GroupLabels.team }}@example.org",
            "from": "cw@example.org",
            "smarthost": "mx:25",
        }
    )
    for team, want in (
        ("ops", ["ops@example.org"]),
        ("ops, attacker@evil.example", None),
        ("ops <attacker@evil.example>", None),
        ("ops;attacker@evil.example", None),
    ):
        n.group_labels = {"team": team}
        try:
            _, recipients = envelope(n, cfg)
        except DeliveryError:
            recipients = []
        if want is not None:
            assert recipients == want
        assert len(recipients) <= 1, (team, recipients)
        assert not any(r.endswith("@evil.example") for r in recipients), (team, recipients)
        to = email.message_from_bytes(build_email(n, cfg, now=STARTS).as_bytes())["To"]
        assert "," not in to and "<" not in to, to


def test_email_without_templates_keeps_chatwatchs_bodies() -> None:
    cfg = EmailConfig.model_validate({"to": "a@b.c", "from": "c@b.a", "smarthost": "mx:25"})
    msg = build_email(FIRING_TWO, cfg, now=STARTS)
    assert msg["Subject"] == "[FIRING:2] LLMDown (critical)"


# ---------------------------------------------------------------------------------------
# http_config on HTTP receivers


@pytest.fixture
def hook() -> Any:
    server = HookServer().start()
    yield server
    server.stop()


async def test_webhook_http_config_sends_credentials_and_keeps_them_out_of_errors(
    hook: HookServer, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text("s3cr3t-token\n")
    cfg = AlertingConfig.model_validate(
        yaml.safe_load(
            f"""
route: {{receiver: r}}
receivers:
  - name: r
    webhook_configs:
      - url: {hook.url}
        http_config:
          authorization: {{credentials_file: token}}
"""
        ),
        context={"base_dir": tmp_path},
    )
    wh = Webhook("r", 0, cfg.receivers[0].webhook_configs[0])
    retry, err = await wh.notify(FIRING_TWO)
    assert (retry, err) == (False, None)
    assert hook.requests[-1].headers["Authorization"] == "Bearer s3cr3t-token"
    hook.default = type(hook.default)(status=400, body="bad token s3cr3t-token")
    retry, err = await wh.notify(FIRING_TWO)
    assert err is not None and "s3cr3t-token" not in str(err)
    await wh.close()


async def test_basic_auth_in_http_config(hook: HookServer) -> None:
    cfg = WebhookConfig.model_validate(
        {"url": hook.url, "http_config": {"basic_auth": {"username": "u", "password": "p"}}}
    )
    wh = Webhook("r", 0, cfg)
    assert await wh.notify(FIRING_TWO) == (False, None)
    assert hook.requests[-1].headers["Authorization"] == "Basic dTpw"
    await wh.close()


def test_http_config_takes_one_kind_of_credentials() -> None:
    with pytest.raises(ValueError, match="at most one of"):
        WebhookConfig.model_validate(
            {
                "url": "http://x/",
                "http_config": {"bearer_token": "a", "basic_auth": {"username": "u"}},
            }
        )


async def test_a_failing_template_still_sends_and_is_counted(
    hook: HookServer, tmp_path: Path
) -> None:
    stats = SelfMetrics()
    cfg = alerting(
        f"""
route: {{receiver: r, group_wait: 0s}}
receivers:
  - name: r
    slack_configs:
      - api_url: {hook.url}
        text: '{{{{ range .Alerts }}}}{{{{ .StartsAt | tz .Labels.zone }}}}{{{{ end }}}}'
"""
    )
    async with running(cfg, tmp_path, stats) as notifier:
        now = time.time()
        notifier.send([fire("LLMDown", now, zone="Mars/Olympus")], now)
        await wait_for(lambda: hook.requests, what="the Slack message")
    att = hook.requests[0].json()["attachments"][0]
    assert att["title"] == "[FIRING:1]  (LLMDown Mars/Olympus)"  # no group_by: as Alertmanager
    assert att["text"] == (
        "chatwatch: template error in text: error calling tz: unknown time zone Mars/Olympus"
    )
    assert metric(stats, "chatwatch_notification_template_errors_total", "r", "slack") == 1


def test_urls_from_logs_in_html_links_cannot_run_script() -> None:
    n = notification(alert(provider="x"))
    n.alerts[0].annotations["runbook"] = "javascript:alert('x')"
    n.alerts[0].annotations["page"] = 'https://wiki/page one?q=a b&c="d"'
    html = TemplateSet.default().render(
        '{{ range .Alerts }}<a href="{{ .Annotations.runbook }}">r</a>'
        "<a href='{{ .Annotations.page }}'>p</a> {{ .Annotations.page }}{{ end }}",
        template_data(n),
        html=True,
    )
    assert html == (
        '<a href="#ZgotmplZ">r</a>'
        "<a href='https://wiki/page%20one?q=a%20b&amp;c=%22d%22'>p</a> "
        "https://wiki/page one?q=a b&amp;c=&#34;d&#34;"
    )


def test_a_field_using_a_definition_that_calls_an_undefined_one_is_reported(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.tmpl").write_text(
        '{{ define "used" }}{{ template "missing" . }}{{ end }}'
        '{{ define "unused" }}{{ template "missing" . }}{{ end }}'
    )
    templates = TemplateSet.load(["a.tmpl"], tmp_path)  # unused ones are fine, as in Alertmanager
    with pytest.raises(TemplateError, match='template "missing" not defined'):
        templates.check('{{ if .Alerts }}{{ template "used" . }}{{ end }}')
