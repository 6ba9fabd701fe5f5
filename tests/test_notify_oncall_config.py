"""The on-call receivers' config: Alertmanager's keys and defaults, secrets from files,
and `chatwatch check` naming what is wrong without showing a secret."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.support.configmodel import redacted
from tests.notify_support import alerting

CHATWATCH = [sys.executable, "-m", "agent"]


def test_check_names_bad_urls_and_missing_keys_without_showing_secrets(tmp_path: Path) -> None:
    cfg = tmp_path / "cw.yaml"
    cfg.write_text(
        "sources: [{name: bot, stdin: true}]\n"
        "state_dir: state\n"
        "alerting:\n"
        "  route: {receiver: oncall}\n"
        "  receivers:\n"
        "    - name: oncall\n"
        '      discord_configs: [{webhook_url: "discord.com/api/webhooks/1/T0KEN"}]\n'
        '      msteamsv2_configs: [{webhook_url: "ftp://teams.example.org/T0KEN"}]\n'
        '      telegram_configs: [{bot_token: "T0KEN", chat_id: 1, parse_mode: html}]\n'
        "      pagerduty_configs: [{severity: critical}]\n"
    )
    result = subprocess.run(
        [*CHATWATCH, "check", "-c", str(cfg)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    out = result.stderr
    where = f"{cfg}: alerting.receivers[0]"
    assert (
        f"{where}.discord_configs[0].webhook_url: expected an http:// or https:// URL, "
        "got text that is not a URL (value not shown)" in out
    )
    assert f"{where}.msteamsv2_configs[0].webhook_url: expected an http:// or https://" in out
    assert f"{where}.telegram_configs[0].parse_mode:" in out
    assert "missing service or routing key in PagerDuty config" in out
    assert "T0KEN" not in result.stderr + result.stdout


def test_defaults_are_alertmanagers(tmp_path: Path) -> None:
    cfg = alerting("""
route: {receiver: oncall}
receivers:
  - name: oncall
    pagerduty_configs: [{routing_key: k}]
    discord_configs: [{webhook_url: "https://discord.test/api/webhooks/1/t"}]
    telegram_configs: [{bot_token: t, chat_id: -5}]
    msteams_configs: [{webhook_url: "https://teams.test/webhookb2/x"}]
    msteamsv2_configs: [{webhook_url: "https://teams.test/workflows/x"}]
""")
    r = cfg.receivers[0]
    configs = [
        *r.pagerduty_configs,
        *r.discord_configs,
        *r.telegram_configs,
        *r.msteams_configs,
        *r.msteamsv2_configs,
    ]
    assert all(c.send_resolved for c in configs)
    pd = r.pagerduty_configs[0]
    assert (pd.severity, pd.endpoint()) == ("error", "https://events.pagerduty.com/v2/enqueue")
    tg = r.telegram_configs[0]
    assert (tg.parse_mode, tg.api_url) == ("HTML", "https://api.telegram.org")
    assert not tg.disable_notifications and tg.message_thread_id == 0


def test_secrets_come_from_files_and_are_redacted(tmp_path: Path) -> None:
    (tmp_path / "pd").write_text("0123456789abcdef0123456789abcdef\n")
    (tmp_path / "bot").write_text("123:SECRET\n")
    (tmp_path / "chat").write_text("-1001\n")
    (tmp_path / "hook").write_text("https://discord.test/api/webhooks/1/SECRET\n")
    cfg = alerting(f"""
route: {{receiver: oncall}}
receivers:
  - name: oncall
    pagerduty_configs: [{{routing_key_file: {tmp_path / "pd"}}}]
    telegram_configs: [{{bot_token_file: {tmp_path / "bot"}, chat_id_file: {tmp_path / "chat"}}}]
    discord_configs: [{{webhook_url_file: {tmp_path / "hook"}}}]
""")
    r = cfg.receivers[0]
    routing_key = r.pagerduty_configs[0].routing_key
    assert routing_key is not None
    assert routing_key.get_secret_value() == "0123456789abcdef0123456789abcdef"
    assert r.telegram_configs[0].bot_token.get_secret_value() == "123:SECRET"
    assert r.telegram_configs[0].chat_id == -1001
    shown = str(redacted(cfg))
    assert "SECRET" not in shown and "0123456789abcdef" not in shown


def test_pagerduty_takes_one_key_and_v1_goes_to_the_v1_api() -> None:
    with pytest.raises(ValidationError, match="either routing_key"):
        alerting("""
receivers: [{name: x, pagerduty_configs: [{routing_key: a, service_key: b}]}]
""")
    cfg = alerting("receivers: [{name: x, pagerduty_configs: [{service_key: b}]}]")
    assert cfg.receivers[0].pagerduty_configs[0].endpoint() == (
        "https://events.pagerduty.com/generic/2010-04-15/create_event.json"
    )
