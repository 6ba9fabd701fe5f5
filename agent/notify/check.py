"""What `chatwatch check` adds for `alerting:`: what the models cannot see without the filesystem.

Route/receiver cross-references are checked by the config models themselves (a route
naming an undefined receiver fails `load`, as in Alertmanager); this adds the files the
receivers will need at send time, so a missing CA bundle is found now and not at 3 a.m.
"""

from __future__ import annotations

from pathlib import Path

from agent.notify.config import AlertingConfig, TLSConfig, alerting_problems


def check_alerting(alerting: AlertingConfig) -> list[str]:
    problems = [f"alerting.{p}" for p in alerting_problems(alerting)]

    def tls(where: str, t: TLSConfig) -> None:
        if t.ca_file and not Path(t.ca_file).is_file():
            problems.append(f"{where}.tls_config.ca_file: cannot read {t.ca_file}")

    for i, r in enumerate(alerting.receivers):
        for j, e in enumerate(r.email_configs):
            tls(f"alerting.receivers[{i}].email_configs[{j}]", e.tls_config)
    for i, am in enumerate(alerting.alertmanagers):
        tls(f"alerting.alertmanagers[{i}]", am.tls_config)
    return problems


__all__ = ["check_alerting"]
