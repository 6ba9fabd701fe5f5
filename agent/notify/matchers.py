"""Alertmanager label matchers: `severity="critical"`, `team!=db`, `env=~"prod|stage"`.

The string syntax of Alertmanager's `matchers:` (pkg/labels): a label name, one of `=`,
`!=`, `=~`, `!~`, and a value that may be double-quoted (with Go escapes) or bare. A whole
list may be written inside braces, `{a="b", c=~"d.*"}`. Regular expressions are anchored
at both ends, as in Alertmanager. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

_OPS = ("=~", "!~", "!=", "=")
_NAME_RE = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*")


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    op: str
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def make(cls, name: str, op: str, value: str) -> Matcher:
        regex = None
        if op in ("=~", "!~"):
            try:
                regex = re.compile(f"(?:{value})")
            except re.error as exc:
                raise ValueError(
                    f"{name}{op}{value!r}: not a valid regular expression: {exc}"
                ) from None
        return cls(name, op, value, regex)

    def matches(self, labels: dict[str, str]) -> bool:
        """An absent label counts as the empty string, as in Alertmanager."""
        v = labels.get(self.name, "")
        if self.op == "=":
            return v == self.value
        if self.op == "!=":
            return v != self.value
        assert self._regex is not None
        hit = self._regex.fullmatch(v) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        # Alertmanager's Matcher.String(): name, op, Go-quoted value.
        return f"{self.name}{self.op}{json.dumps(self.value, ensure_ascii=False)}"


def parse_matchers(text: str) -> list[Matcher]:
    """Parse one `matchers:` entry; it may hold several comma-separated matchers in braces."""
    s = text.strip()
    if s.startswith("{"):
        if not s.endswith("}"):
            raise ValueError(f"{text!r}: missing closing '}}'")
        s = s[1:-1]
    out: list[Matcher] = []
    pos = 0
    while pos < len(s):
        m = _NAME_RE.match(s, pos)
        if not m:
            raise ValueError(f"{text!r}: expected a label name at position {pos}")
        name = m.group(1)
        pos = m.end()
        op = next((o for o in _OPS if s.startswith(o, pos)), None)
        if op is None:
            raise ValueError(f"{text!r}: expected one of = != =~ !~ after {name!r}")
        pos += len(op)
        while pos < len(s) and s[pos] == " ":
            pos += 1
        value, pos = _value(s, pos, text)
        out.append(Matcher.make(name, op, value))
        while pos < len(s) and s[pos] == " ":
            pos += 1
        if pos < len(s):
            if s[pos] != ",":
                raise ValueError(f"{text!r}: expected ',' between matchers at position {pos}")
            pos += 1
            if not s[pos:].strip():
                break
    if not out:
        raise ValueError(f"{text!r}: no matcher")
    return out


_SPACE = r"[\t\n\f\r ]*"  # Go's \s
_ONE_RE = re.compile(
    rf"^{_SPACE}([a-zA-Z_:][a-zA-Z0-9_:]*){_SPACE}(=~|=|!=|!~){_SPACE}(.*?){_SPACE}\Z", re.S
)
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def valid_label_name(name: str) -> bool:
    """Prometheus' model.LabelName.IsValid (the classic, pre-UTF-8 rule)."""
    return _LABEL_NAME_RE.match(name) is not None


def parse_matcher(text: str) -> Matcher:
    """One matcher as Alertmanager's labels.ParseMatcher reads it (the API's `filter`
    parameters, amtool's arguments): the value may be quoted, `\\"`, `\\n` and `\\\\` are
    unescaped, any other backslash is literal. Errors carry Alertmanager's wording."""
    m = _ONE_RE.match(text)
    if m is None:
        raise ValueError(f"bad matcher format: {text}")
    name, op, raw = m.groups()
    quoted = raw.startswith('"')
    if quoted:
        raw = raw[1:]
    out: list[str] = []
    escaped = False
    for i, ch in enumerate(raw):
        if escaped:
            escaped = False
            out.append({"n": "\n", '"': '"', "\\": "\\"}.get(ch, "\\" + ch))
        elif ch == "\\" and i < len(raw) - 1:
            escaped = True
        elif ch == '"':
            if not quoted or i < len(raw) - 1:
                raise ValueError(f"matcher value contains unescaped double quote: {m.group(3)}")
            quoted = False
        else:
            out.append(ch)
    if quoted:
        raise ValueError(f"matcher value contains unescaped double quote: {m.group(3)}")
    return Matcher.make(name, op, "".join(out))


def _value(s: str, pos: int, text: str) -> tuple[str, int]:
    if pos < len(s) and s[pos] == '"':
        end = pos + 1
        while end < len(s):
            if s[end] == "\\":
                end += 2
                continue
            if s[end] == '"':
                try:
                    return json.loads(s[pos : end + 1]), end + 1
                except ValueError:
                    raise ValueError(f"{text!r}: bad escape in quoted value") from None
            end += 1
        raise ValueError(f"{text!r}: unterminated quoted value")
    end = s.find(",", pos)
    end = len(s) if end < 0 else end
    return s[pos:end].strip(), end


def format_matchers(matchers: list[Matcher]) -> str:
    """`{a="b",c=~"d"}` as Alertmanager's Matchers.String() (used in route keys)."""
    return "{" + ",".join(str(m) for m in matchers) + "}"
