"""Config of `alerting:`: Alertmanager's route tree and receivers, plus forwarding.

The shape is Alertmanager's (`route`, `receivers[].slack_configs` ...) so a user can paste
what they have. Differences, all documented in docs/notify.md:

- `group_wait` defaults to 0s (Alertmanager: 30s): a sidecar exists to alert fast, and the
  rule engine already hands over whole evaluations at once. `group_interval` 5m and
  `repeat_interval` 4h are Alertmanager's.
- Templates are not Go templates: messages are built by each integration from the alert
  labels and the `summary`/`description` annotations.
- `alertmanagers:` forwards every alert to Alertmanager as Prometheus does (it is not part
  of the route tree), and `console_configs` logs notifications as JSON.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator

from agent.notify.matchers import Matcher, parse_matchers
from agent.support.configmodel import Duration, Model

DEFAULT_GROUP_WAIT = 0.0
DEFAULT_GROUP_INTERVAL = 300.0
DEFAULT_REPEAT_INTERVAL = 4 * 3600.0


class TLSConfig(Model):
    ca_file: str | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False


class BasicAuth(Model):
    secret_fields: ClassVar[tuple[str, ...]] = ("password",)
    username: str
    password: SecretStr = SecretStr("")


class _Integration(Model):
    send_resolved: bool = False
    timeout: Duration = 10.0
    """Per request; a receiver slower than this counts as failed and is retried."""


class SlackConfig(_Integration):
    """A Slack incoming webhook (Block Kit message with a `text` fallback)."""

    secret_fields: ClassVar[tuple[str, ...]] = ("api_url",)
    api_url: SecretStr
    channel: str | None = None
    username: str | None = None
    icon_emoji: str | None = None
    icon_url: str | None = None
    link_names: bool = False
    max_per_second: float = Field(default=1.0, gt=0)
    """Slack allows about one message per second per webhook."""


class WebhookConfig(_Integration):
    """Alertmanager's webhook v4 payload, so existing webhook bridges keep working."""

    secret_fields: ClassVar[tuple[str, ...]] = ("url", "signing_secret")
    send_resolved: bool = True
    url: SecretStr
    max_alerts: int = Field(default=0, ge=0)
    """0 sends every alert; otherwise the first N and `truncatedAlerts` counts the rest."""
    headers: dict[str, str] = {}
    signing_secret: SecretStr | None = None
    """HMAC-SHA256 of the body, sent as `<signature_header>: sha256=<hex>`."""
    signature_header: str = "X-Chatwatch-Signature"
    basic_auth: BasicAuth | None = None


class EmailConfig(_Integration):
    secret_fields: ClassVar[tuple[str, ...]] = ("auth_password",)
    to: str
    from_: str = Field(alias="from")
    smarthost: str
    """host:port; port 465 means implicit TLS, anything else plain SMTP (+ STARTTLS)."""
    hello: str = "localhost"
    auth_username: str | None = None
    auth_password: SecretStr | None = None
    implicit_tls: bool | None = None
    """TLS from the first byte (SMTPS). Default: true when the port is 465."""
    require_tls: bool = True
    """Upgrade with STARTTLS and fail if the server does not offer it (Alertmanager's default)."""
    tls_config: TLSConfig = TLSConfig()
    headers: dict[str, str] = {}

    @field_validator("smarthost")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"expected host:port such as smtp.example.org:587, got {value!r}")
        return value


class ConsoleConfig(_Integration):
    """Logs each notification as one JSON line (for `make run` and debugging)."""

    send_resolved: bool = True


class Receiver(Model):
    name: str = Field(min_length=1)
    slack_configs: list[SlackConfig] = []
    webhook_configs: list[WebhookConfig] = []
    email_configs: list[EmailConfig] = []
    console_configs: list[ConsoleConfig] = []


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


class AlertmanagerTarget(Model):
    """An Alertmanager to forward alerts to (`POST <url>/api/v2/alerts`)."""

    url: str
    timeout: Duration = 10.0
    basic_auth: BasicAuth | None = None
    headers: dict[str, str] = {}
    tls_config: TLSConfig = TLSConfig()

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")


class DeliveryConfig(Model):
    """Retry policy of every receiver queue (chatwatch extension)."""

    initial_backoff: Duration = 1.0
    max_backoff: Duration = 60.0
    queue_capacity: int = Field(default=1000, gt=0)
    """Notifications waiting per integration; past it the oldest is dropped and counted."""


class AlertingConfig(Model):
    route: RouteConfig | None = None
    receivers: list[Receiver] = []
    alertmanagers: list[AlertmanagerTarget] = []
    resend_delay: Duration = 60.0
    """How often firing alerts are re-sent to Alertmanager (Prometheus' resend delay)."""
    resolve_timeout: Duration = 300.0
    """A firing alert the rule engine stops reporting is resolved after this long
    (Alertmanager's global resolve_timeout); covers a restart that missed the resolve."""
    delivery: DeliveryConfig = DeliveryConfig()

    @model_validator(mode="after")
    def _references(self) -> AlertingConfig:
        problems = alerting_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def receiver(self, name: str) -> Receiver:
        return next(r for r in self.receivers if r.name == name)


def alerting_problems(cfg: AlertingConfig) -> list[str]:
    """Receivers referenced by routes must exist; names unique; the root needs a receiver."""
    problems: list[str] = []
    names: set[str] = set()
    for i, r in enumerate(cfg.receivers):
        if r.name in names:
            problems.append(f"receivers[{i}].name: receiver {r.name!r} is defined twice")
        names.add(r.name)
    if cfg.route is None:
        return problems
    if not cfg.route.receiver:
        problems.append("route.receiver: the root route needs a receiver")
    if cfg.route.matchers or cfg.route.match or cfg.route.match_re:
        problems.append("route: the root route must not have matchers (it matches every alert)")

    def walk(route: RouteConfig, where: str) -> None:
        if route.receiver is not None and route.receiver not in names:
            known = ", ".join(sorted(names)) or "none defined"
            problems.append(
                f"{where}.receiver: receiver {route.receiver!r} is not defined in receivers "
                f"(defined: {known})"
            )
        for j, child in enumerate(route.routes):
            walk(child, f"{where}.routes[{j}]")

    walk(cfg.route, "route")
    return problems
