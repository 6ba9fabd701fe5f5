"""`slack_configs`: one Slack incoming webhook, with Alertmanager's message fields."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator

from agent.notify.common_config import HTTPConfig, IntegrationConfig
from agent.support.configmodel import Model, secret_http_url

ATTACHMENT_FIELDS = (
    "title",
    "title_link",
    "pretext",
    "text",
    "fallback",
    "callback_id",
    "footer",
    "color",
    "image_url",
    "thumb_url",
    "fields",
    "actions",
    "mrkdwn_in",
    "short_fields",
)
"""Alertmanager's attachment fields: setting any of them sends Alertmanager's message."""

# Alertmanager's defaults (config/notifiers.go DefaultSlackConfig).
DEFAULTS = {
    "color": '{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}',
    "username": '{{ template "slack.default.username" . }}',
    "title": '{{ template "slack.default.title" . }}',
    "title_link": '{{ template "slack.default.titlelink" . }}',
    "icon_emoji": '{{ template "slack.default.iconemoji" . }}',
    "icon_url": '{{ template "slack.default.iconurl" . }}',
    "pretext": '{{ template "slack.default.pretext" . }}',
    "text": '{{ template "slack.default.text" . }}',
    "fallback": '{{ template "slack.default.fallback" . }}',
    "callback_id": '{{ template "slack.default.callbackid" . }}',
    "footer": '{{ template "slack.default.footer" . }}',
}


class SlackField(Model):
    """One entry of `fields` (Slack's attachment fields; title and value are templates)."""

    title: str = Field(min_length=1)
    value: str = Field(min_length=1)
    short: bool | None = None
    """Side by side with the next field; unset: the config's `short_fields`."""


class SlackConfirm(Model):
    text: str = Field(min_length=1)
    title: str = ""
    ok_text: str = ""
    dismiss_text: str = ""


class SlackAction(Model):
    """One entry of `actions` (a button); every text is a template."""

    type: str = Field(min_length=1)
    text: str = Field(min_length=1)
    url: str = ""
    style: str = ""
    name: str = ""
    value: str = ""
    confirm: SlackConfirm | None = None

    @model_validator(mode="after")
    def _target(self) -> SlackAction:
        if not self.url and not self.name:
            raise ValueError("a Slack action needs a url, or a name (and value)")
        if self.url:
            self.name = ""  # as Alertmanager: a link button has no name
        return self


class SlackConfig(IntegrationConfig):
    """A Slack incoming webhook.

    Without any of `ATTACHMENT_FIELDS`, chatwatch's own Block Kit message (alerts listed,
    text from logs escaped); with any of them, Alertmanager's attachment message, every
    field rendered from its template or Alertmanager's default, byte for byte as
    Alertmanager would post it.
    """

    secret_fields: ClassVar[tuple[str, ...]] = ("api_url",)
    api_url: SecretStr
    channel: str | None = None
    username: str | None = None
    icon_emoji: str | None = None
    icon_url: str | None = None
    link_names: bool = False
    title: str | None = None
    title_link: str | None = None
    pretext: str | None = None
    text: str | None = None
    fallback: str | None = None
    callback_id: str | None = None
    footer: str | None = None
    color: str | None = None
    image_url: str | None = None
    thumb_url: str | None = None
    fields: list[SlackField] = []
    actions: list[SlackAction] = []
    mrkdwn_in: list[str] = []
    short_fields: bool = False
    http_config: HTTPConfig = HTTPConfig()
    max_per_second: float = Field(default=1.0, gt=0)
    """Slack allows about one message per second per webhook."""

    _api_url_is_http = field_validator("api_url")(secret_http_url)

    @property
    def alertmanager_style(self) -> bool:
        """True when the config sets any of Alertmanager's attachment fields."""
        return bool(self.model_fields_set & set(ATTACHMENT_FIELDS))

    def template(self, key: str) -> str:
        """The template text of a top-level field: the config's, else Alertmanager's
        default in Alertmanager's message (else empty)."""
        value = getattr(self, key)
        if value is not None:
            return str(value)
        return DEFAULTS.get(key, "") if self.alertmanager_style else ""

    def template_fields(self) -> Iterator[tuple[str, str]]:
        for key in ("channel", "username", "icon_emoji", "icon_url", *ATTACHMENT_FIELDS[:10]):
            text = self.template(key)
            if text:
                yield key, text
        for i, f in enumerate(self.fields):
            yield f"fields[{i}].title", f.title
            yield f"fields[{i}].value", f.value
        for i, a in enumerate(self.actions):
            for key in ("type", "text", "url", "style", "name", "value"):
                yield f"actions[{i}].{key}", getattr(a, key)
            if a.confirm is not None:
                for key in ("text", "title", "ok_text", "dismiss_text"):
                    yield f"actions[{i}].confirm.{key}", getattr(a.confirm, key)
