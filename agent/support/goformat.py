"""Go's fmt, as far as chatwatch prints values the way Go programs print them.

Alert annotations must read exactly as Prometheus renders them, and Prometheus renders
with Go's fmt: `%v` of a float64 is `1e+06` (not `1000000.0`), `%.4g` of +Inf is `+Inf`,
`%q` is Go's quoting, and a verb that does not fit its argument prints `%!d(float64=1.5)`
instead of failing. Prometheus' and Alertmanager's APIs print floats with
strconv.FormatFloat and times as RFC 3339 with trimmed fractions. This module is that
formatting, in one place, and nothing else.

Values map to Go as: None is nil, bool, int, float (float64), str, a Mapping is
map[string]string, a list or tuple is []interface{}, a datetime is a UTC time.Time.
Any other object prints through `str()`, as Go prints a value through its String method,
and names its Go type (for `%T` and bad-verb messages) in a class attribute `go_type`.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = [
    "format_float",
    "go_duration_string",
    "go_float",
    "go_float_g",
    "go_print",
    "go_quote",
    "go_sprint",
    "go_sprintf",
    "go_sprintln",
    "go_time_format",
    "go_time_string",
    "go_type",
    "parse_rfc3339",
    "rfc3339",
    "rfc3339_millis",
]


# ---------------------------------------------------------------------------------------
# Floats


def _shortest_digits(v: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of |v| and the decimal point position."""
    _, digits, exp = Decimal(repr(abs(v))).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    assert isinstance(exp, int)
    dp = len(digits) + exp
    return ds, dp


def go_float(v: float) -> str:
    """Go's `%v` of a float64 (`%g` with the shortest digits): `1e+06`, `0.1`, `+Inf`."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, v) < 0 else ""
    if v == 0:
        return sign + "0"
    ds, dp = _shortest_digits(v)
    exp = dp - 1
    # fmt's %g with the shortest digits uses %e when exp < -4 or exp >= 6
    # (strconv.FormatFloat(v, 'g', -1, 64) alone would wait until exp >= 21)
    eprec = 6
    if exp < -4 or exp >= eprec:
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{sign}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if dp <= 0:
        return f"{sign}0.{'0' * -dp}{ds}"
    if dp >= len(ds):
        return sign + ds + "0" * (dp - len(ds))
    return f"{sign}{ds[:dp]}.{ds[dp:]}"


def format_float(v: float, fmt: str = "e") -> str:
    """strconv.FormatFloat(v, fmt, -1, 64) for fmt `e` or `E`: the shortest digits, at
    least two exponent digits (`1.5e+00`, `-0e+00`, `NaN`, `+Inf`). Prometheus' alert API
    prints values so; promtool's rule-test reports use `E`."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, v) < 0 else ""
    if v == 0:
        return f"{sign}0{fmt}+00"
    ds, dp = _shortest_digits(v)
    exp = dp - 1
    mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
    return f"{sign}{mant}{fmt}{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _nonfinite(v: float, plus: bool = False, space: bool = False) -> str:
    if math.isnan(v):
        return "+NaN" if plus else (" NaN" if space else "NaN")
    return "+Inf" if v > 0 else "-Inf"


def go_float_g(v: float, prec: int) -> str:
    """Go's `%.<prec>g` of a float64: `%.4g` of 1234567 is `1.235e+06`."""
    if not math.isfinite(v):
        return _nonfinite(v)
    return f"{v:.{prec}g}"


# ---------------------------------------------------------------------------------------
# %v and %T of any value


def go_type(value: Any) -> str:
    """Go's `%T`: the Go type a value stands for."""
    if value is None:
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
    name = getattr(type(value), "go_type", None)
    if isinstance(name, str):
        return name
    return "[]interface {}"


def go_time_string(t: datetime.datetime) -> str:
    """Go's time.Time.String() for a UTC time: `2015-06-23 13:19:44.128 +0000 UTC`."""
    base = t.strftime("%Y-%m-%d %H:%M:%S")
    if t.microsecond:
        base += ("." + f"{t.microsecond:06d}").rstrip("0")
    return base + " +0000 UTC"


_LAYOUT_TOKENS = re.compile(
    r"January|Jan|Monday|Mon|MST|2006|002|01|02|03|04|05|06|15|__2|_2|1|2|3|4|5|PM|pm"
    r"|-07:00:00|-070000|-07:00|-0700|-07|Z07:00:00|Z070000|Z07:00|Z0700|Z07"
    r"|[.,](?:0+|9+)(?![0-9])"
)


def _offset(t: datetime.datetime, z: bool, colon: bool, seconds: bool, hours_only: bool) -> str:
    delta = t.utcoffset() or datetime.timedelta(0)
    total = int(delta.total_seconds())
    if z and total == 0:
        return "Z"
    sign = "-" if total < 0 else "+"
    total = abs(total)
    hh, mm, ss = total // 3600, total // 60 % 60, total % 60
    sep = ":" if colon else ""
    out = f"{sign}{hh:02d}"
    if not hours_only:
        out += f"{sep}{mm:02d}"
    if seconds:
        out += f"{sep}{ss:02d}"
    return out


def go_time_format(t: datetime.datetime, layout: str) -> str:
    """Go's time.Time.Format: `layout` is written for Go's reference time
    `Mon Jan 2 15:04:05 MST 2006`; `t` must be aware (its zone is printed)."""

    def chunk(m: re.Match[str]) -> str:
        tok = m.group(0)
        if tok[0] in ".," and len(tok) > 1:
            digits = f"{t.microsecond:06d}000"[: len(tok) - 1]
            if tok[1] == "9":
                digits = digits.rstrip("0")
                return (tok[0] + digits) if digits else ""
            return tok[0] + digits
        hour12 = t.hour % 12 or 12
        simple = {
            "January": t.strftime("%B"),
            "Jan": t.strftime("%b"),
            "Monday": t.strftime("%A"),
            "Mon": t.strftime("%a"),
            "MST": t.tzname() or _offset(t, False, False, False, False),
            "2006": f"{t.year:04d}",
            "06": f"{t.year % 100:02d}",
            "002": f"{t.timetuple().tm_yday:03d}",
            "01": f"{t.month:02d}",
            "1": str(t.month),
            "02": f"{t.day:02d}",
            "_2": f"{t.day:2d}",
            "__2": f"{t.timetuple().tm_yday:3d}",
            "2": str(t.day),
            "15": f"{t.hour:02d}",
            "03": f"{hour12:02d}",
            "3": str(hour12),
            "04": f"{t.minute:02d}",
            "4": str(t.minute),
            "05": f"{t.second:02d}",
            "5": str(t.second),
            "PM": "PM" if t.hour >= 12 else "AM",
            "pm": "pm" if t.hour >= 12 else "am",
        }
        if tok in simple:
            return simple[tok]
        z = tok.startswith("Z")
        body = tok[1:]
        return _offset(
            t,
            z,
            colon=":" in body,
            seconds=body.replace(":", "") == "070000",
            hours_only=body == "07",
        )

    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.UTC)
    return _LAYOUT_TOKENS.sub(chunk, layout)


def go_duration_string(ns: int) -> str:
    """Go's time.Duration.String(): `1h2m3.5s`, `1.5ms`, `0s`."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 1_000_000_000:
        for unit, size in (("ns", 1), ("µs", 1_000), ("ms", 1_000_000)):
            if u < size * 1000:
                return sign + _frac(u, size) + unit
    hours, rest = divmod(u, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    out = _frac(rest, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{out}"
    if minutes:
        return f"{sign}{minutes}m{out}"
    return sign + out


def _frac(v: int, size: int) -> str:
    whole, part = divmod(v, size)
    if not part:
        return str(whole)
    digits = len(str(size)) - 1
    return f"{whole}." + f"{part:0{digits}d}".rstrip("0")


def rfc3339(ts: float | None) -> str:
    """A Unix time as Go's JSON encodes a time.Time (RFC 3339 in UTC, fractional seconds
    to the microsecond with trailing zeros trimmed); None or not finite is Go's zero time."""
    if ts is None or not math.isfinite(ts):
        return "0001-01-01T00:00:00Z"
    t = datetime.datetime.fromtimestamp(ts, datetime.UTC)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += "." + f"{t.microsecond:06d}".rstrip("0")
    return text + "Z"


def rfc3339_millis(ts: float) -> str:
    """A Unix time as go-openapi's strfmt.DateTime marshals it, which Alertmanager's API v2
    uses for every time: RFC 3339 in UTC with exactly three fractional digits, truncated
    (`2023-05-01T12:00:00.000Z`)."""
    t = datetime.datetime.fromtimestamp(ts, datetime.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{t.microsecond // 1000:03d}Z"


def parse_rfc3339(text: str) -> float:
    """An RFC 3339 time with its offset (`2023-05-01T12:00:00Z`, `...T14:00:00.5+02:00`) as
    Unix seconds; fractions beyond microseconds are cut. Raises ValueError otherwise."""
    try:
        t = datetime.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ValueError(f"parsing time {go_quote(text)}: not an RFC 3339 time") from None
    if t.tzinfo is None or len(text) < 20:
        raise ValueError(f"parsing time {go_quote(text)}: not an RFC 3339 time with an offset")
    return t.timestamp()


def go_print(value: Any) -> str:
    """Go's `%v`: `map[a:1 b:2]`, `[1 2]`, `<nil>`, floats as go_float."""
    if value is None:
        return "<nil>"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    custom = getattr(value, "go_string", None)
    if custom is not None:  # Go's String method (a time.Duration, a template.KV)
        text: str = custom()
        return text
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_print(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_print(v) for v in value) + "]"
    if isinstance(value, datetime.datetime):
        return go_time_string(value)
    return str(value)


def go_quote(s: str) -> str:
    """Go's `%q` of a string (strconv.Quote): `"a \\"b\\""`."""
    out = json.dumps(s, ensure_ascii=False)
    return out.replace("\\u007f", "\\x7f")


# ---------------------------------------------------------------------------------------
# Sprint, Sprintln, Sprintf


def go_sprint(*args: Any) -> str:
    """Go's fmt.Sprint: a space between two operands when neither is a string."""
    out = ""
    prev_string = True
    for i, a in enumerate(args):
        is_string = isinstance(a, str)
        if i > 0 and not is_string and not prev_string:
            out += " "
        out += go_print(a)
        prev_string = is_string
    return out


def go_sprintln(*args: Any) -> str:
    """Go's fmt.Sprintln: operands joined by spaces, then a newline."""
    return " ".join(go_print(a) for a in args) + "\n"


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
    if arg is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type(arg)}={go_print(arg)})"


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
        return _pad(go_type(arg), width, minus)
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
            return _pad(go_quote(arg), width, minus)
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
        extra = ", ".join(f"{go_type(a)}={go_print(a)}" for a in args[argn:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)
