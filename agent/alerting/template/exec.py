"""Alert label and annotation templates: the subset of Go text/template Prometheus offers.

Rule authors paste annotations written for Prometheus, so the syntax and the output must
be Prometheus' own: `{{ $labels.route }}`, `{{ .Value }}`, pipelines such as
`{{ $value | humanize }}`, `printf`, `if`/`else`/`end`, `with`, `range` over `$labels`,
comparisons (`gt $value 10.0`), and the humanize functions with Go's exact number
formatting (`%.4g`, `+Inf`, `1e+06`).

Templates are parsed when rules load. Everything Go would reject at parse time (syntax,
unknown function, undefined variable) is a `TemplateError` then, and so are a few things
Go would only find while rendering but that are certain from the text alone: a field
`.Foo` the alert data does not have, a wrong number of arguments, or a comparison of
`$value` (a float) with an integer literal (`gt $value 10` fails in Go; write `10.0`).
What can only fail with real data (`humanize "abc"`) renders, as in Prometheus, as
`<error expanding template: ...>` instead of an empty message.
"""

from __future__ import annotations

import datetime
import html
import json
import math
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = [
    "Template",
    "TemplateError",
    "go_float",
    "go_sprintf",
    "humanize",
    "humanize1024",
    "humanize_duration",
    "humanize_percentage",
    "humanize_timestamp",
]


class TemplateError(ValueError):
    """A template that cannot be parsed, or an error while rendering one."""


class _Missing:
    """Go's invalid reflect.Value (what a pipeline holds before its first command; an
    absent label is "" since Prometheus uses missingkey=zero). Prints `<no value>`."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<no value>"


MISSING = _Missing()


class _GoInt(int):
    """An integer constant from the template text (Go's `int`), distinct from float64."""


# ---------------------------------------------------------------------------------------
# Go number formatting


def _shortest_digits(v: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of |v| and the decimal point position."""
    _, digits, exp = Decimal(repr(abs(v))).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    assert isinstance(exp, int)
    dp = len(digits) + exp
    return ds, dp


def go_float(v: float) -> str:
    """Go's `%v` of a float64 (strconv 'g' with the shortest precision): `1e+06`, `0.1`."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, v) < 0 else ""
    if v == 0:
        return sign + "0"
    ds, dp = _shortest_digits(v)
    exp = dp - 1
    # strconv 'g' with the shortest precision uses %e when exp < -4 or exp >= 6
    eprec = 6
    if exp < -4 or exp >= eprec:
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{sign}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if dp <= 0:
        return f"{sign}0.{'0' * -dp}{ds}"
    if dp >= len(ds):
        return sign + ds + "0" * (dp - len(ds))
    return f"{sign}{ds[:dp]}.{ds[dp:]}"


def _nonfinite(v: float, plus: bool = False, space: bool = False) -> str:
    if math.isnan(v):
        return "+NaN" if plus else (" NaN" if space else "NaN")
    return "+Inf" if v > 0 else "-Inf"


def _g4(v: float) -> str:
    """Go's `%.4g`."""
    if not math.isfinite(v):
        return _nonfinite(v)
    return f"{v:.4g}"


_GO_FLOAT_RE = re.compile(
    r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)"
    r"(?:[pP][+-]?\d+)?|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN])"
)


def _to_float(name: str, value: Any) -> float:
    """Prometheus' convertToFloat: numbers as they are, strings through strconv.ParseFloat."""
    if isinstance(value, bool) or value is MISSING or value is None:
        raise TemplateError(f"error calling {name}: can't convert {_go_type(value)} to float")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        if not _GO_FLOAT_RE.fullmatch(value):
            raise TemplateError(
                f'error calling {name}: strconv.ParseFloat: parsing "{value}": invalid syntax'
            )
        if value.lower().lstrip("+-").startswith("0x"):
            sign = -1.0 if value.startswith("-") else 1.0
            return sign * float.fromhex(value.lstrip("+-"))
        return float(value)
    raise TemplateError(f"error calling {name}: can't convert {_go_type(value)} to float")


def humanize(value: Any) -> str:
    """SI prefixes, 4 significant digits: 1234567 -> `1.235M`, 0.12 -> `120m`."""
    v = _to_float("humanize", value)
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
    v = _to_float("humanize1024", value)
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
    v = _to_float("humanizeDuration", value)
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
    return _g4(_to_float("humanizePercentage", value) * 100) + "%"


def _float_to_time(name: str, v: float) -> datetime.datetime:
    ns = v * 1e9
    if ns > 9.223372036854775807e18 or ns < -9.223372036854775808e18:
        raise TemplateError(
            f"error calling {name}: {_go_e17(v)} cannot be represented as a nanoseconds "
            "timestamp since it overflows int64"
        )
    ms = int(ns) // 1_000_000 if ns >= 0 else -((-int(ns)) // 1_000_000)
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    return epoch + datetime.timedelta(milliseconds=ms)


def _go_e17(v: float) -> str:
    # Go's %v of an error message float: shortest with exponent (e.g. -9.223372036854776e+18)
    return go_float(v)


def _go_time_string(t: datetime.datetime) -> str:
    """Go's time.Time.String() for a UTC time: `2015-06-23 13:19:44.128 +0000 UTC`."""
    base = t.strftime("%Y-%m-%d %H:%M:%S")
    if t.microsecond:
        base += ("." + f"{t.microsecond:06d}").rstrip("0")
    return base + " +0000 UTC"


def humanize_timestamp(value: Any) -> str:
    """Unix seconds as Go prints a UTC time: `2015-06-23 13:19:44.128 +0000 UTC`."""
    v = _to_float("humanizeTimestamp", value)
    if not math.isfinite(v):
        return _g4(v)
    return _go_time_string(_float_to_time("humanizeTimestamp", v))


# ---------------------------------------------------------------------------------------
# Go fmt: %v printing and Sprintf


def _go_type(value: Any) -> str:
    if value is MISSING or value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map[string]string"
    if isinstance(value, _AlertData):
        return "template.Data"
    return "[]interface {}"


def go_print(value: Any) -> str:
    """Go's `%v`: how `{{ x }}` prints a value."""
    if value is MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_print(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, _AlertData):
        parts = [value.Labels, value.ExternalLabels, value.ExternalURL, value.Value]
        return "{" + " ".join(go_print(p) for p in parts) + "}"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_print(v) for v in value) + "]"
    if isinstance(value, datetime.datetime):
        return _go_time_string(value)
    return str(value)


def _go_quote(s: str) -> str:
    out = json.dumps(s, ensure_ascii=False)
    return out.replace("\\u007f", "\\x7f")


_VERB_RE = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+|\*)?)?(.)?", re.S)


def _pad(s: str, width: int | None, minus: bool, zero: bool = False) -> str:
    if width is None or len(s) >= width:
        return s
    if minus:
        return s + " " * (width - len(s))
    if zero:
        sign = s[0] if s[:1] in "+- " and len(s) > 0 else ""
        body = s[len(sign) :]
        return sign + "0" * (width - len(s)) + body
    return " " * (width - len(s)) + s


def _bad_verb(verb: str, arg: Any) -> str:
    if arg is None or arg is MISSING:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({_go_type(arg)}={go_print(arg)})"


def _fmt_one(flags: str, width: int | None, prec: int | None, verb: str, arg: Any) -> str:
    minus, plus, space, zero, sharp = (
        "-" in flags,
        "+" in flags,
        " " in flags,
        "0" in flags,
        "#" in flags,
    )
    pyflags = "".join(c for c in "-+ #0" if c in flags)
    if verb == "v":
        if isinstance(arg, float) and not isinstance(arg, bool):
            s = go_float(arg)
            if plus and s[0] not in "+-" and not math.isnan(arg):
                s = "+" + s
            return _pad(s, width, minus, zero and math.isfinite(arg))
        if isinstance(arg, int) and not isinstance(arg, bool):
            return _pad(("+" if plus and arg >= 0 else "") + str(int(arg)), width, minus, zero)
        return _pad(go_print(arg), width, minus)
    if verb == "T":
        return _pad(_go_type(arg), width, minus)
    if isinstance(arg, bool):
        if verb == "t":
            return _pad("true" if arg else "false", width, minus)
        return _bad_verb(verb, arg)
    if isinstance(arg, int):
        n = int(arg)
        if verb in "dxXob":
            spec = "%" + pyflags + (str(width) if width is not None else "")
            if verb == "b":
                body = format(abs(n), "b")
                s = ("-" if n < 0 else ("+" if plus else "")) + body
                return _pad(s, width, minus, zero)
            s = (spec + verb) % n
            if sharp and verb == "o":
                s = s.replace("0o", "0")
            return s
        if verb == "c":
            return _pad(chr(n), width, minus)
        if verb == "q":
            return _pad("'" + chr(n) + "'", width, minus)
        return _bad_verb(verb, arg)
    if isinstance(arg, float):
        if verb not in "eEfFgG":
            return _bad_verb(verb, arg)
        if not math.isfinite(arg):
            return _pad(_nonfinite(arg, plus, space), width, minus)
        if verb in "gG" and prec is None:
            s = go_float(arg)
            if verb == "G":
                s = s.upper()
            if s[0] != "-":
                s = ("+" if plus else " " if space else "") + s
            return _pad(s, width, minus, zero)
        p = 6 if prec is None else prec
        spec = "%" + pyflags + (str(width) if width is not None else "") + "." + str(p) + verb
        return spec % arg
    if isinstance(arg, str):
        if verb == "s":
            s = arg if prec is None else arg[:prec]
            return _pad(s, width, minus)
        if verb == "q":
            return _pad(_go_quote(arg), width, minus)
        if verb in "xX":
            h = arg.encode().hex()
            return _pad(h.upper() if verb == "X" else h, width, minus)
        return _bad_verb(verb, arg)
    if verb == "s" and isinstance(arg, Mapping):
        return _pad(go_print(arg), width, minus)
    return _bad_verb(verb, arg)


def go_sprintf(fmt: str, *args: Any) -> str:
    """Go's fmt.Sprintf for the verbs templates use (`%s %d %f %.2f %g %e %x %q %v %t %%`)."""
    out: list[str] = []
    i = 0
    argn = 0
    while i < len(fmt):
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        m = _VERB_RE.match(fmt, j)
        assert m is not None
        flags, width_s, prec_s, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        i = m.end()
        if verb is None:
            out.append("%!(NOVERB)")
            break
        if verb == "%":
            out.append("%")
            continue
        width: int | None = None
        prec: int | None = None
        if width_s == "*":
            if argn < len(args) and isinstance(args[argn], int):
                width = int(args[argn])
            argn += 1
        elif width_s:
            width = int(width_s)
        if prec_s == "*":
            if argn < len(args) and isinstance(args[argn], int):
                prec = int(args[argn])
            argn += 1
        elif prec_s is not None:
            prec = int(prec_s)
        elif "." in m.group(0)[: m.end() - j - len(verb)]:
            prec = 0
        if argn >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_fmt_one(flags, width, prec, verb, args[argn]))
        argn += 1
    if argn < len(args):
        extra = ", ".join(f"{_go_type(a)}={go_print(a)}" for a in args[argn:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _go_sprint(*args: Any) -> str:
    out = ""
    prev_string = True
    for i, a in enumerate(args):
        is_string = isinstance(a, str)
        if i > 0 and not is_string and not prev_string:
            out += " "
        out += go_print(a)
        prev_string = is_string
    return out


# ---------------------------------------------------------------------------------------
# Functions available in templates


def _title(s: str) -> str:
    """Go's strings.Title: upper-case the first letter of every word."""
    out = []
    prev_sep = True
    for ch in s:
        out.append(ch.upper() if prev_sep else ch)
        prev_sep = not (ch.isalnum() or ch == "_")
    return "".join(out)


def _go_regex(pattern: str, name: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise TemplateError(f"error calling {name}: error parsing regexp: {exc}") from None


def _go_expand(template: str) -> str:
    # Go's $1, ${1}, $name, ${name}, $$ -> Python's \g<...>
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(2)
        return f"\\g<{name}>"

    return re.sub(r"\$\$|\$\{(\w+)\}|\$(\w+)", sub, template.replace("\\", "\\\\"))


def _re_replace_all(pattern: str, repl: str, text: str) -> str:
    rx = _go_regex(pattern, "reReplaceAll")
    try:
        return rx.sub(_go_expand(repl), text)
    except (re.error, IndexError):
        return rx.sub("", text)


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
        import ipaddress

        ipaddress.ip_address(host)
        return hostport
    except ValueError:
        pass
    return host.split(".", 1)[0] + sep + port


def _index(item: Any, *keys: Any) -> Any:
    for k in keys:
        if isinstance(item, Mapping):
            if not isinstance(k, str):
                raise TemplateError(
                    f"error calling index: value has type {_go_type(k)}; should be string"
                )
            item = item.get(k, "")
        elif isinstance(item, list | tuple | str):
            if not isinstance(k, int) or isinstance(k, bool):
                raise TemplateError(
                    "error calling index: cannot index slice/array with non-integer"
                )
            if not 0 <= k < len(item):
                raise TemplateError(f"error calling index: index out of range: {k}")
            item = item[k]
        else:
            raise TemplateError(f"error calling index: can't index item of type {_go_type(item)}")
    return item


def _len(item: Any) -> int:
    if isinstance(item, Mapping | list | tuple | str):
        return _GoInt(len(item))
    raise TemplateError(f"error calling len: len of type {_go_type(item)}")


def _parse_duration(s: str) -> float:
    from agent.support.configmodel import parse_duration

    try:
        return parse_duration(s)
    except ValueError as exc:
        raise TemplateError(f"error calling parseDuration: {exc}") from None


def _html_escape(*args: Any) -> str:
    return (
        html.escape(_go_sprint(*args), quote=True)
        .replace("&#x27;", "&#39;")
        .replace("&quot;", "&#34;")
    )


def _js_escape(*args: Any) -> str:
    s = _go_sprint(*args)
    out = []
    for ch in s:
        if ch in "\\'\"":
            out.append("\\" + ch)
        elif ch in "<>&=" or ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


@dataclass(frozen=True)
class _Func:
    params: tuple[str, ...]
    """Types of the fixed parameters: "any", "string"."""
    variadic: bool
    call: Callable[..., Any]
    returns: str = "any"


def _f(
    params: tuple[str, ...], call: Callable[..., Any], variadic: bool = False, returns: str = "any"
) -> _Func:
    return _Func(params, variadic, call, returns)


_FUNCS: dict[str, _Func] = {
    # Prometheus' template functions (template/template.go)
    "humanize": _f(("any",), humanize, returns="string"),
    "humanize1024": _f(("any",), humanize1024, returns="string"),
    "humanizeDuration": _f(("any",), humanize_duration, returns="string"),
    "humanizePercentage": _f(("any",), humanize_percentage, returns="string"),
    "humanizeTimestamp": _f(("any",), humanize_timestamp, returns="string"),
    "toUpper": _f(("string",), str.upper, returns="string"),
    "toLower": _f(("string",), str.lower, returns="string"),
    "title": _f(("string",), _title, returns="string"),
    "match": _f(
        ("string", "string"),
        lambda p, t: _go_regex(p, "match").search(t) is not None,
        returns="bool",
    ),
    "reReplaceAll": _f(("string", "string", "string"), _re_replace_all, returns="string"),
    "stripPort": _f(("string",), _strip_port, returns="string"),
    "stripDomain": _f(("string",), _strip_domain, returns="string"),
    "safeHtml": _f(("string",), lambda s: s, returns="string"),
    "parseDuration": _f(("string",), _parse_duration, returns="float"),
    "toTime": _f(("any",), lambda v: _float_to_time("toTime", _to_float("toTime", v))),
    # Go's builtins
    "printf": _f(("string",), go_sprintf, variadic=True, returns="string"),
    "print": _f((), _go_sprint, variadic=True, returns="string"),
    "println": _f(
        (), lambda *a: " ".join(go_print(x) for x in a) + "\n", variadic=True, returns="string"
    ),
    "len": _f(("any",), _len, returns="int"),
    "index": _f(("any",), _index, variadic=True),
    "html": _f((), _html_escape, variadic=True, returns="string"),
    "js": _f((), _js_escape, variadic=True, returns="string"),
    "urlquery": _f(
        (),
        lambda *a: urllib.parse.quote_plus(_go_sprint(*a), safe=""),
        variadic=True,
        returns="string",
    ),
    "not": _f(("any",), lambda v: not _truth(v), returns="bool"),
    # and/or/eq/... are handled in _call (short-circuit and Go's comparison rules)
    "and": _f(("any",), lambda *a: a, variadic=True),
    "or": _f(("any",), lambda *a: a, variadic=True),
    "eq": _f(("any",), lambda *a: a, variadic=True, returns="bool"),
    "ne": _f(("any", "any"), lambda *a: a, returns="bool"),
    "lt": _f(("any", "any"), lambda *a: a, returns="bool"),
    "le": _f(("any", "any"), lambda *a: a, returns="bool"),
    "gt": _f(("any", "any"), lambda *a: a, returns="bool"),
    "ge": _f(("any", "any"), lambda *a: a, returns="bool"),
}

# Prometheus functions chatwatch does not offer, with the reason given at load time.
_UNSUPPORTED = {
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

# Functions whose result is not known from the text; used by `externalURL`/`pathPrefix`.
_DATA_FUNCS = ("externalURL", "pathPrefix")


def _truth(v: Any) -> bool:
    if v is MISSING or v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return v != 0
    if isinstance(v, str | Mapping | list | tuple):
        return len(v) > 0
    return True


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


def _compare(name: str, args: Sequence[Any]) -> bool:
    if name == "eq":
        if len(args) < 2:
            raise TemplateError("error calling eq: missing argument for comparison")
        a = args[0]
        ka = _kind(a)
        for b in args[1:]:
            kb = _kind(b)
            if ka != kb:
                if a is not MISSING and b is not MISSING:
                    raise TemplateError("error calling eq: incompatible types for comparison")
                continue
            if ka == "other":
                raise TemplateError("error calling eq: invalid type for comparison")
            if a == b:
                return True
        return False
    if name == "ne":
        return not _compare("eq", args)
    a, b = args
    ka, kb = _kind(a), _kind(b)
    if ka in ("invalid", "other", "bool") or kb in ("invalid", "other", "bool"):
        raise TemplateError(f"error calling {name}: invalid type for comparison")
    if ka != kb:
        raise TemplateError(f"error calling {name}: incompatible types for comparison")
    # Go defines le as lt||eq, gt as !le and ge as !lt, so with NaN gt and ge are true
    lt = bool(a < b)
    if name == "lt":
        return lt
    if name == "le":
        return lt or a == b
    if name == "gt":
        return not (lt or a == b)
    return not lt


# ---------------------------------------------------------------------------------------
# Lexer


@dataclass(slots=True)
class _Tok:
    kind: str  # field var dot ident string number bool nil pipe lparen rparen declare assign comma
    text: str
    value: Any
    space_before: bool
    pos: int


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<pipe>\|)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)+')
  | (?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)
                   (?:[eE][+-]?\d+)?)(?![\w.]))
  | (?P<var>\$\w*(?:\.\w+)*)
  | (?P<field>(?:\.\w+)+)
  | (?P<dot>\.)
  | (?P<ident>[A-Za-z_]\w*)
    """,
    re.X,
)

_GO_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
}


def _unquote(s: str) -> str:
    body = s[1:-1]
    out = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _GO_ESCAPES:
            out.append(_GO_ESCAPES[nxt])
            i += 2
        elif nxt == "x":
            out.append(chr(int(body[i + 2 : i + 4], 16)))
            i += 4
        elif nxt == "u":
            out.append(chr(int(body[i + 2 : i + 6], 16)))
            i += 6
        elif nxt == "U":
            out.append(chr(int(body[i + 2 : i + 10], 16)))
            i += 10
        elif nxt in "01234567":
            out.append(chr(int(body[i + 1 : i + 4], 8)))
            i += 4
        else:
            raise TemplateError(f"invalid syntax: unknown escape sequence \\{nxt} in {s}")
    return "".join(out)


def _number(text: str) -> Any:
    clean = text.replace("_", "")
    if re.fullmatch(r"[+-]?0[xX][0-9a-fA-F]+", clean):
        return _GoInt(int(clean, 16))
    if any(c in clean for c in ".eE"):
        return float(clean)
    if re.fullmatch(r"[+-]?0[0-7]+", clean):
        return _GoInt(int(clean, 8))
    return _GoInt(int(clean))


def _lex_action(text: str, offset: int) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    space = False
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            ch = text[pos]
            raise TemplateError(f"unrecognized character in action: {ch!r} (U+{ord(ch):04X})")
        kind = m.lastgroup
        assert kind is not None
        tok = m.group(0)
        pos = m.end()
        if kind == "ws":
            space = True
            continue
        value: Any = tok
        if kind == "string":
            value = _unquote(tok)
        elif kind == "raw":
            kind, value = "string", tok[1:-1]
        elif kind == "char":
            kind, value = "number", _GoInt(ord(_unquote('"' + tok[1:-1] + '"')))
        elif kind == "number":
            value = _number(tok)
        elif kind == "ident" and tok in ("true", "false"):
            kind, value = "bool", tok == "true"
        elif kind == "ident" and tok == "nil":
            kind, value = "nil", None
        toks.append(_Tok(kind, tok, value, space, offset + m.start()))
        space = False
    return toks


# ---------------------------------------------------------------------------------------
# Parse tree


@dataclass(slots=True)
class _Term:
    kind: str  # literal dot field var func pipe
    value: Any = None
    name: str = ""
    chain: tuple[str, ...] = ()
    pipe: _Pipe | None = None
    static: str = "any"
    """Static type when known from the text: int, float, string, bool, map, data, any."""


@dataclass(slots=True)
class _Cmd:
    args: list[_Term]


@dataclass(slots=True)
class _Pipe:
    decl: list[str]
    assign: bool
    cmds: list[_Cmd]


@dataclass(slots=True)
class _Text:
    text: str


@dataclass(slots=True)
class _Action:
    pipe: _Pipe


@dataclass(slots=True)
class _Control:
    kind: str  # if with range
    pipe: _Pipe
    body: list[_Node]
    else_body: list[_Node] = field(default_factory=list)


_Node = _Text | _Action | _Control


class _AlertData:
    """The `.` of an alert template, as Prometheus' template.AlertTemplateData."""

    __slots__ = ("ExternalLabels", "ExternalURL", "Labels", "Value")

    def __init__(
        self, labels: Mapping[str, str], external_labels: Mapping[str, str], url: str, value: float
    ):
        self.Labels = labels
        self.ExternalLabels = external_labels
        self.ExternalURL = url
        self.Value = value


_DATA_FIELDS = {"Labels": "map", "ExternalLabels": "map", "ExternalURL": "string", "Value": "float"}
_PREDEFINED = {
    "$": "data",
    "$labels": "map",
    "$externalLabels": "map",
    "$externalURL": "string",
    "$value": "float",
}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.items = self._split(text)
        self.i = 0
        self.scopes: list[dict[str, str]] = [dict(_PREDEFINED)]
        self.dot: list[str] = ["data"]

    # -- splitting text and actions -----------------------------------------------------

    @staticmethod
    def _split(text: str) -> list[tuple[str, str, int]]:
        """[(kind, content, pos)]: kind "text" or "action"; trim markers applied."""
        items: list[tuple[str, str, int]] = []
        pos = 0
        trim_next = False
        while True:
            start = text.find("{{", pos)
            chunk = text[pos:] if start < 0 else text[pos:start]
            if trim_next:
                chunk = chunk.lstrip(" \t\r\n")
            if start < 0:
                if chunk:
                    items.append(("text", chunk, pos))
                return items
            inner_start = start + 2
            trim_left = text.startswith("- ", inner_start) or text.startswith(
                ("-\t", "-\r", "-\n"), inner_start
            )
            if trim_left:
                chunk = chunk.rstrip(" \t\r\n")
                inner_start += 1
            if chunk:
                items.append(("text", chunk, pos))
            body_start = inner_start
            # a comment runs to */ followed by the closing delimiter
            probe = text[body_start:].lstrip(" \t\r\n") if trim_left else text[body_start:]
            if probe.startswith("/*"):
                cstart = text.find("/*", body_start)
                cend = text.find("*/", cstart + 2)
                if cend < 0:
                    raise TemplateError(f"{_where(text, start)}: unclosed comment")
                after = cend + 2
                trim_next = False
                if text.startswith((" -}}", "\t-}}", "\r-}}", "\n-}}"), after):
                    after += 1
                    trim_next = True
                if not text.startswith("}}", after) and not text.startswith("-}}", after):
                    raise TemplateError(
                        f"{_where(text, start)}: comment ends before closing delimiter"
                    )
                if text.startswith("-}}", after):
                    after += 1
                pos = after + 2
                continue
            end = _find_close(text, body_start)
            if end < 0:
                raise TemplateError(f"{_where(text, start)}: unclosed action")
            body = text[body_start:end]
            trim_next = False
            if body.endswith("-") and len(body) >= 2 and body[-2] in " \t\r\n":
                body = body[:-1]
                trim_next = True
            items.append(("action", body, body_start))
            pos = end + 2

    # -- parsing ------------------------------------------------------------------------

    def parse(self) -> list[_Node]:
        nodes, term = self._list(top=True)
        if term is not None:
            raise TemplateError(f"{_where(self.text, term[1])}: unexpected {{{{{term[0]}}}}}")
        return nodes

    def _list(self, top: bool = False) -> tuple[list[_Node], tuple[str, int, list[_Tok]] | None]:
        """Nodes up to an {{else}} or {{end}}, which is returned with its tokens."""
        nodes: list[_Node] = []
        while self.i < len(self.items):
            kind, content, pos = self.items[self.i]
            self.i += 1
            if kind == "text":
                nodes.append(_Text(content))
                continue
            try:
                toks = _lex_action(content, pos)
            except TemplateError as exc:
                raise TemplateError(f"{_where(self.text, pos)}: {exc}") from None
            if not toks:
                raise TemplateError(f"{_where(self.text, pos)}: missing value for command")
            head = toks[0]
            if head.kind == "ident" and head.text in ("end", "else"):
                if top:
                    raise TemplateError(f"{_where(self.text, pos)}: unexpected {{{{{head.text}}}}}")
                return nodes, (head.text, pos, toks[1:])
            if head.kind == "ident" and head.text in ("if", "with", "range"):
                nodes.append(self._control(head.text, toks[1:], pos))
                continue
            if head.kind == "ident" and head.text in (
                "define",
                "template",
                "block",
                "break",
                "continue",
            ):
                raise TemplateError(
                    f"{_where(self.text, pos)}: {{{{{head.text}}}}} is not supported by chatwatch"
                )
            nodes.append(_Action(self._pipeline(toks, pos, allow_decl=True)))
        if not top:
            raise TemplateError(f"{_where(self.text, len(self.text))}: unexpected EOF")
        return nodes, None

    def _control(self, kind: str, toks: list[_Tok], pos: int) -> _Control:
        self.scopes.append({})
        pipe = self._pipeline(toks, pos, allow_decl=True, range_decl=kind == "range", context=kind)
        dot_type = "any"
        if kind == "with" and pipe.cmds:
            dot_type = self._static(pipe)
        elif kind == "if":
            dot_type = self.dot[-1]
        self.dot.append(dot_type)
        body, term = self._list()
        self.dot.pop()
        node = _Control(kind, pipe, body)
        assert term is not None
        self.scopes.pop()
        word, tpos, rest = term
        if word == "else":
            if rest and rest[0].kind == "ident" and rest[0].text in ("if", "with"):
                # {{else if ...}} is {{else}}{{if ...}}...{{end}} sharing the outer {{end}}
                inner = self._control_chain(rest[0].text, rest[1:], tpos)
                node.else_body = [inner]
                return node
            if rest:
                raise TemplateError(
                    f"{_where(self.text, tpos)}: unexpected {rest[0].text!r} in else"
                )
            self.scopes.append({})
            self.dot.append(self.dot[-1])
            else_body, term2 = self._list()
            self.dot.pop()
            self.scopes.pop()
            assert term2 is not None
            if term2[0] != "end":
                raise TemplateError(
                    f"{_where(self.text, term2[1])}: expected end; found {{{{{term2[0]}}}}}"
                )
            node.else_body = else_body
            return node
        if rest:
            raise TemplateError(f"{_where(self.text, tpos)}: unexpected {rest[0].text!r} in end")
        return node

    def _control_chain(self, kind: str, toks: list[_Tok], pos: int) -> _Control:
        return self._control(kind, toks, pos)

    def _pipeline(
        self,
        toks: list[_Tok],
        pos: int,
        allow_decl: bool,
        range_decl: bool = False,
        context: str = "command",
    ) -> _Pipe:
        decl: list[str] = []
        assign = False
        # $x := ...   or   $k, $v := ... (range)
        if allow_decl and len(toks) >= 2 and toks[0].kind == "var" and "." not in toks[0].text:
            if toks[1].kind in ("declare", "assign"):
                decl = [toks[0].text]
                assign = toks[1].kind == "assign"
                toks = toks[2:]
            elif (
                range_decl and toks[1].kind == "comma" and len(toks) >= 4 and toks[2].kind == "var"
            ):
                if toks[3].kind not in ("declare", "assign"):
                    raise TemplateError(
                        f"{_where(self.text, pos)}: expected := after range variables"
                    )
                decl = [toks[0].text, toks[2].text]
                assign = toks[3].kind == "assign"
                toks = toks[4:]
        if not toks:
            raise TemplateError(f"{_where(self.text, pos)}: missing value for {context}")
        cmds: list[_Cmd] = []
        current: list[_Tok] = []
        depth = 0
        for tok in toks:
            if tok.kind == "lparen":
                depth += 1
            elif tok.kind == "rparen":
                depth -= 1
            if tok.kind == "pipe" and depth == 0:
                cmds.append(self._command(current, pos))
                current = []
            else:
                current.append(tok)
        cmds.append(self._command(current, pos))
        pipe = _Pipe(decl, assign, cmds)
        self._check_pipe(pipe, pos)
        if decl:
            if assign:
                for name in decl:
                    if self._lookup(name) is None:
                        raise TemplateError(
                            f"{_where(self.text, pos)}: undefined variable {name!r}"
                        )
            else:
                static = self._static(pipe) if len(decl) == 1 and not range_decl else "any"
                if range_decl:
                    self.scopes[-1][decl[0]] = "any"
                    if len(decl) == 2:
                        self.scopes[-1][decl[1]] = "any"
                else:
                    self.scopes[-1][decl[0]] = static
        return pipe

    def _command(self, toks: list[_Tok], pos: int) -> _Cmd:
        if not toks:
            raise TemplateError(f"{_where(self.text, pos)}: missing value for command")
        args: list[_Term] = []
        i = 0
        while i < len(toks):
            term, i = self._term(toks, i, pos)
            args.append(term)
        return _Cmd(args)

    def _term(self, toks: list[_Tok], i: int, pos: int) -> tuple[_Term, int]:
        tok = toks[i]
        where = _where(self.text, tok.pos)
        if tok.kind == "lparen":
            depth = 0
            j = i
            while j < len(toks):
                if toks[j].kind == "lparen":
                    depth += 1
                elif toks[j].kind == "rparen":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= len(toks):
                raise TemplateError(f"{where}: unclosed left paren")
            inner = self._pipeline(
                toks[i + 1 : j], tok.pos, allow_decl=False, context="parenthesized pipeline"
            )
            term = _Term("pipe", pipe=inner, static=self._static(inner))
            j += 1
            # (x).Field
            if j < len(toks) and toks[j].kind == "field" and not toks[j].space_before:
                term.chain = tuple(toks[j].text[1:].split("."))
                term.static = "any"
                j += 1
            return term, j
        if tok.kind == "rparen":
            raise TemplateError(f"{where}: unexpected right paren")
        if tok.kind in ("string", "number", "bool", "nil"):
            static = {"string": "string", "bool": "bool", "nil": "nil"}.get(tok.kind)
            if static is None:
                static = "int" if isinstance(tok.value, _GoInt) else "float"
            return _Term("literal", value=tok.value, static=static), i + 1
        if tok.kind == "dot":
            return _Term("dot", static=self.dot[-1]), i + 1
        if tok.kind == "field":
            chain = tuple(tok.text[1:].split("."))
            static = self._field_type(self.dot[-1], chain, where)
            return _Term("field", chain=chain, static=static), i + 1
        if tok.kind == "var":
            name, *rest = tok.text.split(".")
            var_chain = tuple(rest)
            vtype = self._lookup(name)
            if vtype is None:
                raise TemplateError(f"{where}: undefined variable {name!r}")
            static = self._field_type(vtype, var_chain, where) if var_chain else vtype
            return _Term("var", name=name, chain=var_chain, static=static), i + 1
        if tok.kind == "ident":
            name = tok.text
            if name in ("if", "else", "end", "range", "with", "define", "template", "block"):
                raise TemplateError(f"{where}: unexpected keyword {name!r} in command")
            if name in _UNSUPPORTED:
                raise TemplateError(
                    f"{where}: function {name!r} is not supported: {_UNSUPPORTED[name]}"
                )
            if name not in _FUNCS and name not in _DATA_FUNCS:
                raise TemplateError(f"{where}: function {name!r} not defined")
            returns = _FUNCS[name].returns if name in _FUNCS else "string"
            return _Term("func", name=name, static=returns), i + 1
        raise TemplateError(f"{where}: unexpected {tok.text!r} in command")

    def _lookup(self, name: str) -> str | None:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return None

    def _field_type(self, base: str, chain: tuple[str, ...], where: str) -> str:
        t = base
        for name in chain:
            if t == "data":
                if name not in _DATA_FIELDS:
                    raise TemplateError(
                        f"{where}: can't evaluate field {name} in type template.Data "
                        "(alert templates have .Labels, .ExternalLabels, .ExternalURL, .Value)"
                    )
                t = _DATA_FIELDS[name]
            elif t == "map":
                t = "string"
            elif t in ("string", "float", "int", "bool"):
                raise TemplateError(f"{where}: can't evaluate field {name} in type {t}")
            else:
                t = "any"
        return t

    def _static(self, pipe: _Pipe) -> str:
        last = pipe.cmds[-1].args[0]
        return last.static

    def _check_pipe(self, pipe: _Pipe, pos: int) -> None:
        where = _where(self.text, pos)
        for n, cmd in enumerate(pipe.cmds):
            first = cmd.args[0]
            piped = n > 0
            if first.kind != "func":
                if len(cmd.args) > 1:
                    raise TemplateError(
                        f"{where}: can't give argument to non-function {_describe(first)}"
                    )
                if piped:
                    raise TemplateError(
                        f"{where}: can't give argument to non-function {_describe(first)}"
                    )
                continue
            nargs = len(cmd.args) - 1 + (1 if piped else 0)
            name = first.name
            if name in _DATA_FUNCS:
                if nargs:
                    raise TemplateError(
                        f"{where}: wrong number of args for {name}: want 0 got {nargs}"
                    )
                continue
            fn = _FUNCS[name]
            want = len(fn.params)
            if (fn.variadic and nargs < want) or (not fn.variadic and nargs != want):
                more = " or more" if fn.variadic else ""
                raise TemplateError(
                    f"{where}: wrong number of args for {name}: want {want}{more} got {nargs}"
                )
            arg_types = [a.static for a in cmd.args[1:]]
            if piped:
                arg_types.append(pipe.cmds[n - 1].args[0].static)
            for k, ptype in enumerate(fn.params):
                if ptype == "string" and arg_types[k] in ("int", "float", "bool", "map"):
                    got = _go_static(arg_types[k])
                    raise TemplateError(
                        f"{where}: wrong type for value in {name}; expected string; got {got}"
                    )
            if name in ("eq", "ne", "lt", "le", "gt", "ge") and len(arg_types) >= 2:
                known = [t for t in arg_types if t in ("int", "float", "string", "bool")]
                if len(set(known)) > 1:
                    types = " and ".join(map(_go_static, known))
                    raise TemplateError(
                        f"{where}: {name}: incompatible types for comparison ({types})"
                        + (
                            "; write a float literal such as 10.0"
                            if {"int", "float"} <= set(known)
                            else ""
                        )
                    )


def _go_static(t: str) -> str:
    return {"float": "float64", "map": "map[string]string"}.get(t, t)


def _describe(term: _Term) -> str:
    if term.kind == "literal":
        return go_print(term.value) if not isinstance(term.value, str) else json.dumps(term.value)
    if term.kind == "var":
        return ".".join((term.name, *term.chain))
    if term.kind == "field":
        return "." + ".".join(term.chain)
    return term.kind


def _find_close(text: str, start: int) -> int:
    """Position of the `}}` closing an action, skipping quoted strings."""
    i = start
    while i < len(text):
        ch = text[i]
        if ch in "\"'`":
            end_ch = ch
            i += 1
            while i < len(text) and text[i] != end_ch:
                if text[i] == "\\" and end_ch != "`":
                    i += 1
                if text[i] == "\n" and end_ch != "`":
                    return -1
                i += 1
        elif text.startswith("}}", i):
            return i
        i += 1
    return -1


def _where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line}, column {col}"


# ---------------------------------------------------------------------------------------
# Execution


class _Exec:
    def __init__(self, data: _AlertData) -> None:
        self.data = data
        self.vars: list[dict[str, Any]] = [
            {
                "$": data,
                "$labels": data.Labels,
                "$externalLabels": data.ExternalLabels,
                "$externalURL": data.ExternalURL,
                "$value": data.Value,
            }
        ]

    def run(self, nodes: list[_Node], dot: Any, out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                out.append(node.text)
            elif isinstance(node, _Action):
                value = self.pipe(node.pipe, dot)
                if not node.pipe.decl:
                    out.append(go_print(value))
            else:
                self.control(node, dot, out)

    def control(self, node: _Control, dot: Any, out: list[str]) -> None:
        self.vars.append({})
        try:
            if node.kind == "range":
                self.range(node, dot, out)
                return
            value = self.pipe(node.pipe, dot)
            if _truth(value):
                self.run(node.body, value if node.kind == "with" else dot, out)
            else:
                self.run(node.else_body, dot, out)
        finally:
            self.vars.pop()

    def range(self, node: _Control, dot: Any, out: list[str]) -> None:
        pipe = node.pipe
        value = self.pipe(_Pipe([], False, pipe.cmds), dot)
        items: list[tuple[Any, Any]]
        if isinstance(value, Mapping):
            items = [(k, value[k]) for k in sorted(value)]
        elif isinstance(value, list | tuple):
            items = [(_GoInt(i), v) for i, v in enumerate(value)]
        elif isinstance(value, int) and not isinstance(value, bool):
            items = [(_GoInt(i), _GoInt(i)) for i in range(int(value))]
        elif value is MISSING or value is None:
            items = []
        else:
            raise TemplateError(f"range can't iterate over {go_print(value)}")
        if not items:
            self.run(node.else_body, dot, out)
            return
        for key, elem in items:
            if len(pipe.decl) == 1:
                self._set(pipe.decl[0], elem, pipe.assign)
            elif len(pipe.decl) == 2:
                self._set(pipe.decl[0], key, pipe.assign)
                self._set(pipe.decl[1], elem, pipe.assign)
            self.run(node.body, elem, out)

    def _set(self, name: str, value: Any, assign: bool) -> None:
        if assign:
            for scope in reversed(self.vars):
                if name in scope:
                    scope[name] = value
                    return
        self.vars[-1][name] = value

    def pipe(self, pipe: _Pipe, dot: Any) -> Any:
        value: Any = MISSING
        for n, cmd in enumerate(pipe.cmds):
            value = self.command(cmd, dot, value, n > 0)
        for name in pipe.decl:
            self._set(name, value, pipe.assign)
        return value

    def command(self, cmd: _Cmd, dot: Any, final: Any, piped: bool) -> Any:
        first = cmd.args[0]
        if first.kind != "func":
            return self.term(first, dot)
        name = first.name
        if name == "externalURL":
            return self.data.ExternalURL
        if name == "pathPrefix":
            return urllib.parse.urlsplit(self.data.ExternalURL).path
        arg_terms = cmd.args[1:]
        if name in ("and", "or"):
            # Go 1.18+ stops at the first argument that decides the result
            result: Any = MISSING
            for k in range(len(arg_terms) + (1 if piped else 0)):
                result = self.term(arg_terms[k], dot) if k < len(arg_terms) else final
                if (name == "and") != _truth(result):
                    return result
            return result
        args = [self.term(t, dot) for t in arg_terms]
        if piped:
            args.append(final)
        return _call(name, args)

    def term(self, term: _Term, dot: Any) -> Any:
        if term.kind == "literal":
            return term.value
        if term.kind == "dot":
            return dot
        if term.kind == "field":
            return self.fields(dot, term.chain)
        if term.kind == "var":
            for scope in reversed(self.vars):
                if term.name in scope:
                    return self.fields(scope[term.name], term.chain)
            raise TemplateError(f"undefined variable {term.name}")
        if term.kind == "func":
            return self.command(_Cmd([term]), dot, MISSING, False)
        assert term.pipe is not None
        return self.fields(self.pipe(term.pipe, dot), term.chain)

    def fields(self, value: Any, chain: Sequence[str]) -> Any:
        return _fields(value, chain)


def _call(name: str, args: list[Any]) -> Any:
    """Call template function `name` with evaluated arguments, with Go's type checks."""
    fn = _FUNCS[name]
    if name in ("eq", "ne", "lt", "le", "gt", "ge"):
        return _compare(name, args)
    for k, ptype in enumerate(fn.params):
        if ptype == "string" and not isinstance(args[k], str):
            if args[k] is MISSING:
                raise TemplateError(f"error calling {name}: invalid value; expected string")
            raise TemplateError(f"wrong type for value; expected string; got {_go_type(args[k])}")
    if name == "printf":
        args = [a if a is not MISSING else None for a in args]
    try:
        return fn.call(*args)
    except TemplateError:
        raise
    except (ValueError, TypeError, OverflowError) as exc:
        raise TemplateError(f"error calling {name}: {exc}") from None


def _fields(value: Any, chain: Sequence[str]) -> Any:
    for name in chain:
        if isinstance(value, _AlertData):
            if name not in _DATA_FIELDS:
                raise TemplateError(f"can't evaluate field {name} in type template.Data")
            value = getattr(value, name)
        elif isinstance(value, Mapping):
            # Prometheus expands alert templates with missingkey=zero: an absent
            # label is "", not "<no value>"
            value = value.get(name, "")
        elif value is MISSING or value is None:
            raise TemplateError(f"nil pointer evaluating {name}")
        else:
            raise TemplateError(f"can't evaluate field {name} in type {_go_type(value)}")
    return value


_Getter = Callable[[_AlertData], Any]
_VAR_ATTR = {
    "$": None,
    "$labels": "Labels",
    "$externalLabels": "ExternalLabels",
    "$externalURL": "ExternalURL",
    "$value": "Value",
}


def _fast_term(term: _Term) -> _Getter | None:
    """A getter for a term that needs no interpreter state (literals, predefined data)."""
    if term.kind == "literal":
        value = term.value
        return lambda data: value
    chain = term.chain
    if term.kind == "var" and term.name in _VAR_ATTR:
        attr = _VAR_ATTR[term.name]
        if attr is None:
            return lambda data: _fields(data, chain)
        if not chain:
            return lambda data: getattr(data, attr)
        if len(chain) == 1 and attr in ("Labels", "ExternalLabels"):
            key = chain[0]
            return lambda data: getattr(data, attr).get(key, "")
        return lambda data: _fields(getattr(data, attr), chain)
    if term.kind == "field":
        return lambda data: _fields(data, chain)
    return None


def _fast_action(pipe: _Pipe) -> Callable[[_AlertData], str] | None:
    """The same evaluation as _Exec for the common pipelines (`$labels.x`, `$value |
    humanize`, `printf "%.2f" $value`), without building interpreter state per render."""
    if pipe.decl:
        return None
    steps: list[tuple[str | None, list[_Getter]]] = []
    for n, cmd in enumerate(pipe.cmds):
        first = cmd.args[0]
        if first.kind != "func":
            if n > 0 or len(cmd.args) > 1:
                return None
            getter = _fast_term(first)
            if getter is None:
                return None
            steps.append((None, [getter]))
            continue
        if first.name not in _FUNCS or first.name in ("and", "or"):
            return None
        getters = [_fast_term(t) for t in cmd.args[1:]]
        if any(g is None for g in getters):
            return None
        steps.append((first.name, [g for g in getters if g is not None]))

    def run(data: _AlertData) -> str:
        value: Any = MISSING
        for n, (name, getters) in enumerate(steps):
            if name is None:
                value = getters[0](data)
                continue
            args = [g(data) for g in getters]
            if n > 0:
                args.append(value)
            value = _call(name, args)
        return go_print(value)

    return run


def _compile_fast(nodes: list[_Node]) -> list[str | Callable[[_AlertData], str]] | None:
    parts: list[str | Callable[[_AlertData], str]] = []
    for node in nodes:
        if isinstance(node, _Text):
            parts.append(node.text)
        elif isinstance(node, _Action):
            fn = _fast_action(node.pipe)
            if fn is None:
                return None
            parts.append(fn)
        else:
            return None
    return parts


class Template:
    """A parsed alert template. Parsing raises TemplateError; rendering returns text."""

    __slots__ = ("_fast", "_nodes", "_static_text", "is_static", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._nodes = _Parser(text).parse()
        self.is_static = all(isinstance(n, _Text) for n in self._nodes)
        self._static_text = "".join(n.text for n in self._nodes if isinstance(n, _Text))
        self._fast = _compile_fast(self._nodes)

    def render(
        self,
        labels: Mapping[str, str],
        value: float,
        external_labels: Mapping[str, str] | None = None,
        external_url: str = "",
    ) -> str:
        """Render for one alert; raises TemplateError when the data makes it fail."""
        if self.is_static:
            return self._static_text
        data = _AlertData(labels, external_labels or {}, external_url, float(value))
        if self._fast is not None:
            return "".join(part if isinstance(part, str) else part(data) for part in self._fast)
        out: list[str] = []
        _Exec(data).run(self._nodes, data, out)
        return "".join(out)

    def expand(
        self,
        labels: Mapping[str, str],
        value: float,
        external_labels: Mapping[str, str] | None = None,
        external_url: str = "",
    ) -> str:
        """Render as Prometheus does: a failure becomes `<error expanding template: ...>`."""
        try:
            return self.render(labels, value, external_labels, external_url)
        except TemplateError as exc:
            return f"<error expanding template: {exc}>"
