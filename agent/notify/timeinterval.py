"""Time intervals (Alertmanager's timeinterval/timeinterval.go): when a route is muted.

`time_intervals:` names lists of intervals; a route's `mute_time_intervals` holds its
notifications while the time is in any of them, and `active_time_intervals` holds them
while it is in none. An interval is the AND of its fields (`times`, `weekdays`,
`days_of_month`, `months`, `years`), each an OR of its ranges, read in `location`
(an IANA zone, default UTC) exactly as Alertmanager 0.25 reads them: `times` are
[start, end) minutes of the wall-clock day, the other ranges are inclusive, negative days
of the month count from its end.

Pure: `contains(t)` and `next_boundary(t)` take a Unix time and never read the clock.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from agent.support.configmodel import Model

_WEEKDAYS = {
    name: i
    for i, name in enumerate(
        ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
    )
}
_MONTHS = {
    name: i + 1
    for i, name in enumerate(
        (
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        )
    )
}
_TIME_RE = re.compile(r"(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)\Z")
_DAY = 1440


def _split(text: str) -> tuple[str, str]:
    text = text.lower()
    if ":" not in text:
        return text, text
    parts = text.split(":")
    if len(parts) != 2:
        raise ValueError(f"couldn't parse range {text}, invalid format")
    return parts[0], parts[1]


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text} is not a valid {what}") from None


def parse_weekdays(text: str) -> tuple[int, int]:
    """`monday:friday` -> (1, 5); Sunday is 0, as Go's time.Weekday."""
    begin, end = (_WEEKDAYS.get(p, -1) for p in _split(text))
    for part, value in zip(_split(text), (begin, end), strict=True):
        if value < 0:
            raise ValueError(f"{part} is not a valid weekday")
    if begin > end:
        raise ValueError("start day cannot be before end day")
    return begin, end


def parse_days_of_month(text: str) -> tuple[int, int]:
    begin, end = (_int(p, "day of the month") for p in _split(text))
    for value in (begin, end):
        if value == 0 or not -31 <= value <= 31:
            raise ValueError(f"{value} is not a valid day of the month: out of range")
    if begin < 0 < end:
        raise ValueError("end day must be negative if start day is negative")
    # Alertmanager's check against the shortest month (28 days).
    if (28 + begin if begin < 0 else begin) > (28 + end if end < 0 else end):
        raise ValueError(f"end day {end} is always before start day {begin}")
    return begin, end


def parse_months(text: str) -> tuple[int, int]:
    def one(part: str) -> int:
        value = _MONTHS.get(part)
        if value is None:
            value = _int(part, "month")
        if not 1 <= value <= 12:
            raise ValueError(f"{part} is not a valid month: out of range")
        return value

    begin, end = (one(p) for p in _split(text))
    if begin > end:
        raise ValueError(f"end month {end} is before start month {begin}")
    return begin, end


def parse_years(text: str) -> tuple[int, int]:
    begin, end = (_int(p, "year") for p in _split(text))
    if begin > end:
        raise ValueError(f"end year {end} is before start year {begin}")
    return begin, end


def parse_time(text: str) -> int:
    """`HH:MM` (or `24:00`) -> minutes since midnight."""
    if not _TIME_RE.match(text):
        raise ValueError(f"couldn't parse timestamp {text}, invalid format")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


class TimeRangeConfig(Model):
    start_time: str
    end_time: str

    @field_validator("start_time", "end_time")
    @classmethod
    def _time(cls, value: str) -> str:
        parse_time(value)
        return value

    def minutes(self) -> tuple[int, int]:
        start, end = parse_time(self.start_time), parse_time(self.end_time)
        if start >= end:
            raise ValueError("start time cannot be equal or greater than end time")
        return start, end


class TimeIntervalConfig(Model):
    """One interval; every field given must match (unset fields match any time)."""

    times: list[TimeRangeConfig] = []
    weekdays: list[str] = []
    days_of_month: list[str] = []
    months: list[str] = []
    years: list[str] = []
    location: str | None = None
    """IANA time zone (`Europe/Berlin`); default UTC. `Local` is the agent's zone."""

    @field_validator("times")
    @classmethod
    def _times(cls, values: list[TimeRangeConfig]) -> list[TimeRangeConfig]:
        for v in values:
            v.minutes()
        return values

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, values: list[str]) -> list[str]:
        for v in values:
            parse_weekdays(v)
        return values

    @field_validator("days_of_month")
    @classmethod
    def _days(cls, values: list[str]) -> list[str]:
        for v in values:
            parse_days_of_month(v)
        return values

    @field_validator("months")
    @classmethod
    def _months(cls, values: list[str]) -> list[str]:
        for v in values:
            parse_months(v)
        return values

    @field_validator("years")
    @classmethod
    def _years(cls, values: list[str]) -> list[str]:
        for v in values:
            parse_years(v)
        return values

    @field_validator("location")
    @classmethod
    def _location(cls, value: str | None) -> str | None:
        if value is not None:
            load_location(value)
        return value


class TimeIntervalsConfig(Model):
    """A named list of intervals (`time_intervals[]`): in it when in any of them."""

    name: str = Field(min_length=1)
    time_intervals: list[TimeIntervalConfig] = []


def load_location(name: str) -> ZoneInfo | None:
    """A zone by IANA name; None for `Local` (the agent's own zone)."""
    if name == "Local":
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


class TimeInterval:
    """A compiled `TimeIntervalConfig`."""

    def __init__(self, cfg: TimeIntervalConfig) -> None:
        self.times = [t.minutes() for t in cfg.times]
        self.weekdays = [parse_weekdays(v) for v in cfg.weekdays]
        self.days_of_month = [parse_days_of_month(v) for v in cfg.days_of_month]
        self.months = [parse_months(v) for v in cfg.months]
        self.years = [parse_years(v) for v in cfg.years]
        self.local = cfg.location == "Local"
        self.zone = load_location(cfg.location) if cfg.location else ZoneInfo("UTC")

    def _wall(self, t: float) -> datetime:
        if self.local:
            return datetime.fromtimestamp(t).astimezone()
        return datetime.fromtimestamp(t, self.zone)

    def contains(self, t: float) -> bool:
        """Alertmanager's ContainsTime."""
        w = self._wall(t)
        minute = w.hour * 60 + w.minute
        if self.times and not any(s <= minute < e for s, e in self.times):
            return False
        if self.days_of_month and not any(
            _in_days(w.day, _days_in_month(w.year, w.month), b, e) for b, e in self.days_of_month
        ):
            return False
        if self.months and not any(b <= w.month <= e for b, e in self.months):
            return False
        weekday = (w.weekday() + 1) % 7  # Python: Monday 0; Go: Sunday 0
        if self.weekdays and not any(b <= weekday <= e for b, e in self.weekdays):
            return False
        return not (self.years and not any(b <= w.year <= e for b, e in self.years))

    def next_boundary(self, t: float) -> float:
        """A time after `t`, no later than the next moment `contains` may change.

        Membership changes only where the wall clock passes a `times` edge or midnight;
        those are the candidates (either reading of a wall time a DST change skips or
        repeats), together with the next whole UTC hour, where zones change offset.
        """
        w = self._wall(t)
        tz = w.tzinfo
        edges = {0} | {m for r in self.times for m in r}
        out = (t // 3600 + 1) * 3600
        for day in (w.date(), w.date() + timedelta(days=1)):
            for m in edges:
                for fold in (0, 1):
                    c = _at(day, m, tz, fold)
                    if t < c < out:
                        out = c
        return out


def _at(day: date, minute: int, tz: object, fold: int) -> float:
    d = datetime(day.year, day.month, day.day, fold=fold) + timedelta(minutes=minute)
    return d.replace(tzinfo=tz, fold=fold).timestamp()  # type: ignore[arg-type]


def _days_in_month(year: int, month: int) -> int:
    nxt = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return (nxt - date(year, month, 1)).days


def _in_days(day: int, days: int, begin: int, end: int) -> bool:
    b = days + begin + 1 if begin < 0 else begin
    e = days + end + 1 if end < 0 else end
    if b > days:  # starts after the end of this month
        return False
    b = max(-days, min(b, days))
    e = max(-days, min(e, days))
    return b <= day <= e


class NamedIntervals:
    """Every `time_intervals` entry by name, compiled."""

    def __init__(self, configs: list[TimeIntervalsConfig]) -> None:
        self.by_name = {c.name: [TimeInterval(i) for i in c.time_intervals] for c in configs}

    def contains(self, names: list[str], t: float) -> bool:
        """In any interval of any of these names."""
        return any(i.contains(t) for n in names for i in self.by_name[n])

    def next_boundary(self, names: list[str], t: float) -> float:
        return min(
            (i.next_boundary(t) for n in names for i in self.by_name[n]),
            default=(t // 3600 + 1) * 3600,
        )
