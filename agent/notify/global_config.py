"""`alerting.global`: Alertmanager's `global:` block, the defaults of every receiver.

A receiver config that leaves a field out takes the global one, exactly as Alertmanager's
config.Load fills them (`inherit` below, run on the raw YAML before the receivers are
validated, so an inherited value is checked where it lands):

- `http_config`: every HTTP receiver (Slack, webhook, PagerDuty, MS Teams v1/v2,
  Discord, Telegram) without an `http_config` of its own takes the global one, whole
  (the two are not merged). A webhook with chatwatch's older `basic_auth` keeps its own
  credentials and takes the rest (TLS, proxy, redirects).
- `smtp_*`: an email config without `smarthost`, `from`, `hello`, `auth_username`,
  `auth_password` (or its `_file`), `auth_secret` (or its `_file`), `auth_identity`,
  `require_tls` or `tls_config` takes `smtp_<name>` (`from`: `smtp_from`, `tls_config`:
  `smtp_tls_config`).
- `slack_api_url` (or `slack_api_url_file`): a Slack config with neither `api_url` nor
  `api_url_file`.
- `pagerduty_url`: a PagerDuty config with a `routing_key` and no `url` (Alertmanager
  sends Events API v1 configs to the v1 endpoint whatever the URL says, and so does
  chatwatch).
- `telegram_api_url`: a Telegram config without `api_url`.
- `resolve_timeout` is `alerting.resolve_timeout` (giving both is an error).

The defaults of integrations chatwatch does not have (OpsGenie, VictorOps, WeChat,
Webex) are accepted so a pasted alertmanager.yml loads, and `chatwatch check` warns that
they are not used; a receiver of one of those types is an error (receivers and routes
must mean what they say).
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from pydantic import SecretStr, ValidationError, ValidationInfo, field_validator

from agent.notify.common_config import HTTPConfig, TLSConfig
from agent.support.configmodel import Duration, Model, host_port, http_url, secret_http_url

HTTP_CONFIGS = (
    "slack_configs",
    "webhook_configs",
    "pagerduty_configs",
    "msteams_configs",
    "msteamsv2_configs",
    "discord_configs",
    "telegram_configs",
)
"""The receiver configs that take `global.http_config` (email and console have no HTTP
client)."""

EMAIL_DEFAULTS = {
    "smarthost": "smtp_smarthost",
    "from": "smtp_from",
    "hello": "smtp_hello",
    "auth_username": "smtp_auth_username",
    "auth_identity": "smtp_auth_identity",
    "require_tls": "smtp_require_tls",
    "tls_config": "smtp_tls_config",
}
"""email_configs key -> the global key it defaults to (secrets: EMAIL_SECRETS)."""
EMAIL_SECRETS = {"auth_password": "smtp_auth_password", "auth_secret": "smtp_auth_secret"}
"""Secret email_configs keys: a config with neither `x` nor `x_file` takes the global
value or file."""

MISSING_HINTS = {
    ("slack_configs", "api_url"): "slack_api_url",
    ("email_configs", "smarthost"): "smtp_smarthost",
    ("email_configs", "from"): "smtp_from",
}
"""(receiver config list, key) a receiver config needs, and the global key that can
give it to every config of that kind."""

UNUSED = {
    "opsgenie_api_url": "OpsGenie",
    "opsgenie_api_key": "OpsGenie",
    "victorops_api_url": "VictorOps",
    "victorops_api_key": "VictorOps",
    "wechat_api_url": "WeChat",
    "wechat_api_secret": "WeChat",
    "wechat_api_corp_id": "WeChat",
    "webex_api_url": "Webex",
}
"""Global keys of integrations chatwatch does not have: accepted, unused, warned about."""

_CREDENTIALS = {
    "authorization",
    "bearer_token",
    "bearer_token_file",
    "basic_auth",
}


def _host_port(value: str | None) -> str | None:
    return value if value is None else host_port(value)


class GlobalConfig(Model):
    """Alertmanager's `global:` (0.25 and later). Unset keys leave each receiver's own
    default (Alertmanager's) in place."""

    secret_fields: ClassVar[tuple[str, ...]] = (
        "smtp_auth_password",
        "smtp_auth_secret",
        "slack_api_url",
        "opsgenie_api_key",
        "victorops_api_key",
    )
    resolve_timeout: Duration | None = None
    """Alertmanager's spelling of `alerting.resolve_timeout` (give one of the two)."""
    http_config: HTTPConfig | None = None
    """The HTTP client of every receiver that has no `http_config` of its own."""
    smtp_from: str | None = None
    """`from` of every email config without one (a notification template)."""
    smtp_hello: str | None = None
    """`hello` of every email config without one (the receiver's default: `localhost`)."""
    smtp_smarthost: str | None = None
    """`smarthost` (host:port) of every email config without one."""
    smtp_auth_username: str | None = None
    smtp_auth_password: SecretStr | None = None
    smtp_auth_identity: str | None = None
    """PLAIN authentication's identity (authzid)."""
    smtp_auth_secret: SecretStr | None = None
    """CRAM-MD5 authentication's secret."""
    smtp_require_tls: bool | None = None
    """`require_tls` of every email config without one (the receiver's default: true)."""
    smtp_tls_config: TLSConfig | None = None
    """`tls_config` of every email config without one (a key of later Alertmanager versions)."""
    slack_api_url: SecretStr | None = None
    """The webhook of every Slack config with neither `api_url` nor `api_url_file`."""
    pagerduty_url: str | None = None
    """The Events API v2 endpoint of every PagerDuty config without `url`."""
    telegram_api_url: str | None = None
    """The Bot API of every Telegram config without `api_url`."""
    opsgenie_api_url: str | None = None
    """Accepted and unused: chatwatch has no OpsGenie integration (`check` warns)."""
    opsgenie_api_key: SecretStr | None = None
    """Accepted and unused (`check` warns)."""
    victorops_api_url: str | None = None
    """Accepted and unused: chatwatch has no VictorOps integration (`check` warns)."""
    victorops_api_key: SecretStr | None = None
    """Accepted and unused (`check` warns)."""
    wechat_api_url: str | None = None
    """Accepted and unused: chatwatch has no WeChat integration (`check` warns)."""
    wechat_api_secret: SecretStr | None = None
    """Accepted and unused (`check` warns)."""
    wechat_api_corp_id: str | None = None
    """Accepted and unused (`check` warns)."""
    webex_api_url: str | None = None
    """Accepted and unused: chatwatch has no Webex integration (`check` warns)."""

    _smarthost = field_validator("smtp_smarthost")(_host_port)

    @field_validator(
        "pagerduty_url",
        "telegram_api_url",
        "opsgenie_api_url",
        "victorops_api_url",
        "wechat_api_url",
        "webex_api_url",
    )
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)

    @field_validator("slack_api_url")
    @classmethod
    def _secret_url(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None else secret_http_url(value)


def inherit(alerting: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
    """The raw `alerting:` mapping with every receiver config's unset fields filled from
    `global:`, as Alertmanager's config.Load does.

    Keys of `global:` that are themselves invalid are not copied: their error is
    reported once, at `global.<key>`, not repeated at every receiver (one that needed
    the key reports it missing, naming the global key).
    """
    raw = alerting.get("global")
    if not isinstance(raw, dict):
        return alerting
    try:
        GlobalConfig.model_validate(raw, context=info.context)
    except ValidationError as exc:
        bad = {e["loc"][0] for e in exc.errors() if e["loc"]}
        if any(not e["loc"] for e in exc.errors()):
            return alerting  # a `_file` that cannot be read, or both a value and a file
        raw = {k: v for k, v in raw.items() if k not in bad}
    receivers = alerting.get("receivers")
    if not isinstance(receivers, list):
        return alerting
    out = dict(alerting)
    out["receivers"] = [_receiver(r, raw) if isinstance(r, dict) else r for r in receivers]
    return out


def _unset(config: dict[str, Any], key: str) -> bool:
    """Go's zero value: a key left out, null or empty counts as not given."""
    return config.get(key) in (None, "")


def _receiver(receiver: dict[str, Any], g: dict[str, Any]) -> dict[str, Any]:
    receiver = dict(receiver)
    for kind in (*HTTP_CONFIGS, "email_configs"):
        configs = receiver.get(kind)
        if isinstance(configs, list):
            receiver[kind] = [_config(kind, c, g) if isinstance(c, dict) else c for c in configs]
    return receiver


def _config(kind: str, c: dict[str, Any], g: dict[str, Any]) -> dict[str, Any]:
    c = dict(c)
    if kind in HTTP_CONFIGS and c.get("http_config") is None and g.get("http_config"):
        http = copy.deepcopy(g["http_config"])
        if kind == "webhook_configs" and c.get("basic_auth") is not None and isinstance(http, dict):
            http = {k: v for k, v in http.items() if k not in _CREDENTIALS}
        c["http_config"] = http
    if kind == "slack_configs" and _unset(c, "api_url") and _unset(c, "api_url_file"):
        _take_secret(c, "api_url", g, "slack_api_url")
    elif kind == "email_configs":
        for key, global_key in EMAIL_DEFAULTS.items():
            if _unset(c, key) and g.get(global_key) not in (None, ""):
                c[key] = copy.deepcopy(g[global_key])
        for key, global_key in EMAIL_SECRETS.items():
            if _unset(c, key) and _unset(c, f"{key}_file"):
                _take_secret(c, key, g, global_key)
    elif kind == "pagerduty_configs":
        v1 = not _unset(c, "service_key") or not _unset(c, "service_key_file")
        if not v1 and _unset(c, "url") and g.get("pagerduty_url"):
            c["url"] = g["pagerduty_url"]
    elif kind == "telegram_configs" and _unset(c, "api_url") and g.get("telegram_api_url"):
        c["api_url"] = g["telegram_api_url"]
    return c


def _take_secret(c: dict[str, Any], key: str, g: dict[str, Any], global_key: str) -> None:
    if not _unset(g, global_key):
        c[key] = g[global_key]
    elif not _unset(g, f"{global_key}_file"):
        c[f"{key}_file"] = g[f"{global_key}_file"]


def unused_warnings(g: GlobalConfig) -> list[str]:
    """`chatwatch check`'s warnings for global keys no chatwatch integration reads."""
    return [
        f"alerting.global.{key}: chatwatch has no {name} integration; this default is "
        "accepted (as in an alertmanager.yml) and not used"
        for key, name in UNUSED.items()
        if getattr(g, key) is not None
    ]
