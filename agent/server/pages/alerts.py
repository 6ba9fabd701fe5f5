"""`/alerts`: every alerting rule with its state and its active alerts; filter by label.

Each alert is marked silenced or inhibited as Alertmanager's API v2 says
(`status.silencedBy`, `status.inhibitedBy` of `GET /api/v2/alerts`), and has a
"Silence" link: /silences with the form prefilled with its labels as matchers.
"""

from __future__ import annotations

import re
import time
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.server.pages.render import Page, Query, first, render
from agent.server.pages.views import AlertView, GroupView, RuleView

if TYPE_CHECKING:
    from agent.server.handlers import ServerHandlers

STATES = ("firing", "pending", "inactive")
ALERTS_PER_RULE = 50
"""Alert rows shown under each rule; the rest are one click away (a filter on its name)."""
ALERTS_PER_PAGE = 1000
"""Alert rows on one page: beyond that a page is slow to make and useless to read."""

_MATCHER = re.compile(
    r"""\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^,]*?)\s*(?:,|$)"""
)


@dataclass(frozen=True, slots=True)
class LabelFilter:
    """One `name op value` of the filter box (Prometheus' matcher syntax, anchored)."""

    name: str
    op: str
    value: str
    regex: re.Pattern[str] | None

    def matches(self, labels: dict[str, str]) -> bool:
        have = labels.get(self.name, "")
        if self.regex is not None:
            hit = self.regex.fullmatch(have) is not None
            return hit if self.op == "=~" else not hit
        return (have == self.value) == (self.op == "=")


def parse_filter(text: str) -> list[LabelFilter]:
    """`severity="critical", route=~"/api/.*"` (braces optional); raises ValueError."""
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    out: list[LabelFilter] = []
    pos = 0
    while pos < len(body) and body[pos:].strip():
        m = _MATCHER.match(body, pos)
        if m is None or m.end() == pos:
            raise ValueError(
                f'cannot read the filter at {body[pos:].strip()!r}: expected name="value", '
                'name!="value", name=~"regex" or name!~"regex", separated by commas'
            )
        name, op, raw = m.group(1), m.group(2), m.group(3)
        value = _unquote(raw)
        regex = None
        if op in ("=~", "!~"):
            try:
                regex = re.compile(value)
            except re.error as exc:
                raise ValueError(f"{name}{op}{raw}: not a regular expression: {exc}") from None
        out.append(LabelFilter(name, op, value, regex))
        pos = m.end()
    return out


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return re.sub(r"\\(.)", r"\1", raw[1:-1])
    return raw


@dataclass(frozen=True, slots=True)
class Muted:
    """What mutes an alert: silence ids, fingerprints of the inhibiting alerts."""

    silenced_by: list[str]
    inhibited_by: list[str]


LabelKey = tuple[tuple[str, str], ...]


def muted_alerts(handlers: ServerHandlers, now: float) -> dict[LabelKey, Muted]:
    """The muted alerts of the notifier (the alerts it was sent: firing ones, routed), by
    label set."""
    out: dict[LabelKey, Muted] = {}
    for a in handlers.alertmanager_api.get_alerts({}, now):
        status = a["status"]
        if status["silencedBy"] or status["inhibitedBy"]:
            key = tuple(sorted(a["labels"].items()))
            out[key] = Muted(status["silencedBy"], status["inhibitedBy"])
    return out


def silence_link(labels: dict[str, str]) -> str:
    """/silences with a form whose matchers are `labels`, each `name="value"`."""
    matchers = ", ".join(f'{name}="{_quote(value)}"' for name, value in sorted(labels.items()))
    return "/silences?" + urllib.parse.urlencode({"filter": "{" + matchers + "}"}) + "#new"


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(slots=True)
class RuleRows:
    """An alerting rule as the page lists it: the alerts that match the filter, and how
    many are left out (by the filter, by the row limits)."""

    rule: RuleView
    alerts: list[AlertView]
    count: int
    """Alerts matching the filter."""
    hidden: int
    """Alerts the filter leaves out."""
    more: int = 0
    """Matching alerts beyond the row limits."""
    more_link: str = ""


def page(handlers: ServerHandlers, query: Query) -> Page:
    states = [s for s in query.get("state", []) if s in STATES] or list(STATES)
    text = first(query, "filter")
    try:
        filters = parse_filter(text)
        error = ""
    except ValueError as exc:
        filters, error = [], str(exc)
    counts = dict.fromkeys(STATES, 0)
    shown: list[tuple[GroupView, list[RuleRows]]] = []
    for group in handlers.rule_groups():
        rows = []
        for rule in group.rules:
            if rule.kind != "alerting":
                continue
            counts[rule.state] += 1
            if rule.state not in states:
                continue
            alerts = [a for a in rule.alerts if all(f.matches(a.labels) for f in filters)]
            if filters and not alerts:
                continue
            rows.append(RuleRows(rule, alerts, len(alerts), len(rule.alerts) - len(alerts)))
        if rows:
            shown.append((group, rows))
    _limit_rows([r for _, rows in shown for r in rows], text)
    now = time.time()
    muted = muted_alerts(handlers, now)
    return render(
        "alerts.html",
        "/alerts",
        groups=shown,
        states=states,
        rule_counts=counts,
        filter=text,
        filter_error=error,
        muted=lambda labels: muted.get(tuple(sorted(labels.items()))),
        silence_link=silence_link,
        now=now,
    )


def _limit_rows(rules: list[RuleRows], filter_text: str) -> None:
    """At most ALERTS_PER_RULE rows per rule (all of a rule's, up to ALERTS_PER_PAGE, when
    it is the only one shown) and ALERTS_PER_PAGE in all; each rule says what it left out
    and links to a page with only its alerts."""
    per_rule = ALERTS_PER_PAGE if len(rules) == 1 else ALERTS_PER_RULE
    budget = ALERTS_PER_PAGE
    for r in rules:
        keep = min(r.count, per_rule, budget)
        budget -= keep
        r.alerts = r.alerts[:keep]
        r.more = r.count - keep
        if r.more:
            name = r.rule.name.replace("\\", "\\\\").replace('"', '\\"')
            rest = filter_text.strip().removeprefix("{").removesuffix("}")
            only = f'alertname="{name}"' + (f", {rest}" if rest else "")
            r.more_link = "/alerts?" + urllib.parse.urlencode({"filter": only})
