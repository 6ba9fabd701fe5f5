"""A Slack receiver copied from alertmanager.yml posts what Alertmanager posts.

One config, written as an alertmanager.yml (routes, inhibit rules, time intervals, a
template file and Slack fields that use it), goes to a real Alertmanager 0.25 (Debian
prometheus-alertmanager) and, as the `alerting:` section of a chatwatch config, to
chatwatch's notifier. Both post to a local server that answers as Slack's webhook does.
The same alerts go to both (with text from logs that needs escaping in JSON and mrkdwn),
and the bodies they post must be the same bytes, firing then resolved, except for the
one difference chatwatch makes on purpose: Slack's control characters in label and
annotation values are escaped (`<slow>` arrives as `&lt;slow&gt;`, so a log line cannot
`<!channel>`), so Alertmanager is given the values escaped that way. `amtool
check-config` and `chatwatch check` both accept the config.
"""

from __future__ import annotations

import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from agent.alerting.alert import Alert
from agent.commands.check import check_config
from agent.notify.config import AlertingConfig
from tests.notify_support import HookServer, Request, SMTPServer, running, wait_for
from tests.realservers import require, running_alertmanager

pytestmark = pytest.mark.timeout(120)

EXTERNAL_URL = "http://chatwatch.test:9317"

TEMPLATE_FILE = """\
{{ define "chat.title" -}}
[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}]
{{- " " }}{{ .CommonLabels.alertname }} {{ title .CommonLabels.severity }}
{{- end }}

{{ define "chat.color" -}}
{{ if eq .Status "firing" -}}
{{ if eq .CommonLabels.severity "critical" }}danger{{ else }}warning{{ end -}}
{{ else }}good{{ end }}
{{- end }}

{{ define "chat.text" -}}
{{ range .Alerts -}}
*{{ .Labels.alertname }}* {{ .Status }} since {{ .StartsAt.Format "2006-01-02 15:04:05 MST" }}
{{ with .Annotations.summary }}> {{ . }}{{ end }}
{{ range .Labels.SortedPairs }}• `{{ .Name }}`: {{ .Value }}
{{ end -}}
{{ if match "^https?://" .GeneratorURL }}<{{ .GeneratorURL }}|graph>{{ end }}
{{ end -}}
Others: {{ with .CommonLabels.Remove .GroupLabels.Names }}{{ .Names | join "," }}{{ end }}
Tags: {{ stringSlice "llm" .CommonLabels.provider | join "/" }}
{{- " " }}{{ reReplaceAll "[aeiou]" "_" .Receiver }}
Title case: {{ title "hELLO wORLD-wide o'neil v1.2" }} {{ .CommonLabels }}
{{- " " }}{{ len .Alerts.Resolved }}
{{- end }}

{{ define "slack.default.footer" }}{{ template "__alertmanager" . }} · {{ .ExternalURL }}{{ end }}
"""

AM_CONFIG = """\
route:
  receiver: chat.team
  group_by: [alertname, provider]
  group_wait: 2s
  group_interval: 2s
  repeat_interval: 1h
  routes:
    - receiver: chat.team
      matchers: ['team="llm"']
      mute_time_intervals: [year-2001]
      active_time_intervals: [every-day]
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [provider]
time_intervals:
  - name: year-2001
    time_intervals: [{years: ['2001']}]
  - name: every-day
    time_intervals: [{weekdays: ['sunday:saturday']}]
templates: ['templates/*.tmpl']
receivers:
  - name: chat.team
    slack_configs:
      - api_url: '@URL@'
        send_resolved: true
        channel: '#llm-{{ .CommonLabels.provider }}'
        username: 'chatwatch ({{ .Receiver }})'
        icon_emoji: ':robot_face:'
        title: '{{ template "chat.title" . }}'
        text: '{{ template "chat.text" . }}'
        color: '{{ template "chat.color" . }}'
        short_fields: true
        fields:
          - title: Provider
            value: '{{ .CommonLabels.provider | toUpper }}'
          - title: Summary
            value: '{{ .CommonAnnotations.summary }}'
            short: false
        actions:
          - type: button
            text: 'Runbook {{ .CommonLabels.alertname | toLower }}'
            url: '{{ .CommonAnnotations.runbook_url }}'
          - type: button
            text: Silence
            name: silence
            value: '{{ .GroupLabels.SortedPairs.Values | join "," }}'
        mrkdwn_in: [text, pretext]
"""


def alerts(starts: float) -> list[Alert]:
    """Text from logs as it comes: `<`, `&`, quotes, mrkdwn markers, non-ASCII."""
    url = f"{EXTERNAL_URL}/graph?g0.expr=rate(x%5B5m%5D)&g0.tab=1"
    return [
        Alert(
            labels={
                "alertname": "LLMProviderErrors",
                "provider": "openai",
                "severity": "critical",
                "team": "llm",
            },
            annotations={
                "summary": 'OpenAI <errors> & "timeouts" at 12% — *bold* _it_',
                "runbook_url": "https://runbooks.example/llm?provider=openai&x=<y>",
            },
            starts_at=starts,
            generator_url=url,
        ),
        Alert(
            labels={
                "alertname": "ChatErrors",
                "provider": "openai",
                "severity": "warning",
                "team": "llm",
            },
            annotations={"summary": "chat errors caused by the provider"},
            starts_at=starts,
            generator_url=url,
        ),
        Alert(
            labels={
                "alertname": "ChatLatency",
                "provider": "anthropic",
                "severity": "warning",
                "route": "/v1/chat",
                "team": "llm",
            },
            annotations={"summary": "p95 latency 2.5s on /v1/chat (<slow>)"},
            starts_at=starts,
            generator_url=url,
        ),
        Alert(
            labels={
                "alertname": "ChatLatency",
                "provider": "anthropic",
                "severity": "warning",
                "route": "/v1/embed",
                "team": "llm",
            },
            annotations={"summary": "p95 latency 3.1s on /v1/embed"},
            starts_at=starts,
            generator_url=url,
        ),
    ]


def iso(ts: float | None) -> str:
    if ts is None:
        return "0001-01-01T00:00:00Z"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def post_to_alertmanager(url: str, batch: list[Alert]) -> None:
    body = [
        {
            "labels": a.labels,
            "annotations": a.annotations,
            "startsAt": iso(a.starts_at),
            "generatorURL": a.generator_url,
            **({"endsAt": iso(a.ends_at)} if a.ends_at is not None else {}),
        }
        for a in batch
    ]
    r = httpx.post(f"{url}/api/v2/alerts", json=body, timeout=10)
    assert r.status_code == 200, r.text


@pytest.fixture
def slack() -> Iterator[HookServer]:
    server = HookServer().start()
    yield server
    server.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "chat.tmpl").write_text(TEMPLATE_FILE)
    return tmp_path


def by_path(slack: HookServer, path: str) -> list[Request]:
    return [r for r in list(slack.requests) if r.path == path]


def keyed(requests: list[Request]) -> dict[str, bytes]:
    """Bodies by their (title, status): the order of two groups' posts may differ."""
    out = {}
    for r in requests:
        att = r.json()["attachments"][0]
        out[att["title"]] = r.body
    return out


async def test_slack_templates_render_what_alertmanager_posts(
    workdir: Path, slack: HookServer
) -> None:
    am_yml = AM_CONFIG.replace("@URL@", f"http://127.0.0.1:{slack.port}/am")
    (workdir / "alertmanager.yml").write_text(am_yml)
    amtool = require("amtool")
    checked = subprocess.run(
        [amtool, "check-config", str(workdir / "alertmanager.yml")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    cw_alerting = AM_CONFIG.replace("@URL@", f"http://127.0.0.1:{slack.port}/cw")
    cw_config = workdir / "chatwatch.yml"
    cw_config.write_text(
        "sources: [{name: bot, paths: ['logs/*.log'], format: json}]\n"
        f"state_dir: {workdir / 'state'}\n"
        "alerting:\n" + textwrap.indent(cw_alerting, "  ")
    )
    problems, _ = check_config(str(cw_config))
    assert problems == []
    cfg = AlertingConfig.model_validate(yaml.safe_load(cw_alerting), context={"base_dir": workdir})

    starts = float(int(time.time()))
    batch = alerts(starts)
    with running_alertmanager(am_yml, workdir, (f"--web.external-url={EXTERNAL_URL}",)) as am_url:
        async with running(cfg, workdir / "state") as notifier:
            post_to_alertmanager(am_url, slack_escaped(batch))
            notifier.send(batch, time.time())
            # two groups (openai, anthropic); the openai warning is inhibited in both
            await wait_for(lambda: len(by_path(slack, "/am")) >= 2, 30, "Alertmanager posts")
            await wait_for(lambda: len(by_path(slack, "/cw")) >= 2, 30, "chatwatch posts")
            firing_am, firing_cw = keyed(by_path(slack, "/am")), keyed(by_path(slack, "/cw"))
            assert sorted(firing_am) == [
                "[FIRING:1] LLMProviderErrors Critical",
                "[FIRING:2] ChatLatency Warning",
            ]
            for title, body in firing_am.items():
                assert firing_cw[title].decode() == body.decode(), title

            # resolve the anthropic group: one resolved message each
            ended = time.time()
            resolved = [
                Alert(a.labels, a.annotations, a.starts_at, ended, a.generator_url)
                for a in batch
                if a.labels["provider"] == "anthropic"
            ]
            post_to_alertmanager(am_url, slack_escaped(resolved))
            notifier.send(resolved + batch[:2], time.time())
            await wait_for(lambda: len(by_path(slack, "/am")) >= 3, 30, "Alertmanager resolve")
            await wait_for(lambda: len(by_path(slack, "/cw")) >= 3, 30, "chatwatch resolve")
            am_last, cw_last = by_path(slack, "/am")[2], by_path(slack, "/cw")[2]
            assert am_last.json()["attachments"][0]["title"] == "[RESOLVED] ChatLatency Warning"
            assert cw_last.body.decode() == am_last.body.decode()


def slack_escaped(alerts: list[Alert]) -> list[Alert]:
    """The alerts as Alertmanager must get them to post what chatwatch posts: chatwatch
    escapes Slack's control characters in label and annotation values, Alertmanager
    does not (so a log line could `<!channel>`)."""

    def esc(d: dict[str, str]) -> dict[str, str]:
        return {
            k: v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            for k, v in d.items()
        }

    return [
        Alert(esc(a.labels), esc(a.annotations), a.starts_at, a.ends_at, a.generator_url)
        for a in alerts
    ]


EMAIL_CONFIG = """\
route: {receiver: mail, group_by: [alertname], group_wait: 2s, group_interval: 2s}
templates: ['templates/*.tmpl']
receivers:
  - name: mail
    email_configs:
      - to: oncall@example.org
        from: chatwatch@example.org
        smarthost: 127.0.0.1:@PORT@
        tls_config: {ca_file: '@CA@'}
        headers: {Subject: '{{ template "email.default.subject" . }}'}
        html: '{{ template "email.default.html" . }}'
        text: '{{ template "chat.text" . }}'
"""


def email_yml(smtp: SMTPServer) -> str:
    return EMAIL_CONFIG.replace("@PORT@", str(smtp.port)).replace("@CA@", str(smtp.ca_file))


async def test_email_templates_render_what_alertmanager_sends(workdir: Path) -> None:
    """The default HTML email, with values from logs escaped as html/template escapes
    them, and the subject and text part, as Alertmanager sends them."""
    (workdir / "am").mkdir()
    (workdir / "cw").mkdir()
    with SMTPServer(workdir / "am") as am_smtp, SMTPServer(workdir / "cw") as cw_smtp:
        cfg = AlertingConfig.model_validate(
            yaml.safe_load(email_yml(cw_smtp)), context={"base_dir": workdir}
        )
        starts = float(int(time.time()))
        batch = [
            Alert(
                labels={"alertname": "ChatErrors", "route": "/v1/chat?x=<b>&y='1'+2"},
                annotations={"summary": '<script>alert("x")</script> & more'},
                starts_at=starts,
                generator_url=f"{EXTERNAL_URL}/graph?g0.expr=a%2Bb&g0.tab=1",
            )
        ]
        with running_alertmanager(
            email_yml(am_smtp), workdir, (f"--web.external-url={EXTERNAL_URL}",)
        ) as am_url:
            async with running(cfg, workdir / "state") as notifier:
                post_to_alertmanager(am_url, batch)
                notifier.send(batch, time.time())
                await wait_for(lambda: am_smtp.mailbox.messages, 30, "Alertmanager's email")
                await wait_for(lambda: cw_smtp.mailbox.messages, 30, "chatwatch's email")
    am_mail, cw_mail = am_smtp.mailbox.messages[0], cw_smtp.mailbox.messages[0]
    subject = "[FIRING:1] ChatErrors (/v1/chat?x=<b>&y='1'+2)"
    assert cw_mail["Subject"] == am_mail["Subject"] == subject
    am_html, cw_html = am_mail.get_body(("html",)), cw_mail.get_body(("html",))
    am_text, cw_text = am_mail.get_body(("plain",)), cw_mail.get_body(("plain",))
    assert am_html is not None and cw_html is not None
    assert am_text is not None and cw_text is not None
    assert "&lt;script&gt;" in am_html.get_content()
    assert cw_html.get_content() == am_html.get_content()
    # Python's MIME encoder ends a text part with a line break; Go's leaves it as it is
    assert cw_text.get_content().rstrip("\r\n") == am_text.get_content()
