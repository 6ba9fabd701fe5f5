"""`pagerduty_configs`: one PagerDuty service (Events API v2, or v1 with `service_key`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator

from agent.notify.common_config import HTTPConfig, IntegrationConfig
from agent.support.configmodel import Model, http_url

EVENTS_V2_URL = "https://events.pagerduty.com/v2/enqueue"
"""Alertmanager's global `pagerduty_url`."""
EVENTS_V1_URL = "https://events.pagerduty.com/generic/2010-04-15/create_event.json"

DEFAULTS = {
    "description": '{{ template "pagerduty.default.description" .}}',
    "client": '{{ template "pagerduty.default.client" . }}',
    "client_url": '{{ template "pagerduty.default.clientURL" . }}',
}
"""Alertmanager's `DefaultPagerdutyConfig` (0.25)."""
DEFAULT_DETAILS = {
    "firing": '{{ template "pagerduty.default.instances" .Alerts.Firing }}',
    "resolved": '{{ template "pagerduty.default.instances" .Alerts.Resolved }}',
    "num_firing": "{{ .Alerts.Firing | len }}",
    "num_resolved": "{{ .Alerts.Resolved | len }}",
}
"""Alertmanager's `DefaultPagerdutyDetails` (0.25); `details` adds to them."""
TEXT_FIELDS = (
    "client",
    "client_url",
    "description",
    "source",
    "severity",
    "class_",
    "component",
    "group",
)
"""The fields that are notification templates, besides details, images and links."""


class PagerdutyLink(Model):
    href: str = ""
    text: str = ""


class PagerdutyImage(Model):
    src: str = ""
    alt: str = ""
    href: str = ""


class PagerdutyConfig(IntegrationConfig):
    """Alertmanager's `pagerduty_config`, field for field.

    Every text field is a notification template. Unset ones render Alertmanager's
    defaults (`pagerduty.default.description` for the summary, `pagerduty.default.client`
    ...); `details` adds to (and may override) the default `firing`, `resolved`,
    `num_firing` and `num_resolved`. The keys are not templates.
    """

    secret_fields: ClassVar[tuple[str, ...]] = ("routing_key", "service_key")
    send_resolved: bool = True
    routing_key: SecretStr | None = None
    """Events API v2 integration key (32 characters)."""
    service_key: SecretStr | None = None
    """Events API v1 integration key; sends to the v1 endpoint."""
    url: str | None = None
    """Defaults to the Events API endpoint of the key given (v2 or v1)."""
    client: str | None = None
    """Default `{{ template "pagerduty.default.client" . }}`."""
    client_url: str | None = None
    """Default `{{ template "pagerduty.default.clientURL" . }}`."""
    description: str | None = None
    """The incident summary (at most 1024 characters are sent); default
    `{{ template "pagerduty.default.description" .}}`."""
    details: dict[str, str] = {}
    images: list[PagerdutyImage] = []
    links: list[PagerdutyLink] = []
    source: str | None = None
    """Defaults to `client`."""
    severity: str = "error"
    """`critical`, `error`, `warning` or `info` (sent as given, as Alertmanager does)."""
    class_: str = Field(default="", alias="class")
    component: str = ""
    group: str = ""
    http_config: HTTPConfig = HTTPConfig()

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)

    @model_validator(mode="after")
    def _one_key(self) -> PagerdutyConfig:
        if self.routing_key is None and self.service_key is None:
            raise ValueError("missing service or routing key in PagerDuty config")
        if self.routing_key is not None and self.service_key is not None:
            raise ValueError("give either routing_key (Events API v2) or service_key (v1)")
        return self

    def template_fields(self) -> Iterator[tuple[str, str]]:
        for key in TEXT_FIELDS:
            text = getattr(self, key)
            if text:
                yield key.rstrip("_"), text
        for key, text in self.details.items():
            yield f"details.{key}", text
        for i, image in enumerate(self.images):
            for key in ("src", "alt", "href"):
                yield f"images[{i}].{key}", getattr(image, key)
        for i, link in enumerate(self.links):
            for key in ("href", "text"):
                yield f"links[{i}].{key}", getattr(link, key)

    def endpoint(self) -> str:
        if self.url is not None:
            return self.url
        return EVENTS_V1_URL if self.service_key is not None else EVENTS_V2_URL
