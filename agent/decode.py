"""Decoders: log line bytes -> events (dicts), or a counted reason.

One `Decoder` per file (or stdin stream), made by `make_decoder(cfg, on_error)`. It is a
pure stage: no I/O, no clock. `decode(lines, out)` appends the events found in `lines`
(without their trailing newline) to `out`; every line that yields no event is reported once
through `on_error(reason)`, so for line-per-record formats

    lines fed == events + errors counted

and for `cri`/`docker`, whose records may span several lines, every *record* is either an
event or one counted reason. `flush(out)` hands on what is held back (partial CRI/docker
records); the source calls it when a file rotates away and at shutdown.

Reasons (`REASONS`, pre-registered by /metrics so every counter shows from the start):

- `empty`         a blank (whitespace-only) line or record; counted, not silently skipped,
                  so the identity above holds.
- `not_json`      `json`: not JSON at all (or truncated JSON). A UTF-8 byte-order mark
                  before an object is ignored, not counted.
- `not_object`    `json`: valid JSON but not an object (`42`, `"text"`, `[...]`).
- `invalid_utf8`  `json`: the line is not UTF-8. JSON must be UTF-8 (RFC 8259) and orjson
                  refuses it; counted apart from `not_json` because it points at an encoding
                  problem, not at a text line in a JSON log.
- `too_long`      a line longer than `max_line_bytes` (counted by the line reader), or a
                  CRI/docker record whose reassembled payload grows past `max_line_bytes`
                  (counted here, once, when it crosses the limit; the rest is discarded).
- `bad_cri`       `cri`: not `<time> <stdout|stderr> <P|F>[:tags] <payload>`, with a time
                  shaped like RFC 3339 (`2016-10-06T00:17:09.669794202Z`).
- `bad_docker`    `docker`: not a json-file record (an object with a string `log`).
- `no_match`      `regex` (or `inner_format: regex`): the text does not match `regex`.
- `not_logfmt`    `logfmt` (or `inner_format: logfmt`): no `key=value` pair on the line
                  (a stray text line, such as a traceback, would otherwise become an event
                  of bare words).

Rules the formats share:

- Decoders never guess types. A number inside a string stays a string (`extract`
  converts); only JSON's own types (numbers, booleans, null, nesting) come through typed.
- Text formats (`logfmt`, `regex`, text payloads of CRI/docker) decode invalid UTF-8 with
  U+FFFD replacement characters and do not count it: the event still exists, and the
  damaged bytes are usually one character of a user's message. A trailing `\\r` (CRLF
  files) is not part of any text field.
- CRI/docker payloads are decoded by `inner_format`: `json` (default) gives the payload's
  object when the payload is a JSON object, else `{"message": payload}`; `logfmt`,
  `regex` and `text` (always `{"message": payload}`) decode it as those formats do. The
  wrapper's `stream` and `time` (the raw timestamp string of the record's first chunk)
  are then added *only if the payload has no field of that name*: the application's own
  fields always win.
- `logfmt`: `key=value`, `key="quoted \\"value\\""` (escapes `\\" \\\\ \\n \\r \\t \\b \\f
  \\/ \\uXXXX`; an unknown escape is kept as written), `key=` gives `""`, a bare `key` gives
  `True`. The last of repeated keys wins. An unterminated quote runs to the end of line.
- `regex`: `re.search` (anchor with `^`/`$` if wanted); named groups become fields,
  groups that did not take part are left out.
- `auto`: the format is detected per file on the first recognisable line: a docker
  json-file record (an object with string `log` plus `stream` and `time`), any other JSON
  object (`json`), or a CRI line (`cri`). Once detected it stays. Lines before that are
  counted as the `json` decoder would count them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from agent.events import Event
from agent.sources.config import SourceConfig

OnError = Callable[[str], None]

REASONS: tuple[str, ...] = (
    "empty",
    "not_json",
    "not_object",
    "invalid_utf8",
    "too_long",
    "bad_cri",
    "bad_docker",
    "no_match",
    "not_logfmt",
)

_BOM = b"\xef\xbb\xbf"


class Decoder:
    """One per file or stream: holds state across lines (CRI partials, docker split lines)."""

    __slots__ = ("_on_error",)

    def __init__(self, on_error: OnError) -> None:
        self._on_error = on_error

    def decode(self, lines: list[bytes], out: list[Event]) -> None:
        raise NotImplementedError

    def flush(self, out: list[Event]) -> None:
        """Hand on anything held back (at rotation or shutdown)."""


# --------------------------------------------------------------------------- json


def _json_failure(line: bytes) -> tuple[Any, str]:
    """Why orjson refused `line`; or the value, for the one case we recover (a UTF-8 BOM)."""
    if not line.strip():
        return None, "empty"
    if line.startswith(_BOM):
        try:
            return orjson.loads(line[3:]), ""
        except orjson.JSONDecodeError:
            line = line[3:]
    try:
        line.decode()
    except UnicodeDecodeError:
        return None, "invalid_utf8"
    return None, "not_json"


class JSONDecoder(Decoder):
    """One JSON object per line: the hot path.

    The batch is parsed by `out.extend(map(orjson.loads, rest))`, a loop that runs in C:
    no Python bytecode per line. When a line fails, `extend` has kept the events before it
    and `rest` resumes after it, so the failure is handled and the loop restarts where it
    stopped. Whether everything parsed is an object is then checked over the whole batch
    at once; the rare non-objects are taken out and counted.
    """

    __slots__ = ()

    def decode(self, lines: list[bytes], out: list[Event]) -> None:
        loads = orjson.loads
        failed = orjson.JSONDecodeError
        start = len(out)
        rest = iter(lines)
        consumed = 0
        while True:
            before = len(out)
            try:
                out.extend(map(loads, rest))
                break
            except failed:
                consumed += len(out) - before + 1
                obj, reason = _json_failure(lines[consumed - 1])
                if reason:
                    self._on_error(reason)
                else:
                    out.append(obj)
        if len(out) > start:
            parsed = out[start:] if start else out
            if set(map(type, parsed)) != _ONLY_DICT:
                out[start:] = self._objects(parsed)

    def _objects(self, parsed: list[Any]) -> list[Event]:
        objects = []
        for obj in parsed:
            if type(obj) is dict:
                objects.append(obj)
            else:
                self._on_error("not_object")
        return objects


_ONLY_DICT = {dict}


# --------------------------------------------------------------------------- logfmt

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


def _text(line: bytes) -> str:
    text = line.decode("utf-8", "replace")
    return text[:-1] if text.endswith("\r") else text


class LogfmtDecoder(Decoder):
    __slots__ = ()

    def decode(self, lines: list[bytes], out: list[Event]) -> None:
        on_error = self._on_error
        for line in lines:
            if not line.strip():
                on_error("empty")
                continue
            event = parse_logfmt(_text(line))
            if event is None:
                on_error("not_logfmt")
            else:
                out.append(event)


# --------------------------------------------------------------------------- regex


class RegexDecoder(Decoder):
    __slots__ = ("_search",)

    def __init__(self, pattern: str, on_error: OnError) -> None:
        super().__init__(on_error)
        self._search = re.compile(pattern).search

    def decode(self, lines: list[bytes], out: list[Event]) -> None:
        on_error = self._on_error
        search = self._search
        for line in lines:
            if not line.strip():
                on_error("empty")
                continue
            m = search(_text(line))
            if m is None:
                on_error("no_match")
            else:
                out.append({k: v for k, v in m.groupdict().items() if v is not None})


# --------------------------------------------------------------------------- payloads

Payload = Callable[[bytes | str], "Event | None"]
"""Decodes a CRI/docker payload into an event, or counts why not and returns None."""


def _as_text(payload: bytes | str) -> str:
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8", "replace")
    return payload[:-1] if payload.endswith("\r") else payload


def _payload_decoder(cfg: SourceConfig, on_error: OnError) -> Payload:
    kind = cfg.inner_format
    loads = orjson.loads
    failed = orjson.JSONDecodeError

    if kind == "json":

        def decode_json(payload: bytes | str) -> Event | None:
            stripped = payload.lstrip()
            if not stripped:
                on_error("empty")
                return None
            if stripped[:1] in (b"{", "{"):
                try:
                    obj = loads(payload)
                except failed:
                    obj = None
                if type(obj) is dict:
                    return obj
            return {"message": _as_text(payload)}

        return decode_json

    if kind == "logfmt":

        def decode_logfmt(payload: bytes | str) -> Event | None:
            if not payload.strip():
                on_error("empty")
                return None
            event = parse_logfmt(_as_text(payload))
            if event is None:
                on_error("not_logfmt")
            return event

        return decode_logfmt

    if kind == "regex":
        if not cfg.regex:
            raise ValueError("`inner_format: regex` needs a `regex` with named groups")
        search = re.compile(cfg.regex).search

        def decode_regex(payload: bytes | str) -> Event | None:
            if not payload.strip():
                on_error("empty")
                return None
            m = search(_as_text(payload))
            if m is None:
                on_error("no_match")
                return None
            return {k: v for k, v in m.groupdict().items() if v is not None}

        return decode_regex

    def decode_text(payload: bytes | str) -> Event | None:
        if not payload.strip():
            on_error("empty")
            return None
        return {"message": _as_text(payload)}

    return decode_text


def _finish(event: Event | None, stream: Any, time: Any, out: list[Event]) -> None:
    if event is None:
        return
    if stream is not None and "stream" not in event:
        event["stream"] = stream
    if time is not None and "time" not in event:
        event["time"] = time
    out.append(event)


# --------------------------------------------------------------------------- cri

_STDOUT = b"stdout"
_STDERR = b"stderr"
_STREAM_NAMES = {_STDOUT: "stdout", _STDERR: "stderr"}


def _time_ok(time: bytes) -> bool:
    """Shaped like an RFC 3339 time (`2016-10-06T00:17:09.669794202Z`), and ASCII.

    Decoders do not parse times; this only tells a CRI line from other text. The fast path
    in `CRIDecoder.decode` inlines the same test.
    """
    return len(time) >= 20 and time[4] == 45 and time[10] == 84 and time.isascii()


def _split_cri(line: bytes) -> tuple[bytes, bytes, bool, bytes] | None:
    """`<time> <stream> <tag> <payload>` -> (time, stream, is_full, payload), None if malformed.

    The tag is `P` (partial) or `F` (full), possibly followed by `:`-separated extra tags
    (the CRI format reserves them). A line ending right after the tag has an empty payload.
    """
    parts = line.split(b" ", 3)
    if len(parts) == 4:
        time, stream, tag, payload = parts
    elif len(parts) == 3:
        time, stream, tag = parts
        payload = b""
    else:
        return None
    if stream != _STDOUT and stream != _STDERR:
        return None
    if tag == b"F":
        full = True
    elif tag == b"P":
        full = False
    else:
        head, colon, _ = tag.partition(b":")
        if not colon or (head != b"F" and head != b"P"):
            return None
        full = head == b"F"
    if not _time_ok(time):
        return None
    return time, stream, full, payload


class _Held:
    """A record being reassembled from chunks of one stream."""

    __slots__ = ("chunks", "size", "time")

    def __init__(self, time: Any, chunk: Any) -> None:
        self.time = time
        self.chunks = [chunk]
        self.size = len(chunk)


class CRIDecoder(Decoder):
    """Kubernetes CRI container logs, reassembling `P` chunks until `F` per stream.

    The common line, a whole record (`F`) while no stream holds or discards a record, is
    decoded inline; everything else goes through `_chunk`.
    """

    __slots__ = ("_dropping", "_held", "_inner_json", "_max", "_payload")

    def __init__(self, cfg: SourceConfig, on_error: OnError) -> None:
        super().__init__(on_error)
        self._payload = _payload_decoder(cfg, on_error)
        self._inner_json = cfg.inner_format == "json"
        self._max = cfg.max_line_bytes
        self._held: dict[bytes, _Held] = {}
        self._dropping: set[bytes] = set()
        """Streams whose current record grew too long: discard chunks until its `F`."""

    def decode(self, lines: list[bytes], out: list[Event]) -> None:
        loads = orjson.loads
        failed = orjson.JSONDecodeError
        payload_event = self._payload
        inner_json = self._inner_json
        held = self._held
        dropping = self._dropping
        append = out.append
        for line in lines:
            parts = line.split(b" ", 3)
            if (
                len(parts) != 4
                or held
                or dropping
                or parts[2] != b"F"
                or (parts[1] != _STDOUT and parts[1] != _STDERR)
            ):
                self._chunk(line, out)
                continue
            time, stream, _, payload = parts
            if not (len(time) >= 20 and time[4] == 45 and time[10] == 84 and time.isascii()):
                self._chunk(line, out)  # as _time_ok: "-" is 45, "T" is 84
                continue
            if inner_json and payload[:1] == b"{":
                try:
                    event = loads(payload)
                except failed:
                    event = None
                if type(event) is not dict:
                    event = payload_event(payload)
            else:
                event = payload_event(payload)
                if event is None:
                    continue
            if "stream" not in event:
                event["stream"] = "stdout" if stream == _STDOUT else "stderr"
            if "time" not in event:
                event["time"] = time.decode()
            append(event)

    def _chunk(self, line: bytes, out: list[Event]) -> None:
        parsed = _split_cri(line)
        if parsed is None:
            self._on_error("bad_cri")
            return
        time, stream, full, payload = parsed
        if self._dropping and stream in self._dropping:
            if full:
                self._dropping.discard(stream)
            return
        held = self._held
        record = held.get(stream)
        if record is None:
            if full:
                _finish(self._payload(payload), _STREAM_NAMES[stream], time.decode(), out)
                return
            record = held[stream] = _Held(time, payload)
        else:
            record.chunks.append(payload)
            record.size += len(payload)
        if record.size > self._max:
            del held[stream]
            self._on_error("too_long")
            if not full:
                self._dropping.add(stream)
        elif full:
            del held[stream]
            self._emit(stream, record, out)

    def _emit(self, stream: bytes, record: _Held, out: list[Event]) -> None:
        payload = b"".join(record.chunks)
        _finish(self._payload(payload), _STREAM_NAMES[stream], record.time.decode(), out)

    def flush(self, out: list[Event]) -> None:
        held, self._held = self._held, {}
        self._dropping.clear()
        for stream, record in held.items():
            self._emit(stream, record, out)


# --------------------------------------------------------------------------- docker


class DockerDecoder(Decoder):
    """Docker's json-file driver: `{"log": "text\\n", "stream": "stdout", "time": "..."}`.

    Docker splits output lines longer than 16 KiB into several records; all but the last
    lack the trailing newline in `log`, so records are joined (per stream) until one ends
    with `\\n`. Sizes are counted in characters of the decoded `log` text. As for CRI, a
    whole record while no stream holds or discards a record is decoded inline.
    """

    __slots__ = ("_dropping", "_held", "_inner_json", "_max", "_payload")

    def __init__(self, cfg: SourceConfig, on_error: OnError) -> None:
        super().__init__(on_error)
        self._payload = _payload_decoder(cfg, on_error)
        self._inner_json = cfg.inner_format == "json"
        self._max = cfg.max_line_bytes
        self._held: dict[str | None, _Held] = {}
        self._dropping: set[str | None] = set()

    def decode(self, lines: list[bytes], out: list[Event]) -> None:
        loads = orjson.loads
        failed = orjson.JSONDecodeError
        payload_event = self._payload
        inner_json = self._inner_json
        held = self._held
        dropping = self._dropping
        append = out.append
        str_ = str
        for line in lines:
            try:
                rec = loads(line)
            except failed:
                self._on_error("empty" if not line.strip() else "bad_docker")
                continue
            if type(rec) is not dict:
                self._on_error("bad_docker")
                continue
            log = rec.get("log")
            stream = rec.get("stream")
            time = rec.get("time")
            if (
                type(log) is not str_
                or (stream is not None and type(stream) is not str_)
                or (time is not None and type(time) is not str_)
            ):
                self._on_error("bad_docker")
                continue
            if held or dropping or not log.endswith("\n"):
                self._chunk(log, stream, time, out)
                continue
            log = log[:-1]
            if inner_json and log[:1] == "{":
                try:
                    event = loads(log)
                except failed:
                    event = None
                if type(event) is not dict:
                    event = payload_event(log)
            else:
                event = payload_event(log)
                if event is None:
                    continue
            if stream is not None and "stream" not in event:
                event["stream"] = stream
            if time is not None and "time" not in event:
                event["time"] = time
            append(event)

    def _chunk(self, log: str, stream: str | None, time: str | None, out: list[Event]) -> None:
        full = log.endswith("\n")
        if full:
            log = log[:-1]
        if self._dropping and stream in self._dropping:
            if full:
                self._dropping.discard(stream)
            return
        held = self._held
        record = held.get(stream)
        if record is None:
            if full:
                _finish(self._payload(log), stream, time, out)
                return
            record = held[stream] = _Held(time, log)
        else:
            record.chunks.append(log)
            record.size += len(log)
        if record.size > self._max:
            del held[stream]
            self._on_error("too_long")
            if not full:
                self._dropping.add(stream)
        elif full:
            del held[stream]
            _finish(self._payload("".join(record.chunks)), stream, record.time, out)

    def flush(self, out: list[Event]) -> None:
        held, self._held = self._held, {}
        self._dropping.clear()
        for stream, record in held.items():
            _finish(self._payload("".join(record.chunks)), stream, record.time, out)


# --------------------------------------------------------------------------- auto


def _detect(line: bytes) -> str | None:
    """`docker`, `json` or `cri` when `line` is recognisably one of them, else None."""
    if line.startswith(_BOM):
        line = line[3:]
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "cri" if _split_cri(line) is not None else None
    if type(obj) is not dict:
        return None
    if type(obj.get("log")) is str and "stream" in obj and "time" in obj:
        return "docker"
    return "json"


class AutoDecoder(Decoder):
    """Finds a file's format on its first recognisable line, then hands every line to it.

    One per file, like every decoder, so a source globbing plain JSON logs and container
    logs together decodes each file in its own format.
    """

    __slots__ = ("_cfg", "_found")

    def __init__(self, cfg: SourceConfig, on_error: OnError) -> None:
        super().__init__(on_error)
        self._cfg = cfg
        self._found: Decoder | None = None

    @property
    def detected(self) -> str | None:
        """The format found so far (`json`, `cri`, `docker`), None before the first."""
        return None if self._found is None else _NAMES[type(self._found)]

    def decode(self, lines: list[bytes], out: list[Event]) -> None:
        if self._found is not None:
            self._found.decode(lines, out)
            return
        for i, line in enumerate(lines):
            kind = _detect(line)
            if kind is not None:
                self._found = _make(kind, self._cfg, self._on_error)
                self._found.decode(lines[i:], out)
                return
            JSONDecoder(self._on_error).decode([line], out)

    def flush(self, out: list[Event]) -> None:
        if self._found is not None:
            self._found.flush(out)


_NAMES: dict[type[Decoder], str] = {
    JSONDecoder: "json",
    CRIDecoder: "cri",
    DockerDecoder: "docker",
}


def _make(kind: str, cfg: SourceConfig, on_error: OnError) -> Decoder:
    if kind == "json":
        return JSONDecoder(on_error)
    if kind == "cri":
        return CRIDecoder(cfg, on_error)
    if kind == "docker":
        return DockerDecoder(cfg, on_error)
    if kind == "logfmt":
        return LogfmtDecoder(on_error)
    if kind == "regex":
        if not cfg.regex:
            raise ValueError("`format: regex` needs a `regex` with named groups")
        return RegexDecoder(cfg.regex, on_error)
    if kind == "auto":
        return AutoDecoder(cfg, on_error)
    raise ValueError(f"unknown format {kind!r}")


def make_decoder(cfg: SourceConfig, on_error: OnError) -> Decoder:
    """The decoder for one file (or stdin) of source `cfg`; reasons go to `on_error`."""
    return _make(cfg.format, cfg, on_error)
