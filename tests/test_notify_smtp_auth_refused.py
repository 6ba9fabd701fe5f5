"""Fault: the SMTP server refuses our AUTH credentials.

The failure is logged in plain words (server, user, SMTP reply; never the password),
counted as `auth_failed`, and retried with backoff, so once the credentials work the
email goes out.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from agent.support.selfmetrics import SelfMetrics
from tests.notify_support import SMTPServer, alerting, fire, metric, running, wait_for

pytestmark = pytest.mark.timeout(60)

PASSWORD = "pw-7d41c9-wrong"


async def test_smtp_refusing_auth_is_reported_counted_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stats = SelfMetrics()
    with SMTPServer(tmp_path, password="the-right-one") as smtp:
        cfg = alerting(f"""
route: {{receiver: mail, group_interval: 200ms}}
receivers:
  - name: mail
    email_configs:
      - to: oncall@example.org
        from: chatwatch@example.org
        smarthost: 127.0.0.1:{smtp.port}
        auth_username: bot
        auth_password: {PASSWORD}
        tls_config: {{ca_file: {smtp.ca_file}}}
delivery: {{initial_backoff: 200ms, max_backoff: 500ms}}
""")
        with caplog.at_level(logging.WARNING, logger="chatwatch.notify"):
            async with running(cfg, tmp_path, stats) as n:
                n.send([fire("LLMBudget", time.time())], time.time())
                await wait_for(
                    lambda: (
                        metric(
                            stats,
                            "chatwatch_notifications_failed_total",
                            "mail",
                            "email",
                            "auth_failed",
                        )
                        >= 3
                    ),
                    what="refused AUTH counted and retried",
                )
                assert smtp.mailbox.messages == []
                smtp.password = PASSWORD  # the operator fixes the account
                await wait_for(lambda: smtp.mailbox.messages, what="email after AUTH works")
    errors = [r.__dict__.get("error", "") for r in caplog.records if "will retry" in r.getMessage()]
    assert errors and all(
        f"127.0.0.1:{smtp.port} refused AUTH for user 'bot': 535" in e for e in errors
    )
    assert PASSWORD not in caplog.text
    assert smtp.auth_attempts >= 4
