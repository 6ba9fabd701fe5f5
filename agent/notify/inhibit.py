"""Inhibition (Alertmanager's inhibit/inhibit.go): a firing alert mutes others.

An inhibit rule mutes an alert matching its target matchers while some *firing* alert
matches its source matchers and has the same value (an absent label counts as empty) for
every label in `equal`. An alert that matches both sides does not inhibit itself, nor
anything else matching both sides: when the muted candidate matches the source too, only
source alerts that do not match the target count (Alertmanager's excludeTwoSidedMatch).

The inhibitor reads the alerts the dispatcher holds (every alert the rule engine reported
is routed at least to the root, so it is there), and answers with the fingerprint of the
first inhibiting alert, as Alertmanager's `inhibitedBy` shows one. Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from pydantic import field_validator

from agent.notify.matchers import Matcher, parse_matchers, valid_label_name
from agent.support.configmodel import Model


class HeldAlert(Protocol):
    """What the inhibitor reads of an alert the dispatcher holds (dispatcher.StoredAlert)."""

    @property
    def labels(self) -> dict[str, str]: ...

    @property
    def fingerprint(self) -> str: ...

    @property
    def ends_at(self) -> float: ...

    def resolved(self, now: float) -> bool: ...


class InhibitRuleConfig(Model):
    source_matchers: list[str] = []
    target_matchers: list[str] = []
    equal: list[str] = []
    source_match: dict[str, str] = {}
    """Deprecated Alertmanager form: equality matchers."""
    source_match_re: dict[str, str] = {}
    """Deprecated Alertmanager form: regex matchers."""
    target_match: dict[str, str] = {}
    target_match_re: dict[str, str] = {}

    @field_validator("source_matchers", "target_matchers")
    @classmethod
    def _parse(cls, values: list[str]) -> list[str]:
        for v in values:
            parse_matchers(v)
        return values

    @field_validator("source_match_re", "target_match_re")
    @classmethod
    def _regex(cls, values: dict[str, str]) -> dict[str, str]:
        for k, v in values.items():
            Matcher.make(k, "=~", v)
        return values

    @field_validator("equal")
    @classmethod
    def _equal(cls, values: list[str]) -> list[str]:
        for v in values:
            if not valid_label_name(v):
                raise ValueError(f"{v!r} is not a valid label name")
        return values


@dataclass(frozen=True, slots=True)
class InhibitRule:
    source: list[Matcher]
    target: list[Matcher]
    equal: tuple[str, ...]

    @classmethod
    def build(cls, cfg: InhibitRuleConfig) -> InhibitRule:
        def side(texts: list[str], eq: dict[str, str], regex: dict[str, str]) -> list[Matcher]:
            out = [m for text in texts for m in parse_matchers(text)]
            out += [Matcher.make(k, "=", v) for k, v in sorted(eq.items())]
            return out + [Matcher.make(k, "=~", v) for k, v in sorted(regex.items())]

        return cls(
            source=side(cfg.source_matchers, cfg.source_match, cfg.source_match_re),
            target=side(cfg.target_matchers, cfg.target_match, cfg.target_match_re),
            equal=tuple(cfg.equal),
        )


def _matches(matchers: list[Matcher], labels: dict[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


class Inhibitor:
    """The inhibiting side of the mute stage (a `Muter`)."""

    def __init__(self, rules: list[InhibitRule], alerts: Callable[[], Iterable[HeldAlert]]) -> None:
        self.rules = rules
        self.alerts = alerts

    def mutes(self, labels: dict[str, str], now: float) -> list[str]:
        for rule in self.rules:
            if not _matches(rule.target, labels):
                continue
            two_sided = _matches(rule.source, labels)
            by = self._source(rule, labels, two_sided, now)
            if by is not None:
                return [by]
        return []

    def _source(
        self, rule: InhibitRule, labels: dict[str, str], two_sided: bool, now: float
    ) -> str | None:
        found: str | None = None
        for a in self.alerts():
            if a.resolved(now) or not _matches(rule.source, a.labels):
                continue
            if any(a.labels.get(n, "") != labels.get(n, "") for n in rule.equal):
                continue
            if two_sided and _matches(rule.target, a.labels):
                continue
            if found is None or a.fingerprint < found:  # stable across calls
                found = a.fingerprint
        return found

    def next_end(self, now: float) -> float | None:
        """The earliest end of a firing source alert (its resolve_timeout): the run loop
        looks again then. An explicit resolve wakes it anyway."""
        ends = [
            a.ends_at
            for a in self.alerts()
            if not a.resolved(now) and any(_matches(r.source, a.labels) for r in self.rules)
        ]
        return min(ends, default=None)
