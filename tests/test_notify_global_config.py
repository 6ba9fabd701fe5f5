"""An alertmanager.yml with a `global:` block pastes into `alerting:` and means the same.

The same file goes to `amtool check-config` (Debian's Alertmanager 0.25) and to
`chatwatch check`; the receivers that leave keys out take the global ones. The email
scenario sends one alert through a real Alertmanager and through chatwatch, each to its
own real SMTP server (aiosmtpd with STARTTLS and AUTH), from an email config that gives
neither `smarthost` nor `from` and whose `to` is a template: both must send to the same
rendered address, from the global sender, through the global smarthost and credentials.
"""

from __future__ import annotations

import hmac
import subprocess
import textwrap
import time
from pathlib import Path

import httpx
import pytest
import yaml
from aiosmtpd.smtp import SMTP, AuthResult

from agent.alerting.alert import Alert
from agent.commands.check import check_config
from agent.config import ConfigError, load, loads
from agent.notify.api import original_config
from agent.notify.config import AlertingConfig
from agent.status import running_config
from tests.notify_support import Mailbox, SMTPServer, fire, running, wait_for
from tests.realservers import require, running_alertmanager

pytestmark = pytest.mark.timeout(120)

SLACK_URL = "https://hooks.slack.com/services/T000/B000/global-slack-token"
SMTP_PASSWORD = "global-smtp-password"
BEARER = "global-bearer-token"

PASTED = """\
global:
  resolve_timeout: 2m
  smtp_smarthost: 'smtp.example.org:587'
  smtp_from: 'Chatbot alerts <alerts@example.org>'
  smtp_hello: chatwatch.example.org
  smtp_auth_username: bot
  smtp_auth_password: @SMTP_PASSWORD@
  smtp_require_tls: false
  slack_api_url_file: slack-url
  http_config:
    proxy_url: http://proxy.example.org:3128
    authorization: {credentials: @BEARER@}
    follow_redirects: false
route:
  receiver: team
  group_by: [alertname, team]
  routes:
    - matchers: ['severity="page"']
      receiver: own-settings
receivers:
  - name: team
    slack_configs:
      - channel: '#chatbot'
    email_configs:
      - to: '{{ .GroupLabels.team }}@example.com'
    webhook_configs:
      - url: http://bridge.example.org/hook
  - name: own-settings
    slack_configs:
      - api_url: https://hooks.slack.com/services/T000/B000/own-token
        http_config: {follow_redirects: true}
    email_configs:
      - to: oncall@example.com
        from: pager@example.org
        smarthost: 'mx.example.org:25'
        auth_username: pager
        auth_password: own-password
        require_tls: true
"""


def pasted() -> str:
    return PASTED.replace("@SMTP_PASSWORD@", SMTP_PASSWORD).replace("@BEARER@", BEARER)


def chatwatch_yml(workdir: Path, alerting_section: str) -> Path:
    path = workdir / "chatwatch.yml"
    path.write_text(
        "sources: [{name: bot, paths: ['logs/*.log'], format: json}]\n"
        f"state_dir: {workdir / 'state'}\n"
        "alerting:\n" + textwrap.indent(alerting_section, "  ")
    )
    return path


def amtool_check(workdir: Path, text: str) -> subprocess.CompletedProcess[str]:
    (workdir / "alertmanager.yml").write_text(text)
    return subprocess.run(
        [require("amtool"), "check-config", str(workdir / "alertmanager.yml")],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_pasted_alertmanager_yml_with_global_loads_and_receivers_inherit(
    tmp_path: Path,
) -> None:
    (tmp_path / "slack-url").write_text(SLACK_URL + "\n")
    checked = amtool_check(tmp_path, pasted())
    assert checked.returncode == 0, checked.stdout + checked.stderr

    path = chatwatch_yml(tmp_path, pasted())
    problems, _ = check_config(str(path))
    assert problems == []
    cfg = load(path).alerting
    assert cfg.resolve_timeout == 120.0

    team, own = cfg.receiver("team"), cfg.receiver("own-settings")
    slack = team.slack_configs[0]
    assert slack.api_url.get_secret_value() == SLACK_URL
    for http in (slack.http_config, team.webhook_configs[0].http_config):
        assert http.proxy_url == "http://proxy.example.org:3128"
        assert http.auth_header() == f"Bearer {BEARER}"
        assert http.follow_redirects is False
    mail = team.email_configs[0]
    assert mail.smarthost == "smtp.example.org:587"
    assert mail.from_ == "Chatbot alerts <alerts@example.org>"
    assert mail.hello == "chatwatch.example.org"
    assert mail.auth_username == "bot"
    assert mail.auth_password is not None
    assert mail.auth_password.get_secret_value() == SMTP_PASSWORD
    assert mail.require_tls is False

    # what a receiver config gives itself wins, and http_config is taken whole or not at all
    own_slack, own_mail = own.slack_configs[0], own.email_configs[0]
    assert own_slack.api_url.get_secret_value().endswith("/own-token")
    assert own_slack.http_config.proxy_url is None
    assert own_slack.http_config.auth_header() is None
    assert (own_mail.smarthost, own_mail.from_, own_mail.auth_username) == (
        "mx.example.org:25",
        "pager@example.org",
        "pager",
    )
    assert own_mail.auth_password is not None
    assert own_mail.auth_password.get_secret_value() == "own-password"
    assert own_mail.require_tls is True


def test_global_secrets_are_redacted_on_the_config_page_and_in_the_api(tmp_path: Path) -> None:
    (tmp_path / "slack-url").write_text(SLACK_URL + "\n")
    path = chatwatch_yml(tmp_path, pasted())
    cfg = load(path)
    page = running_config(cfg, str(path)).yaml
    status = original_config(cfg.alerting)
    for shown in (page, status):
        assert "smtp_auth_password: <secret>" in shown
        assert "slack_api_url: <secret>" in shown
        for secret in (SLACK_URL, SMTP_PASSWORD, BEARER, "global-slack-token"):
            assert secret not in shown
    # the API's status shows global: as Alertmanager does, resolve_timeout included
    assert yaml.safe_load(status)["global"]["resolve_timeout"] == "2m"


def test_proxy_passwords_and_header_values_are_redacted_in_the_api_status() -> None:
    """/api/v2/status shows the config as Alertmanager does; a password inside a proxy
    URL and webhook header values (tokens) are secrets there as on the config page."""
    cfg = AlertingConfig.model_validate(
        yaml.safe_load(
            """
global:
  http_config: {proxy_url: 'http://squid:proxy-pass-123@proxy.example.org:3128'}
route: {receiver: hooks}
receivers:
  - name: hooks
    webhook_configs:
      - url: https://hooks.example.org/a
        headers: {X-Api-Key: header-token-456}
        http_config: {proxy_url: 'http://u:receiver-pass-789@proxy.example.org:3128'}
"""
        )
    )
    status = original_config(cfg)
    for secret in ("proxy-pass-123", "header-token-456", "receiver-pass-789"):
        assert secret not in status
    assert "http://squid:<secret>@proxy.example.org:3128" in status
    assert "X-Api-Key: <secret>" in status


def test_a_bad_global_secret_is_reported_once_without_its_value() -> None:
    doc = """
sources: [{name: bot, stdin: true}]
alerting:
  global: {slack_api_url: 'ftp://hooks.example.org/very-secret-token'}
  route: {receiver: team}
  receivers: [{name: team, slack_configs: [{channel: '#a'}]}]
"""
    with pytest.raises(ConfigError) as err:
        loads(doc)
    text = "\n".join(err.value.problems)
    assert "alerting.global.slack_api_url: expected an http:// or https:// URL" in text
    assert "very-secret-token" not in text


def test_both_resolve_timeouts_is_an_error() -> None:
    doc = """
sources: [{name: bot, stdin: true}]
alerting:
  global: {resolve_timeout: 10m}
  resolve_timeout: 5m
  route: {receiver: team}
  receivers: [{name: team}]
"""
    with pytest.raises(ConfigError) as err:
        loads(doc)
    assert err.value.problems == [
        "<config>: alerting: global.resolve_timeout and resolve_timeout are the same "
        "setting: give one of them (global.resolve_timeout is Alertmanager's spelling)"
    ]


def test_email_without_smarthost_and_no_global_names_the_global_key() -> None:
    doc = """
sources: [{name: bot, stdin: true}]
alerting:
  route: {receiver: team}
  receivers:
    - name: team
      email_configs: [{to: a@example.org, from: b@example.org}]
      slack_configs: [{channel: '#a'}]
"""
    with pytest.raises(ConfigError) as err:
        loads(doc)
    assert err.value.problems == [
        "<config>: alerting.receivers[0].slack_configs[0].api_url: required key is missing "
        "(here, or for every such config as alerting.global.slack_api_url)",
        "<config>: alerting.receivers[0].email_configs[0].smarthost: required key is missing "
        "(here, or for every such config as alerting.global.smtp_smarthost)",
    ]


def test_email_to_template_is_checked_at_load() -> None:
    doc = """
sources: [{name: bot, stdin: true}]
alerting:
  global: {smtp_smarthost: 'smtp.example.org:587', smtp_from: 'a@example.org'}
  route: {receiver: team}
  receivers: [{name: team, email_configs: [{to: '{{ .GroupLabels.team | nosuch }}'}]}]
"""
    with pytest.raises(ConfigError) as err:
        loads(doc)
    (problem,) = err.value.problems
    assert problem.startswith("<config>: alerting.receivers[0].email_configs[0].to: ")
    assert "nosuch" in problem


def test_defaults_of_integrations_chatwatch_lacks_are_accepted_with_a_warning(
    tmp_path: Path,
) -> None:
    section = """\
global:
  opsgenie_api_key: og-key
  webex_api_url: https://webexapis.com/v1/messages
route: {receiver: team}
receivers: [{name: team}]
"""
    checked = amtool_check(tmp_path, section)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    path = chatwatch_yml(tmp_path, section)
    problems, warnings = check_config(str(path))
    assert problems == []
    assert f"{path}: alerting.global.opsgenie_api_key: chatwatch has no OpsGenie integration; " in (
        "\n".join(warnings)
    )
    assert any(
        "alerting.global.webex_api_url: chatwatch has no Webex integration" in w for w in warnings
    )
    assert not any("og-key" in w for w in warnings)

    rejected = section.replace(
        "receivers: [{name: team}]", "receivers: [{name: team, opsgenie_configs: [{}]}]"
    )
    path = chatwatch_yml(tmp_path, rejected)
    problems, _ = check_config(str(path))
    assert problems == [
        f"{path}: alerting.receivers[0]: opsgenie_configs: chatwatch has no OpsGenie "
        "integration (it sends to Slack, webhooks, email, PagerDuty, MS Teams, Discord and "
        "Telegram)"
    ]


# -- email through the global smarthost, next to Alertmanager ------------------------------

EMAIL = """\
global:
  smtp_smarthost: '127.0.0.1:@PORT@'
  smtp_from: 'Chatbot alerts <alerts@example.org>'
  smtp_auth_username: bot
  smtp_auth_password: s3cret
route: {receiver: team, group_by: [alertname, team], group_wait: 1s}
receivers:
  - name: team
    email_configs:
      - to: '{{ .GroupLabels.team }}@example.com'
        tls_config: {ca_file: '@CA@'}
"""


def email_yml(smtp: SMTPServer) -> str:
    return EMAIL.replace("@PORT@", str(smtp.port)).replace("@CA@", str(smtp.ca_file))


def post_to_alertmanager(url: str, alert: Alert) -> None:
    starts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(alert.starts_at))
    body = [{"labels": alert.labels, "annotations": alert.annotations, "startsAt": starts}]
    r = httpx.post(f"{url}/api/v2/alerts", json=body, timeout=10)
    assert r.status_code == 200, r.text


async def test_email_without_smarthost_or_from_sends_through_the_global_ones(
    tmp_path: Path,
) -> None:
    (tmp_path / "am").mkdir()
    (tmp_path / "cw").mkdir()
    alert = Alert(
        labels={"alertname": "ChatErrors", "team": "payments", "severity": "page"},
        annotations={"summary": "errors"},
        starts_at=float(int(time.time())),
        generator_url="http://chatwatch.test:9317/graph",
    )
    am_server = SMTPServer(tmp_path / "am", auth_exclude=("LOGIN",))
    cw_server = SMTPServer(tmp_path / "cw", auth_exclude=("LOGIN",))
    with am_server as am_smtp, cw_server as cw_smtp:
        checked = amtool_check(tmp_path, email_yml(am_smtp))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        path = chatwatch_yml(tmp_path, email_yml(cw_smtp))
        assert check_config(str(path))[0] == []
        cfg = AlertingConfig.model_validate(
            yaml.safe_load(email_yml(cw_smtp)), context={"base_dir": tmp_path}
        )
        with running_alertmanager(email_yml(am_smtp), tmp_path) as am_url:
            async with running(cfg, tmp_path / "state") as notifier:
                post_to_alertmanager(am_url, alert)
                notifier.send([alert], time.time())
                await wait_for(lambda: am_smtp.mailbox.messages, 30, "Alertmanager's email")
                await wait_for(lambda: cw_smtp.mailbox.messages, 30, "chatwatch's email")

    (am_envelope,), (cw_envelope,) = am_smtp.mailbox.envelopes, cw_smtp.mailbox.envelopes
    assert cw_envelope.rcpt_tos == am_envelope.rcpt_tos == ["payments@example.com"]
    assert cw_envelope.mail_from == am_envelope.mail_from == "alerts@example.org"
    (am_mail,), (cw_mail,) = am_smtp.mailbox.messages, cw_smtp.mailbox.messages
    assert cw_mail["To"] == am_mail["To"] == "payments@example.com"
    assert cw_mail["From"] == am_mail["From"] == "Chatbot alerts <alerts@example.org>"
    # the global credentials were used, over STARTTLS (the server allows AUTH only then)
    assert cw_smtp.auth_attempts == am_smtp.auth_attempts == 1


def test_webhook_basic_auth_pagerduty_and_telegram_defaults() -> None:
    """chatwatch's webhook `basic_auth` keeps its credentials and takes the rest of the
    global client; `pagerduty_url` goes to Events API v2 configs only (Alertmanager sends
    v1 events to the v1 endpoint whatever it says); `telegram_api_url` to Telegram."""
    cfg = AlertingConfig.model_validate(
        yaml.safe_load("""
global:
  pagerduty_url: https://pd-proxy.example.org/v2/enqueue
  telegram_api_url: https://tg-proxy.example.org
  http_config: {bearer_token: tok, proxy_url: 'http://proxy.example.org:3128'}
route: {receiver: r}
receivers:
  - name: r
    webhook_configs: [{url: 'http://bridge/hook', basic_auth: {username: u, password: p}}]
    pagerduty_configs: [{routing_key: k}, {service_key: s}]
    telegram_configs: [{bot_token: 't:1', chat_id: 42}]
""")
    )
    r = cfg.receiver("r")
    hook = r.webhook_configs[0]
    assert hook.http_config.bearer_token is None
    assert hook.http_config.proxy_url == "http://proxy.example.org:3128"
    v2, v1 = r.pagerduty_configs
    assert v2.endpoint() == "https://pd-proxy.example.org/v2/enqueue"
    assert v1.endpoint() == "https://events.pagerduty.com/generic/2010-04-15/create_event.json"
    assert v2.http_config.auth_header() == "Bearer tok"
    assert r.telegram_configs[0].api_url == "https://tg-proxy.example.org"


# -- AUTH mechanism: Alertmanager's choice, with credentials from global -------------------


class CramMD5Mailbox(Mailbox):
    """A mailbox whose server also offers CRAM-MD5 (aiosmtpd has none built in), listed
    first, checked against `SECRET`; PLAIN and LOGIN stay aiosmtpd's."""

    SECRET = b"cram-secret"
    CHALLENGE = b"<1896.697170952@chatwatch.test>"

    def __init__(self) -> None:
        super().__init__()
        self.cram_logins: list[tuple[bytes, bool]] = []

    async def auth_CRAM__MD5(self, server: SMTP, args: list[str]) -> AuthResult:
        response = await server.challenge_auth(self.CHALLENGE)
        if not isinstance(response, bytes):
            return AuthResult(success=False, handled=False)
        user, _, digest = response.partition(b" ")
        expected = hmac.new(self.SECRET, self.CHALLENGE, "md5").hexdigest().encode()
        ok = user == b"bot" and hmac.compare_digest(digest, expected)
        self.cram_logins.append((user, ok))
        return AuthResult(success=ok, handled=False)


def auth_yml(smtp: SMTPServer, secret_line: str) -> str:
    return f"""
global:
  smtp_smarthost: '127.0.0.1:{smtp.port}'
  smtp_from: alerts@example.org
  smtp_auth_username: bot
  smtp_auth_password: s3cret
  {secret_line}
route: {{receiver: team, group_by: [alertname], group_interval: 200ms}}
receivers:
  - name: team
    email_configs: [{{to: oncall@example.org, tls_config: {{ca_file: '{smtp.ca_file}'}}}}]
delivery: {{initial_backoff: 200ms, max_backoff: 1s}}
"""


async def test_email_authenticates_with_the_global_secret_or_password(tmp_path: Path) -> None:
    """The first mechanism the server offers that a credential is given for: CRAM-MD5
    with the global `smtp_auth_secret_file` when there is one, else (CRAM-MD5 skipped)
    LOGIN with the global password."""
    (tmp_path / "cram").write_text(CramMD5Mailbox.SECRET.decode() + "\n")
    mailbox = CramMD5Mailbox()
    with SMTPServer(tmp_path, mailbox=mailbox) as smtp:
        cfg = AlertingConfig.model_validate(
            yaml.safe_load(auth_yml(smtp, "smtp_auth_secret_file: cram")),
            context={"base_dir": tmp_path},
        )
        async with running(cfg, tmp_path / "state-cram") as notifier:
            notifier.send([fire("ChatErrors", time.time())], time.time())
            await wait_for(lambda: mailbox.messages, what="email after CRAM-MD5")
        assert mailbox.cram_logins == [(b"bot", True)]
        assert smtp.auth_attempts == 0  # PLAIN and LOGIN were not tried

        cfg = AlertingConfig.model_validate(yaml.safe_load(auth_yml(smtp, "")))
        async with running(cfg, tmp_path / "state-login") as notifier:
            notifier.send([fire("ChatErrors", time.time())], time.time())
            await wait_for(lambda: len(mailbox.messages) == 2, what="email after LOGIN")
        assert mailbox.cram_logins == [(b"bot", True)]
        assert smtp.auth_attempts == 1
