"""The functions a template can call, as Go's text/template funcs.go, Prometheus'
template/template.go and Alertmanager's template/template.go define them: `humanize`,
`humanizeDuration`, `title`, `reReplaceAll`, ..., and Go's builtins `printf`, `index`,
`len`, `and`, `or`, `not`, `eq`, `lt`, .... Two tables, one per dialect: `FUNCS`
(Prometheus' alert templates) and `AM_FUNCS` (Alertmanager's notification templates),
sharing Go's builtins and the functions both define alike.

A function here takes evaluated arguments and returns a value, or raises ValueError with
Go's message ("can't convert string to float"); the interpreter adds "error calling
humanize: " as Go's does. `FUNCS` maps each name to the function and its signature, which
the parser checks at load time and the interpreter at render time.
"""

from __future__ import annotations

import datetime
import html
import ipaddress
import math
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.support.duration import parse_duration
from agent.support.goformat import (
    go_duration_string,
    go_float,
    go_float_g,
    go_sprint,
    go_sprintf,
    go_sprintln,
    go_time_format,
    go_time_string,
    go_type,
)
from agent.support.goregexp import expand

__all__ = [
    "AM_FUNCS",
    "DATA_FUNCS",
    "FUNCS",
    "MISSING",
    "UNSUPPORTED",
    "Func",
    "GoDuration",
    "GoInt",
    "GoTime",
    "GoValue",
    "SafeHTML",
    "humanize",
    "humanize1024",
    "humanize_duration",
    "humanize_percentage",
    "humanize_timestamp",
    "truth",
]


class _Missing:
    """Go's invalid reflect.Value (what a pipeline holds before its first command; an
    absent label is "" since Prometheus uses missingkey=zero). Prints `<no value>`."""

    go_type = "<nil>"
    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __str__(self) -> str:
        return "<no value>"

    __repr__ = __str__


MISSING = _Missing()


class GoInt(int):
    """An integer constant from the template text (Go's `int`), distinct from float64."""


class GoValue:
    """A Go struct (or named type) whose fields and methods templates reach: `.Alerts`,
    `.Labels.SortedPairs`, `.StartsAt.Format "..."`. `go_get` returns the field, or calls
    the method with `args`; it raises ValueError with Go's message when there is none."""

    go_type = "struct"
    fields: tuple[str, ...] = ()
    """Attributes read as they are."""
    methods: tuple[str, ...] = ()
    """Python methods of the same name, called with the command's arguments."""

    def go_get(self, name: str, args: list[Any]) -> Any:
        if name in self.methods:
            return getattr(self, name)(*args)
        if name in self.fields:
            if args:
                raise ValueError(f"{name} is not a method but has arguments")
            return getattr(self, name)
        return self.go_missing(name)

    def go_missing(self, name: str) -> Any:
        raise ValueError(f"can't evaluate field {name} in type {self.go_type}")


class SafeHTML(str):
    """html/template's HTML: text `safeHtml` vouches for, printed as it is in `html`."""

    go_type = "template.HTML"


class GoDuration(int):
    """Go's time.Duration (nanoseconds); prints as `1h2m3s`."""

    go_type = "time.Duration"

    def go_string(self) -> str:
        return go_duration_string(int(self))

    def Seconds(self) -> float:
        return int(self) / 1e9

    def Minutes(self) -> float:
        return int(self) / 6e10

    def Hours(self) -> float:
        return int(self) / 3.6e12

    def go_get(self, name: str, args: list[Any]) -> Any:
        if name in ("Seconds", "Minutes", "Hours", "String"):
            return self.go_string() if name == "String" else getattr(self, name)()
        raise ValueError(f"can't evaluate field {name} in type time.Duration")


class GoTime(GoValue):
    """Go's time.Time in a zone: printed as `2024-05-01 12:00:00.123 +0000 UTC`."""

    go_type = "time.Time"
    methods = ("Format", "Unix", "UnixMilli", "IsZero", "UTC", "Sub", "String", "Before", "After")

    def __init__(self, t: datetime.datetime | None) -> None:
        """None is Go's zero time (an endsAt not set yet)."""
        self.t = t

    @classmethod
    def from_unix(cls, seconds: float | None) -> GoTime:
        if seconds is None or not math.isfinite(seconds):
            return cls(None)
        return cls(datetime.datetime.fromtimestamp(seconds, datetime.UTC))

    @property
    def moment(self) -> datetime.datetime:
        return self.t or datetime.datetime(1, 1, 1, tzinfo=datetime.UTC)

    def Format(self, layout: str) -> str:
        return go_time_format(self.moment, layout)

    def String(self) -> str:
        return self.go_string()

    def go_string(self) -> str:
        return go_time_format(self.moment, "2006-01-02 15:04:05.999999999 -0700 MST")

    def Unix(self) -> int:
        return GoInt(math.floor(self.moment.timestamp()))

    def UnixMilli(self) -> int:
        return GoInt(math.floor(self.moment.timestamp() * 1000))

    def IsZero(self) -> bool:
        return self.t is None

    def UTC(self) -> GoTime:
        return GoTime(self.moment.astimezone(datetime.UTC))

    def Sub(self, other: GoTime) -> GoDuration:
        if not isinstance(other, GoTime):
            raise ValueError(f"wrong type for value; expected time.Time; got {go_type(other)}")
        delta = self.moment - other.moment
        return GoDuration((delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000)

    def Before(self, other: GoTime) -> bool:
        return self.moment < other.moment

    def After(self, other: GoTime) -> bool:
        return self.moment > other.moment


def truth(v: Any) -> bool:
    """Go's truth of a value, for `if`, `with`, `and`, `or`, `not`."""
    if v is MISSING or v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return v != 0
    if isinstance(v, str | Mapping | list | tuple):
        return len(v) > 0
    return True


# ---------------------------------------------------------------------------------------
# Prometheus' functions


_GO_FLOAT_RE = re.compile(
    r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)"
    r"(?:[pP][+-]?\d+)?|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN])"
)


def _to_float(value: Any) -> float:
    """Prometheus' convertToFloat: numbers as they are, strings through strconv.ParseFloat."""
    if isinstance(value, bool) or value is MISSING or value is None:
        raise ValueError(f"can't convert {go_type(value)} to float")
    if isinstance(value, GoDuration):
        return int(value) / 1e9
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        if not _GO_FLOAT_RE.fullmatch(value):
            raise ValueError(f'strconv.ParseFloat: parsing "{value}": invalid syntax')
        if value.lower().lstrip("+-").startswith("0x"):
            sign = -1.0 if value.startswith("-") else 1.0
            return sign * float.fromhex(value.lstrip("+-"))
        return float(value)
    raise ValueError(f"can't convert {go_type(value)} to float")


def _g4(v: float) -> str:
    return go_float_g(v, 4)


def humanize(value: Any) -> str:
    """SI prefixes, 4 significant digits: 1234567 -> `1.235M`, 0.12 -> `120m`."""
    v = _to_float(value)
    if v == 0 or not math.isfinite(v):
        return _g4(v)
    prefix = ""
    if abs(v) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix = p
            v /= 1000
        return _g4(v) + prefix
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return _g4(v) + prefix


def humanize1024(value: Any) -> str:
    """Binary prefixes: 1048576 -> `1Mi`."""
    v = _to_float(value)
    if abs(v) <= 1 or not math.isfinite(v):
        return _g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix = p
        v /= 1024
    return _g4(v) + prefix


def humanize_duration(value: Any) -> str:
    """Seconds as `1d 2h 3m 4s`, or `1.234s`, `123.5ms` below a minute."""
    v = _to_float(value)
    if not math.isfinite(v):
        return _g4(v)
    if v == 0:
        return _g4(v) + "s"
    if abs(v) >= 1:
        sign = ""
        if v < 0:
            sign = "-"
            v = -v
        duration = _go_int64(v)
        seconds = _go_rem(duration, 60)
        minutes = _go_rem(_go_div(duration, 60), 60)
        hours = _go_rem(_go_div(duration, 3600), 24)
        days = _go_div(duration, 86400)
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return f"{_g4(v)}{prefix}s"


def _go_int64(v: float) -> int:
    """Go's int64(v) on amd64: out-of-range values become math.MinInt64."""
    if not -(2.0**63) <= v < 2.0**63:
        return -(2**63)
    return int(v)


def _go_div(a: int, b: int) -> int:
    """Go's integer division truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _go_rem(a: int, b: int) -> int:
    return a - b * _go_div(a, b)


def humanize_percentage(value: Any) -> str:
    """A ratio as a percentage: 0.1234567 -> `12.35%`."""
    return _g4(_to_float(value) * 100) + "%"


def _float_to_time(v: float) -> datetime.datetime:
    ns = v * 1e9
    if ns > 9.223372036854775807e18 or ns < -9.223372036854775808e18:
        raise ValueError(
            f"{go_float(v)} cannot be represented as a nanoseconds timestamp since it "
            "overflows int64"
        )
    ms = int(ns) // 1_000_000 if ns >= 0 else -((-int(ns)) // 1_000_000)
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    return epoch + datetime.timedelta(milliseconds=ms)


def humanize_timestamp(value: Any) -> str:
    """Unix seconds as Go prints a UTC time: `2015-06-23 13:19:44.128 +0000 UTC`."""
    v = _to_float(value)
    if not math.isfinite(v):
        return _g4(v)
    return go_time_string(_float_to_time(v))


def _to_time(value: Any) -> datetime.datetime:
    return _float_to_time(_to_float(value))


def _title(s: str) -> str:
    """Go's strings.Title: upper-case the first letter of every word."""
    out = []
    prev_sep = True
    for ch in s:
        out.append(ch.upper() if prev_sep else ch)
        prev_sep = not (ch.isalnum() or ch == "_")
    return "".join(out)


def _go_regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"error parsing regexp: {exc}") from None


def _match(pattern: str, text: str) -> bool:
    return _go_regex(pattern).search(text) is not None


def _re_replace_all(pattern: str, repl: str, text: str) -> str:
    return _go_regex(pattern).sub(lambda m: expand(repl, m), text)


def _strip_port(hostport: str) -> str:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0 or (end + 1 != len(hostport) and hostport[end + 1] != ":"):
            return hostport
        rest = hostport[end + 1 :]
        if rest.count(":") > 1 or (rest and ":" in hostport[end + 2 :]):
            return hostport
        return hostport[1:end]
    if hostport.count(":") == 1:
        return hostport.split(":", 1)[0]
    return hostport


def _strip_domain(hostport: str) -> str:
    if hostport.startswith("[") or hostport.count(":") > 1:
        return hostport
    host, sep, port = hostport.partition(":")
    try:
        ipaddress.ip_address(host)
        return hostport
    except ValueError:
        pass
    return host.split(".", 1)[0] + sep + port


# ---------------------------------------------------------------------------------------
# Alertmanager's functions (template/template.go DefaultFuncs)


def _am_title(s: str) -> str:
    """golang.org/x/text cases.Title (Alertmanager since 0.25): each word's first letter
    upper-cased and the rest lower-cased. Words as Unicode word breaking sees them, to
    the extent that matters here: letters, digits, `_`, and `.` or `'` between letters."""
    out = []
    in_word = False
    for i, ch in enumerate(s):
        word = ch.isalnum() or ch == "_"
        if not word and in_word and ch in ".'\u2019:" and i + 1 < len(s) and s[i + 1].isalnum():
            out.append(ch)
            continue
        if word:
            out.append(ch.lower() if in_word else ch.upper())
        else:
            out.append(ch)
        in_word = word
    return "".join(out)


def _strings(value: Any, what: str = "[]string") -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"wrong type for value; expected {what}; got {go_type(value)}")
    return list(value)


def _join(sep: str, items: Any) -> str:
    return sep.join(_strings(items))


def _string_slice(*items: Any) -> list[str]:
    for v in items:
        if not isinstance(v, str):
            raise ValueError(f"wrong type for value; expected string; got {go_type(v)}")
    return list(items)


def _as_time(value: Any) -> GoTime:
    if not isinstance(value, GoTime):
        raise ValueError(f"wrong type for value; expected time.Time; got {go_type(value)}")
    return value


def _date(layout: str, t: Any) -> str:
    return _as_time(t).Format(layout)


def _tz(name: str, t: Any) -> GoTime:
    import zoneinfo

    moment = _as_time(t).moment
    if name in ("", "UTC"):
        return GoTime(moment.astimezone(datetime.UTC))
    if name == "Local":
        return GoTime(moment.astimezone())
    try:
        zone = zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name}") from None
    return GoTime(moment.astimezone(zone))


# ---------------------------------------------------------------------------------------
# Go's builtins


def _index(item: Any, *keys: Any) -> Any:
    for k in keys:
        if isinstance(item, Mapping):
            if not isinstance(k, str):
                raise ValueError(f"value has type {go_type(k)}; should be string")
            item = item.get(k, "")
        elif isinstance(item, list | tuple | str):
            if not isinstance(k, int) or isinstance(k, bool):
                raise ValueError("cannot index slice/array with non-integer")
            if not 0 <= k < len(item):
                raise ValueError(f"index out of range: {k}")
            item = item[k]
        else:
            raise ValueError(f"can't index item of type {go_type(item)}")
    return item


def _len(item: Any) -> int:
    if isinstance(item, Mapping | list | tuple | str):
        return GoInt(len(item))
    raise ValueError(f"len of type {go_type(item)}")


def _html_escape(*args: Any) -> str:
    return (
        html.escape(go_sprint(*args), quote=True)
        .replace("&#x27;", "&#39;")
        .replace("&quot;", "&#34;")
    )


def _js_escape(*args: Any) -> str:
    s = go_sprint(*args)
    out = []
    for ch in s:
        if ch in "\\'\"":
            out.append("\\" + ch)
        elif ch in "<>&=" or ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def _urlquery(*args: Any) -> str:
    return urllib.parse.quote_plus(go_sprint(*args), safe="")


def _and(arg: Any, *args: Any) -> Any:
    """The first false argument, or the last. The interpreter evaluates `and`'s arguments
    lazily itself (Go 1.18+ stops at the deciding one); this is the same rule."""
    for a in (arg, *args):
        if not truth(a):
            return a
    return a


def _or(arg: Any, *args: Any) -> Any:
    """The first true argument, or the last (evaluated lazily by the interpreter too)."""
    for a in (arg, *args):
        if truth(a):
            return a
    return a


def _not(arg: Any) -> bool:
    return not truth(arg)


def _kind(v: Any) -> str:
    if v is MISSING:
        return "invalid"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    return "other"


def _eq(arg: Any, *args: Any) -> bool:
    if not args:
        raise ValueError("missing argument for comparison")
    ka = _kind(arg)
    for b in args:
        kb = _kind(b)
        if ka != kb:
            if arg is not MISSING and b is not MISSING:
                raise ValueError("incompatible types for comparison")
            continue
        if ka == "other":
            raise ValueError("invalid type for comparison")
        if arg == b:
            return True
    return False


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _lt(a: Any, b: Any) -> bool:
    ka, kb = _kind(a), _kind(b)
    if ka in ("invalid", "other", "bool") or kb in ("invalid", "other", "bool"):
        raise ValueError("invalid type for comparison")
    if ka != kb:
        raise ValueError("incompatible types for comparison")
    return bool(a < b)


# Go defines le as lt||eq, gt as !le and ge as !lt, so with NaN gt and ge are true
def _le(a: Any, b: Any) -> bool:
    return _lt(a, b) or a == b


def _gt(a: Any, b: Any) -> bool:
    return not _le(a, b)


def _ge(a: Any, b: Any) -> bool:
    return not _lt(a, b)


# ---------------------------------------------------------------------------------------
# The table


@dataclass(frozen=True)
class Func:
    """A template function and the signature the parser and interpreter check."""

    params: tuple[str, ...]
    """Types of the fixed parameters: "any" or "string"."""
    call: Callable[..., Any]
    variadic: bool = False
    returns: str = "any"
    """Static type of the result: any, string, bool, int, float."""


FUNCS: dict[str, Func] = {
    # Prometheus' template functions (template/template.go)
    "humanize": Func(("any",), humanize, returns="string"),
    "humanize1024": Func(("any",), humanize1024, returns="string"),
    "humanizeDuration": Func(("any",), humanize_duration, returns="string"),
    "humanizePercentage": Func(("any",), humanize_percentage, returns="string"),
    "humanizeTimestamp": Func(("any",), humanize_timestamp, returns="string"),
    "toUpper": Func(("string",), str.upper, returns="string"),
    "toLower": Func(("string",), str.lower, returns="string"),
    "title": Func(("string",), _title, returns="string"),
    "match": Func(("string", "string"), _match, returns="bool"),
    "reReplaceAll": Func(("string", "string", "string"), _re_replace_all, returns="string"),
    "stripPort": Func(("string",), _strip_port, returns="string"),
    "stripDomain": Func(("string",), _strip_domain, returns="string"),
    "safeHtml": Func(("string",), str, returns="string"),
    "parseDuration": Func(("string",), parse_duration, returns="float"),
    "toTime": Func(("any",), _to_time),
    # Go's builtins (text/template/funcs.go)
    "printf": Func(("string",), go_sprintf, variadic=True, returns="string"),
    "print": Func((), go_sprint, variadic=True, returns="string"),
    "println": Func((), go_sprintln, variadic=True, returns="string"),
    "len": Func(("any",), _len, returns="int"),
    "index": Func(("any",), _index, variadic=True),
    "html": Func((), _html_escape, variadic=True, returns="string"),
    "js": Func((), _js_escape, variadic=True, returns="string"),
    "urlquery": Func((), _urlquery, variadic=True, returns="string"),
    "not": Func(("any",), _not, returns="bool"),
    "and": Func(("any",), _and, variadic=True),
    "or": Func(("any",), _or, variadic=True),
    "eq": Func(("any",), _eq, variadic=True, returns="bool"),
    "ne": Func(("any", "any"), _ne, returns="bool"),
    "lt": Func(("any", "any"), _lt, returns="bool"),
    "le": Func(("any", "any"), _le, returns="bool"),
    "gt": Func(("any", "any"), _gt, returns="bool"),
    "ge": Func(("any", "any"), _ge, returns="bool"),
}

_BUILTINS = (
    "printf",
    "print",
    "println",
    "len",
    "index",
    "html",
    "js",
    "urlquery",
    "not",
    "and",
    "or",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
)

AM_FUNCS: dict[str, Func] = {
    # Alertmanager's template/template.go DefaultFuncs (0.25, and what later versions add)
    "toUpper": FUNCS["toUpper"],
    "toLower": FUNCS["toLower"],
    "title": Func(("string",), _am_title, returns="string"),
    "trimSpace": Func(("string",), str.strip, returns="string"),
    "join": Func(("string", "any"), _join, returns="string"),
    "match": FUNCS["match"],
    "safeHtml": Func(("string",), SafeHTML, returns="string"),
    "reReplaceAll": FUNCS["reReplaceAll"],
    "stringSlice": Func((), _string_slice, variadic=True, returns="list"),
    "date": Func(("string", "any"), _date, returns="string"),
    "tz": Func(("string", "any"), _tz),
    "humanizeDuration": FUNCS["humanizeDuration"],
    **{name: FUNCS[name] for name in _BUILTINS},
}
"""`since` (time.Since) is evaluated by the interpreter, with the rendering's clock."""

# Functions whose result comes from the alert data, evaluated by the interpreter.
DATA_FUNCS = ("externalURL", "pathPrefix")

# Prometheus functions chatwatch does not offer, with the reason given at load time.
UNSUPPORTED = {
    "query": "chatwatch templates cannot run queries",
    "first": "chatwatch templates cannot run queries",
    "label": "chatwatch templates cannot run queries",
    "value": "chatwatch templates cannot run queries",
    "strvalue": "chatwatch templates cannot run queries",
    "sortByLabel": "chatwatch templates cannot run queries",
    "args": "chatwatch templates do not support sub-templates",
    "tmpl": "chatwatch templates do not support sub-templates",
    "graphLink": "chatwatch has no graph page",
    "tableLink": "chatwatch has no graph page",
    "call": "chatwatch templates do not support `call`",
    "slice": "chatwatch templates do not support `slice`",
}
