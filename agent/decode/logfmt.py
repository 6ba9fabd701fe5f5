"""`format: logfmt`: `key=value key2="quoted value"` lines."""

from __future__ import annotations

import re

from agent.decode.base import Decoder, line_text
from agent.decode.events import Event

_LOGFMT_PAIR = re.compile(r'([^\s="]+)(=(?:"((?:[^"\\]|\\.)*)"?|(\S*)))?', re.DOTALL)
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)", re.DOTALL)
_ESCAPES = {
    '"': '"',
    "\\": "\\",
    "/": "/",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "b": "\b",
    "f": "\f",
    "a": "\a",
    "v": "\v",
}
_SURROGATE = re.compile("[\ud800-\udfff]")


def _unescape_one(m: re.Match[str]) -> str:
    esc = m.group(1)
    if len(esc) > 1:
        return chr(int(esc[1:], 16))
    return _ESCAPES.get(esc, m.group(0))


def _unescape(value: str) -> str:
    value = _ESCAPE.sub(_unescape_one, value)
    if _SURROGATE.search(value):
        # \uD83D\uDE00 pairs become one character; a lone surrogate becomes U+FFFD, so
        # later stages can always encode the value.
        value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def parse_logfmt(text: str) -> Event | None:
    """`key=value ...` -> fields; None when the text holds no `key=value` pair."""
    if '"' in text:
        return _parse_logfmt_quoted(text)
    # No quotes: every whitespace-separated token is `key`, `key=` or `key=value` (after
    # any leading `=`, which cannot start a key), exactly as the general pattern reads it.
    event: Event = {}
    pairs = False
    for token in text.split():
        key, eq, value = token.lstrip("=").partition("=")
        if not key:
            continue
        if eq:
            event[key] = value
            pairs = True
        else:
            event[key] = True
    return event if pairs else None


def _parse_logfmt_quoted(text: str) -> Event | None:
    event: Event = {}
    pairs = False
    for m in _LOGFMT_PAIR.finditer(text):
        key, eq, quoted, bare = m.groups()
        if eq is None:
            event[key] = True
            continue
        pairs = True
        if quoted is not None:
            event[key] = _unescape(quoted) if "\\" in quoted else quoted
        else:
            event[key] = bare
    return event if pairs else None


class LogfmtDecoder(Decoder):
    __slots__ = ()

    def decode(self, lines: list[bytes], out: list[Event]) -> None:
        on_error = self._on_error
        for line in lines:
            if not line.strip():
                on_error("empty")
                continue
            event = parse_logfmt(line_text(line))
            if event is None:
                on_error("not_logfmt")
            else:
                out.append(event)
