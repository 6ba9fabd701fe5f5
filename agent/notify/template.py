"""Notification templates: Alertmanager's `templates:`, its data and its default.tmpl.

A receiver field such as Slack's `title: '{{ template "slack.default.title" . }}'` is a Go
template rendered against Alertmanager's notification data, with the `{{ define }}`d
templates of Alertmanager's default.tmpl (shipped as agent/notify/default.tmpl) and of the
user's `alerting.templates` files. It is the engine rule annotations use
(agent/alerting/template/), in its second dialect: Alertmanager's functions (`toUpper`,
`join`, `reReplaceAll`, `date`, `tz`, `since`, ...), sub-templates, and methods such as
`.CommonLabels.Remove .GroupLabels.Names`.

The API, for every integration:

- `TemplateSet.load(globs, base_dir)`: the default templates, then the files the globs
  match (later definitions replace earlier ones, as in Alertmanager). Raises
  `TemplateError` naming the file, line and column. `TemplateSet.default()` is the
  defaults alone.
- `templates.check(text)`: parse a field's text now (config load, `chatwatch check`);
  raises `TemplateError`, also for a `{{ template "x" }}` that nothing defines.
- `template_data(notification, now=...)`: Alertmanager's `.` for one notification
  (`.Receiver`, `.Status`, `.Alerts` with `.Firing`/`.Resolved`, `.GroupLabels`,
  `.CommonLabels`, `.CommonAnnotations`, `.ExternalURL`).
- `templates.render(text, data, html=False) -> str`: raises `TemplateError`. `html=True`
  escapes what every action prints, as Go's html/template does for values in text and
  quoted attributes (`safeHtml` opts out), and drops HTML comments from the text.
  `html_escape` is that escaping alone.
- `templates.renderer(data, integration)`: a `Renderer` for building one message. Its
  `text(field, text, fallback)` never raises: a failing field renders `fallback` (the
  default template), the error is logged and counted (`on_error`), and the integration
  adds `renderer.error_lines()` to the message so nobody receives an empty or silently
  wrong message (alertmanager#4118 is what happens otherwise).
"""

from __future__ import annotations

import datetime
import glob
import html
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from agent.alerting.template.exec import Exec, TemplateError
from agent.alerting.template.funcs import AM_FUNCS, GoDuration, GoTime, GoValue
from agent.alerting.template.parse import (
    Control,
    Dialect,
    Node,
    ParseError,
    TemplateCall,
    parse_templates,
)
from agent.notify.notification import Notification, NotifiedAlert

__all__ = [
    "DEFAULT_TEMPLATES",
    "KV",
    "NOTIFICATION",
    "Alert",
    "Alerts",
    "Data",
    "Pair",
    "Pairs",
    "Renderer",
    "TemplateError",
    "TemplateSet",
    "quote_meta",
    "template_data",
]

log = logging.getLogger("chatwatch.notify")

DEFAULT_TEMPLATES = Path(__file__).with_name("default.tmpl")

_KV_FIELDS = {
    "SortedPairs": "pairs",
    "Names": "list",
    "Values": "list",
    "Remove": "kv",
    "*": "string",
}

NOTIFICATION = Dialect(
    funcs=AM_FUNCS,
    data_funcs={"since": 1},
    unsupported={},
    fields={
        "ntf": {
            "Receiver": "string",
            "Status": "string",
            "Alerts": "alerts",
            "GroupLabels": "kv",
            "CommonLabels": "kv",
            "CommonAnnotations": "kv",
            "ExternalURL": "string",
        },
        "alerts": {"Firing": "alertslice", "Resolved": "alertslice"},
        "alertslice": {},
        "kv": _KV_FIELDS,
        "pairs": {"Names": "list", "Values": "list"},
        "list": {},
    },
    predefined={"$": "ntf"},
    dot="ntf",
    sub_templates=True,
    describe={
        "ntf": "notification templates have .Receiver, .Status, .Alerts, .GroupLabels, "
        ".CommonLabels, .CommonAnnotations, .ExternalURL",
    },
)
"""Alertmanager's notification templates, as a dialect of the template engine."""


# ---------------------------------------------------------------------------------------
# The data (Alertmanager's template.Data and its types)


class KV(dict[str, str], GoValue):
    """Alertmanager's template.KV: a label set with SortedPairs, Names, Values, Remove.

    Printed as Go prints a map (`map[alertname:X severity:page]`): Alertmanager 0.25's
    KV has no String method (later versions print `alertname=X, severity=page`)."""

    go_type = "template.KV"
    methods = ("SortedPairs", "Names", "Values", "Remove")

    def go_get(self, name: str, args: list[Any]) -> Any:
        if name in self.methods:
            return getattr(self, name)(*args)
        if args:
            raise ValueError(f"{name} is not a method but has arguments")
        return self.get(name, "")  # missingkey=zero

    def SortedPairs(self) -> Pairs:
        """Sorted by name, with `alertname` first."""
        keys = sorted(self, key=lambda k: (k != "alertname", k))
        return Pairs(Pair(k, self[k]) for k in keys)

    def Names(self) -> list[str]:
        return self.SortedPairs().Names()

    def Values(self) -> list[str]:
        return self.SortedPairs().Values()

    def Remove(self, keys: Any) -> KV:
        if not isinstance(keys, list | tuple):
            raise ValueError(f"wrong type for value; expected []string; got {type(keys).__name__}")
        drop = set(keys)
        return KV({k: v for k, v in self.items() if k not in drop})


class Pair(GoValue):
    go_type = "template.Pair"
    fields = ("Name", "Value")

    def __init__(self, name: str, value: str) -> None:
        self.Name = name
        self.Value = value

    def go_string(self) -> str:
        return "{" + self.Name + " " + self.Value + "}"


class Pairs(list[Pair], GoValue):
    go_type = "template.Pairs"
    methods = ("Names", "Values")

    def Names(self) -> list[str]:
        return [p.Name for p in self]

    def Values(self) -> list[str]:
        return [p.Value for p in self]


class Alert(GoValue):
    """One alert of a notification (Alertmanager's template.Alert)."""

    go_type = "template.Alert"
    fields = (
        "Status",
        "Labels",
        "Annotations",
        "StartsAt",
        "EndsAt",
        "GeneratorURL",
        "Fingerprint",
    )

    def __init__(self, a: NotifiedAlert, value: Callable[[str], str] = str) -> None:
        self.Status = a.status
        self.Labels = KV({k: value(v) for k, v in a.labels.items()})
        self.Annotations = KV({k: value(v) for k, v in a.annotations.items()})
        self.StartsAt = GoTime.from_unix(a.starts_at)
        self.EndsAt = GoTime.from_unix(a.ends_at)
        self.GeneratorURL = a.generator_url
        self.Fingerprint = a.fingerprint


class Alerts(list[Alert], GoValue):
    go_type = "template.Alerts"
    methods = ("Firing", "Resolved")

    def Firing(self) -> list[Alert]:
        return [a for a in self if a.Status == "firing"]

    def Resolved(self) -> list[Alert]:
        return [a for a in self if a.Status == "resolved"]


class Data(GoValue):
    """The `.` of a notification template (Alertmanager's template.Data)."""

    go_type = "*template.Data"
    fields = (
        "Receiver",
        "Status",
        "Alerts",
        "GroupLabels",
        "CommonLabels",
        "CommonAnnotations",
        "ExternalURL",
    )

    def __init__(
        self,
        receiver: str,
        status: str,
        alerts: Alerts,
        group_labels: KV,
        common_labels: KV,
        common_annotations: KV,
        external_url: str,
        now: float,
    ) -> None:
        self.Receiver = receiver
        self.Status = status
        self.Alerts = alerts
        self.GroupLabels = group_labels
        self.CommonLabels = common_labels
        self.CommonAnnotations = common_annotations
        self.ExternalURL = external_url
        self.now = now
        """What `since` measures from (the rendering's clock, not the reader's)."""


_META = re.compile(r"([\\.+*?()|\[\]{}^$])")


def quote_meta(s: str) -> str:
    """Go's regexp.QuoteMeta, which Alertmanager applies to `.Receiver`."""
    return _META.sub(r"\\\1", s)


def template_data(
    notification: Notification,
    receiver: str | None = None,
    external_url: str | None = None,
    now: float | None = None,
    value: Callable[[str], str] = str,
) -> Data:
    """Alertmanager's template data for one notification. `receiver` and `external_url`
    default to the notification's own; `now` (Unix seconds) is what `since` measures
    from, the notification's creation time unless given. `value` is applied to every
    label and annotation value (text from logs): the escaping of where the message lands,
    for integrations whose format has one that Alertmanager leaves out."""
    n = notification

    def kv(d: Mapping[str, str]) -> KV:
        return KV({k: value(v) for k, v in d.items()})

    return Data(
        receiver=quote_meta(n.receiver if receiver is None else receiver),
        status=n.status,
        alerts=Alerts(Alert(a, value) for a in n.alerts),
        group_labels=kv(n.group_labels),
        common_labels=kv(n.common_labels),
        common_annotations=kv(n.common_annotations),
        external_url=n.external_url if external_url is None else external_url,
        now=n.created_at if now is None else now,
    )


# ---------------------------------------------------------------------------------------
# The template set


def html_escape(text: str) -> str:
    """html/template's escaping of a value in HTML text or a quoted attribute."""
    return (
        html.escape(text, quote=True)
        .replace("&#x27;", "&#39;")
        .replace("&quot;", "&#34;")
        .replace("+", "&#43;")
        .replace("\x00", "\ufffd")
    )


_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)

# Attributes html/template treats as URLs (its attrType table, and any name holding
# src, uri or url), open and unterminated at the end of the output so far.
_URL_ATTR = re.compile(
    r"\s(?:href|src|action|cite|data|formaction|background|poster|codebase|longdesc"
    r"|manifest|usemap|icon|profile|[\w-]*(?:src|uri|url)[\w-]*)\s*=\s*([\"'])([^\"'<>]*)$",
    re.IGNORECASE,
)
_URL_KEEP = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!#$&*+,/:;=?@[]%"
)


def _html_value(text: str, out: list[str]) -> str:
    """What an action prints into the HTML of an email, escaped as html/template escapes
    it where it lands: in a URL attribute, a URL that does not start with http, https or
    mailto becomes `#ZgotmplZ` (no `javascript:` links from logs) and the URL is
    normalised (`%xx` for bytes a URL cannot hold); then HTML escaping."""
    tail = "".join(out[-8:])[-2000:]
    m = _URL_ATTR.search(tail)
    if m is not None:
        if not m.group(2) and not _safe_url(text):
            text = "#ZgotmplZ"
        text = "".join(
            ch if ch in _URL_KEEP else "".join(f"%{b:02x}" for b in ch.encode()) for ch in text
        )
    return html_escape(text)


def _safe_url(url: str) -> bool:
    scheme, colon, _ = url.partition(":")
    if not colon or "/" in scheme:
        return True  # relative
    return scheme.lower() in ("http", "https", "mailto")


def _drop_html_comments(text: str) -> str:
    """html/template removes HTML comments from a template's text."""
    return _HTML_COMMENT.sub("", text) if "<!--" in text else text


@dataclass(slots=True)
class _Parsed:
    nodes: list[Node]
    defines: dict[str, list[Node]]


class TemplateSet:
    """The `{{ define }}`d templates every notification field can call."""

    def __init__(self, defines: Mapping[str, list[Node]], files: Sequence[str] = ()) -> None:
        self.defines = dict(defines)
        self.files = list(files)
        """The user's template files, in the order they were read."""
        self._cache: dict[str, _Parsed] = {}
        self.on_error: Callable[[str, str, str], None] = _log_error
        """Called with (integration, field, error) when a field fails at send time; the
        notifier points it at its log and its counter."""

    def __deepcopy__(self, memo: dict[int, Any]) -> TemplateSet:
        # immutable once loaded; copying it would copy the notifier `on_error` points at
        return self

    @classmethod
    def default(cls) -> TemplateSet:
        return cls(_default_defines())

    @classmethod
    def load(cls, globs: Iterable[str] = (), base_dir: Path | None = None) -> TemplateSet:
        """The default templates, then every file the globs match (relative to base_dir),
        sorted within each glob, later definitions replacing earlier ones."""
        defines = dict(_default_defines())
        files: list[str] = []
        base = base_dir or Path.cwd()
        for pattern in globs:
            full = pattern if Path(pattern).is_absolute() else str(base / pattern)
            for path in sorted(glob.glob(full)):
                try:
                    text = Path(path).read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                    raise TemplateError(f"{path}: cannot read: {reason}") from None
                try:
                    _, found = parse_templates(text, NOTIFICATION)
                except ParseError as exc:
                    raise TemplateError(f"{path}: {exc}") from None
                _merge(defines, found)
                files.append(path)
        # A definition calling an undefined template is an error only if a field uses it
        # (`check`): Alertmanager accepts unused ones, and so must a copied config.
        return cls(defines, files)

    def check(self, text: str) -> None:
        """Raise TemplateError if `text` cannot render: bad syntax, an unknown function or
        field, or a `{{ template }}` that is not defined."""
        parsed = self._parse(text)
        missing = self._undefined(parsed.nodes, set(), parsed.defines)
        if missing:
            raise TemplateError(f'template "{missing}" not defined')

    def render(self, text: str, data: Data, html: bool = False) -> str:
        """Render one field's text; raises TemplateError."""
        if "{{" not in text:
            return text
        parsed = self._parse(text)
        defines = {**self.defines, **parsed.defines} if parsed.defines else self.defines
        variables: dict[str, Any] = {"$": data}
        now = datetime.datetime.fromtimestamp(data.now, datetime.UTC)

        def since(t: Any) -> GoDuration:
            if not isinstance(t, GoTime):
                raise ValueError("wrong type for value; expected time.Time")
            return GoTime(now).Sub(t)

        run = Exec(
            variables,
            AM_FUNCS,
            defines,
            data_funcs={"since": since},
            escape=_html_value if html else None,
            text_filter=_drop_html_comments if html else None,
        )
        out: list[str] = []
        try:
            run.run(parsed.nodes, data, out)
        except RecursionError:
            raise TemplateError("templates call each other too deeply") from None
        return "".join(out)

    def renderer(self, data: Data, integration: str) -> Renderer:
        return Renderer(self, data, integration)

    # -- internals -----------------------------------------------------------------------

    def _parse(self, text: str) -> _Parsed:
        parsed = self._cache.get(text)
        if parsed is None:
            try:
                nodes, defines = parse_templates(text, NOTIFICATION)
            except ParseError as exc:
                raise TemplateError(str(exc)) from None
            if len(self._cache) > 1000:
                self._cache.clear()
            parsed = self._cache[text] = _Parsed(nodes, defines)
        return parsed

    def _undefined(
        self,
        nodes: list[Node],
        seen: set[str],
        local: Mapping[str, list[Node]] | None = None,
    ) -> str | None:
        """The first template name called (directly or through others) but not defined."""
        for name in _calls(nodes):
            if name in seen:
                continue
            seen.add(name)
            body = (local or {}).get(name, self.defines.get(name))
            if body is None:
                return name
            missing = self._undefined(body, seen, local)
            if missing:
                return missing
        return None


class Renderer:
    """Renders the fields of one message; records failures instead of raising."""

    def __init__(self, templates: TemplateSet, data: Data, integration: str) -> None:
        self.templates = templates
        self.data = data
        self.integration = integration
        self.errors: list[tuple[str, str]] = []
        """(field, error) of every field that failed."""

    def text(self, field: str, text: str, fallback: str = "", html: bool = False) -> str:
        """`text` rendered; if it fails, `fallback` rendered (a default template, or "")."""
        try:
            return self.templates.render(text, self.data, html)
        except TemplateError as exc:
            self.errors.append((field, str(exc)))
            self.templates.on_error(self.integration, field, str(exc))
        if not fallback:
            return ""
        try:
            return self.templates.render(fallback, self.data, html)
        except TemplateError:
            return ""

    def error_lines(self) -> list[str]:
        """One visible line per failed field, for the message itself."""
        return [f"chatwatch: template error in {field}: {error}" for field, error in self.errors]


def _log_error(integration: str, field: str, error: str) -> None:
    log.warning(
        "notification template failed; sent with an error line",
        extra={"integration": integration, "field": field, "error": error},
    )


def _calls(nodes: list[Node]) -> Iterable[str]:
    for node in nodes:
        if isinstance(node, TemplateCall):
            yield node.name
        elif isinstance(node, Control):
            yield from _calls(node.body)
            yield from _calls(node.else_body)


def _merge(defines: dict[str, list[Node]], found: Mapping[str, list[Node]]) -> None:
    """Go's AddParseTree: a later definition replaces an earlier one, unless its body is
    empty (white space only)."""
    for name, body in found.items():
        empty = all(getattr(n, "text", "x").strip() == "" for n in body)
        if empty and name in defines:
            continue
        defines[name] = body


@cache
def _default_defines() -> dict[str, list[Node]]:
    _, defines = parse_templates(DEFAULT_TEMPLATES.read_text(encoding="utf-8"), NOTIFICATION)
    return defines
