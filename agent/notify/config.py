"""Config of `alerting:`: Alertmanager's route tree and receivers, plus forwarding.

The shape is Alertmanager's (`route`, `receivers[].slack_configs` ...) so a user can paste
what they have. Differences, all documented in docs/notify.md:

- `group_wait` defaults to 0s (Alertmanager: 30s): a sidecar exists to alert fast, and the
  rule engine already hands over whole evaluations at once. `group_interval` 5m and
  `repeat_interval` 4h are Alertmanager's.
- Messages are Alertmanager's notification templates (`templates:` files of `{{ define }}`
  blocks, Alertmanager's default.tmpl, agent/notify/template.py); a Slack config without
  any of Alertmanager's attachment fields sends chatwatch's Block Kit message instead.
- `global:` is Alertmanager's: each receiver config takes the defaults it leaves out
  (agent/notify/global_config.py); `global.resolve_timeout` is `resolve_timeout`.
- `alertmanagers:` forwards every alert to Alertmanager as Prometheus does (it is not part
  of the route tree), and `console_configs` logs notifications as JSON.

Each integration's own model lives beside its code (`slack/config.py`, `email/config.py`
...); this module composes them into receivers and routes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from agent.notify.alertmanager.config import AlertmanagerTarget
from agent.notify.common_config import HTTPConfig, TLSConfig
from agent.notify.console.config import ConsoleConfig
from agent.notify.discord.config import DiscordConfig
from agent.notify.email.config import EmailConfig
from agent.notify.global_config import MISSING_HINTS, GlobalConfig, inherit, unused_warnings
from agent.notify.inhibit import InhibitRuleConfig
from agent.notify.matchers import Matcher, parse_matchers
from agent.notify.msteams.config import MSTeamsConfig
from agent.notify.msteamsv2.config import MSTeamsV2Config
from agent.notify.pagerduty.config import PagerdutyConfig
from agent.notify.slack.config import SlackConfig
from agent.notify.telegram.config import TelegramConfig
from agent.notify.template import TemplateError, TemplateSet
from agent.notify.timeinterval import TimeIntervalsConfig
from agent.notify.webhook.config import WebhookConfig
from agent.support.configmodel import Duration, Model

DEFAULT_GROUP_WAIT = 0.0
DEFAULT_GROUP_INTERVAL = 300.0
DEFAULT_REPEAT_INTERVAL = 4 * 3600.0

UNSUPPORTED_RECEIVERS = {
    "opsgenie_configs": "OpsGenie",
    "victorops_configs": "VictorOps",
    "wechat_configs": "WeChat",
    "webex_configs": "Webex",
    "pushover_configs": "Pushover",
    "sns_configs": "Amazon SNS",
    "jira_configs": "Jira",
    "rocketchat_configs": "Rocket.Chat",
    "incidentio_configs": "incident.io",
    "mattermost_configs": "Mattermost",
}
"""Alertmanager's receiver types chatwatch does not have: an error that says so."""


class Receiver(Model):
    name: str = Field(min_length=1)
    slack_configs: list[SlackConfig] = []
    webhook_configs: list[WebhookConfig] = []
    email_configs: list[EmailConfig] = []
    console_configs: list[ConsoleConfig] = []
    pagerduty_configs: list[PagerdutyConfig] = []
    msteams_configs: list[MSTeamsConfig] = []
    msteamsv2_configs: list[MSTeamsV2Config] = []
    discord_configs: list[DiscordConfig] = []
    telegram_configs: list[TelegramConfig] = []

    @model_validator(mode="before")
    @classmethod
    def _unsupported(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, name in UNSUPPORTED_RECEIVERS.items():
                if key in data:
                    raise ValueError(
                        f"{key}: chatwatch has no {name} integration (it sends to Slack, "
                        "webhooks, email, PagerDuty, MS Teams, Discord and Telegram)"
                    )
        return data


class RouteConfig(Model):
    """One node of the routing tree. Unset options are inherited from the parent."""

    receiver: str | None = None
    group_by: list[str] | None = None
    """`['...']` groups by all labels (every alert its own group)."""
    matchers: list[str] = []
    match: dict[str, str] = {}
    """Legacy Alertmanager equality matchers."""
    match_re: dict[str, str] = {}
    """Legacy Alertmanager regex matchers."""
    continue_: bool = Field(default=False, alias="continue")
    routes: list[RouteConfig] = []
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    mute_time_intervals: list[str] = []
    """Names of `time_intervals` during which this route sends nothing (not inherited)."""
    active_time_intervals: list[str] = []
    """Names of `time_intervals` outside which this route sends nothing (not inherited)."""

    @field_validator("matchers")
    @classmethod
    def _parse(cls, values: list[str]) -> list[str]:
        for v in values:
            parse_matchers(v)
        return values

    @field_validator("match_re")
    @classmethod
    def _regex(cls, values: dict[str, str]) -> dict[str, str]:
        for k, v in values.items():
            Matcher.make(k, "=~", v)
        return values

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, values: list[str] | None) -> list[str] | None:
        if values and "..." in values and len(values) > 1:
            raise ValueError("'...' groups by all labels and cannot be combined with other names")
        if values and len(set(values)) != len(values):
            raise ValueError("duplicated label name")
        return values

    @field_validator("group_interval")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("group_interval must be greater than 0")
        return value

    def all_matchers(self) -> list[Matcher]:
        out = [m for text in self.matchers for m in parse_matchers(text)]
        out += [Matcher.make(k, "=", v) for k, v in sorted(self.match.items())]
        out += [Matcher.make(k, "=~", v) for k, v in sorted(self.match_re.items())]
        return sorted(out, key=lambda m: (m.name, m.op, m.value))


class DeliveryConfig(Model):
    """Retry policy of every receiver queue (chatwatch extension)."""

    initial_backoff: Duration = 1.0
    max_backoff: Duration = 60.0
    queue_capacity: int = Field(default=1000, gt=0)
    """Notifications waiting per integration; past it the oldest is dropped and counted."""


class AlertingConfig(Model):
    global_: GlobalConfig = Field(default=GlobalConfig(), alias="global")
    """Alertmanager's `global:`: defaults for every receiver config (docs/notify.md)."""
    route: RouteConfig | None = None
    receivers: list[Receiver] = []
    alertmanagers: list[AlertmanagerTarget] = []
    resend_delay: Duration = 60.0
    """How often firing alerts are re-sent to Alertmanager (Prometheus' resend delay)."""
    resolve_timeout: Duration = 300.0
    """A firing alert the rule engine stops reporting is resolved after this long
    (Alertmanager's global resolve_timeout); covers a restart that missed the resolve."""
    delivery: DeliveryConfig = DeliveryConfig()
    inhibit_rules: list[InhibitRuleConfig] = []
    time_intervals: list[TimeIntervalsConfig] = []
    mute_time_intervals: list[TimeIntervalsConfig] = []
    """Alertmanager's deprecated name for `time_intervals` (same shape, same namespace)."""
    templates: list[str] = []
    """Files of `{{ define }}`d notification templates (globs, relative to the config's
    folder), read after Alertmanager's default templates."""
    _template_set: TemplateSet | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _global_defaults(cls, data: Any, info: ValidationInfo) -> Any:
        """Fill each receiver config's unset fields from `global:` before validation, as
        Alertmanager's config.Load does, so an inherited value is checked where it lands."""
        return inherit(data, info) if isinstance(data, dict) else data

    @model_validator(mode="after")
    def _global_resolve_timeout(self) -> AlertingConfig:
        given = self.global_.resolve_timeout
        if given is None:
            return self
        if "resolve_timeout" in self.model_fields_set:
            raise ValueError(
                "global.resolve_timeout and resolve_timeout are the same setting: give one "
                "of them (global.resolve_timeout is Alertmanager's spelling)"
            )
        self.resolve_timeout = given
        return self

    @model_validator(mode="after")
    def _references(self) -> AlertingConfig:
        problems = alerting_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _load_templates(self, info: ValidationInfo) -> AlertingConfig:
        """Read the template files and check every templated field now, not at 3 a.m."""
        base = (info.context or {}).get("base_dir")
        try:
            self._template_set = TemplateSet.load(self.templates, Path(base) if base else None)
        except TemplateError as exc:
            problems: list[tuple[tuple[str | int, ...], str]] = [(("templates",), str(exc))]
        else:
            problems = template_problems(self, self._template_set)
        if problems:
            raise ValidationError.from_exception_data(
                "AlertingConfig",
                [
                    InitErrorDetails(
                        type=PydanticCustomError("value_error", "{problem}", {"problem": p}),
                        loc=loc,
                        input=None,
                    )
                    for loc, p in problems
                ],
            )
        return self

    @property
    def template_set(self) -> TemplateSet:
        """The notification templates every integration renders with."""
        if self._template_set is None:
            self._template_set = TemplateSet.load(self.templates)
        return self._template_set

    def receiver(self, name: str) -> Receiver:
        return next(r for r in self.receivers if r.name == name)

    def all_time_intervals(self) -> list[TimeIntervalsConfig]:
        return self.time_intervals + self.mute_time_intervals


def template_problems(
    cfg: AlertingConfig, templates: TemplateSet
) -> list[tuple[tuple[str | int, ...], str]]:
    """(key path, problem) of every templated field of every receiver that cannot render:
    `receivers[0].slack_configs[1].title`: `line 1, column 12: function 'tolower' not
    defined`."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for i, r in enumerate(cfg.receivers):
        for key in type(r).model_fields:
            configs = getattr(r, key)
            if not key.endswith("_configs") or not isinstance(configs, list):
                continue
            for j, c in enumerate(configs):
                fields = getattr(c, "template_fields", None)
                if fields is None:
                    continue
                for field, text in fields():
                    try:
                        templates.check(text)
                    except TemplateError as exc:
                        loc = ("receivers", i, key, j, *_key_path(field))
                        problems.append((loc, str(exc)))
    return problems


def _key_path(text: str) -> tuple[str | int, ...]:
    """`fields[0].title` as ("fields", 0, "title")."""
    out: list[str | int] = []
    for part in text.split("."):
        name, _, index = part.partition("[")
        out.append(name)
        if index:
            out.append(int(index.rstrip("]")))
    return tuple(out)


def alerting_problems(cfg: AlertingConfig) -> list[str]:
    """Receivers referenced by routes must exist; names unique; the root needs a receiver."""
    problems: list[str] = []
    names: set[str] = set()
    for i, r in enumerate(cfg.receivers):
        if r.name in names:
            problems.append(f"receivers[{i}].name: receiver {r.name!r} is defined twice")
        names.add(r.name)
    intervals: set[str] = set()
    for key, entries in (
        ("time_intervals", cfg.time_intervals),
        ("mute_time_intervals", cfg.mute_time_intervals),
    ):
        for i, ti in enumerate(entries):
            if ti.name in intervals:
                problems.append(f"{key}[{i}].name: time interval {ti.name!r} is defined twice")
            intervals.add(ti.name)
    if cfg.route is None:
        return problems
    if not cfg.route.receiver:
        problems.append("route.receiver: the root route needs a receiver")
    if cfg.route.matchers or cfg.route.match or cfg.route.match_re:
        problems.append("route: the root route must not have matchers (it matches every alert)")
    for key in ("mute_time_intervals", "active_time_intervals"):
        if getattr(cfg.route, key):
            problems.append(f"route.{key}: the root route must not have any (as in Alertmanager)")

    def walk(route: RouteConfig, where: str) -> None:
        if route.receiver is not None and route.receiver not in names:
            known = ", ".join(sorted(names)) or "none defined"
            problems.append(
                f"{where}.receiver: receiver {route.receiver!r} is not defined in receivers "
                f"(defined: {known})"
            )
        for key in ("mute_time_intervals", "active_time_intervals"):
            for name in getattr(route, key):
                if name not in intervals:
                    problems.append(
                        f"{where}.{key}: time interval {name!r} is not defined in time_intervals"
                    )
        for j, child in enumerate(route.routes):
            walk(child, f"{where}.routes[{j}]")

    walk(cfg.route, "route")
    return problems


def missing_hint(loc: tuple[str | int, ...]) -> str:
    """For a required key missing at `loc` (inside `alerting`) that `global:` can give,
    the hint naming it: ` (here, or for every such config as alerting.global.smtp_from)`."""
    names = [p for p in loc if isinstance(p, str)]
    if len(names) >= 2:
        global_key = MISSING_HINTS.get((names[-2], names[-1]))
        if global_key:
            return f" (here, or for every such config as alerting.global.{global_key})"
    return ""


def alerting_warnings(alerting: AlertingConfig) -> list[str]:
    """What `chatwatch check` warns about in `alerting:`: global defaults nothing reads."""
    return unused_warnings(alerting.global_)


def check_alerting(alerting: AlertingConfig) -> list[str]:
    """What `chatwatch check` adds for `alerting:`: what the models cannot see without the
    filesystem.

    Route/receiver cross-references are checked by the models themselves (a route naming
    an undefined receiver fails `load`, as in Alertmanager); this adds the files the
    receivers will need at send time, so a missing CA bundle is found now and not at 3 a.m.
    """
    problems = [f"alerting.{p}" for p in alerting_problems(alerting)]

    def tls(where: str, t: TLSConfig) -> None:
        for key in ("ca_file", "cert_file", "key_file"):
            path = getattr(t, key, None)
            if path and not Path(path).is_file():
                problems.append(f"{where}.tls_config.{key}: cannot read {path}")

    for i, r in enumerate(alerting.receivers):
        for j, e in enumerate(r.email_configs):
            tls(f"alerting.receivers[{i}].email_configs[{j}]", e.tls_config)
        for kind in type(r).model_fields:
            if not kind.endswith("_configs"):
                continue
            for j, c in enumerate(getattr(r, kind)):
                http = getattr(c, "http_config", None)
                if isinstance(http, HTTPConfig):
                    tls(f"alerting.receivers[{i}].{kind}[{j}].http_config", http.tls_config)
    for i, am in enumerate(alerting.alertmanagers):
        tls(f"alerting.alertmanagers[{i}]", am.tls_config)
    return problems
