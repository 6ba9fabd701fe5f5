"""Multi-line events: the lines of one event (a log line and its stack trace) joined
before decoding, and the exception fields read from them.

A source with `multiline:` gets one of the decoders below from `formats.make_decoder`;
a source without it never reaches this module, so single-line decoding is unchanged.

**Which lines join.** Each line is judged by the rules (`Rules`): it either begins an
event or continues the event before it (in the same stream). A preset is a small state
machine in the manner of Fluent Bit's multiline parsers; a line no rule claims begins an
event:

- python: `Traceback (most recent call last):` continues the line before it (what
  `logger.exception()` prints), and so do its indented frames; the first line that is
  not indented is the exception line; after it blank lines, `During handling of the
  above exception...`, `The above exception was the direct cause...` and the next
  `Traceback` continue. `  + Exception Group Traceback` and logging's `Stack (most
  recent call last):` continue with their indented lines. (A traceback cut short, with
  no exception line, takes the next line as its exception line.)
- go: `panic: `, `fatal error: `, `SIGQUIT: ` (and the like) begin an event; after them
  `[signal ...`, tab-indented lines (`\tpanic: ... [recovered]`), blank lines,
  `goroutine N [...]:` headers, function lines (`main.main()`, `created by ...`), their
  tab-indented file lines and `runtime stack:` continue. A goroutine dump right after a
  log line (net/http's `http: panic serving`, `debug.Stack()`) continues that line.
- java: an exception line (`java.lang.IllegalStateException: ...`, a qualified class
  ending in Exception, Error or Throwable) continues the log line before it; then
  `\tat ...` frames, `... N more`, `Caused by:`, `Suppressed:` and blank lines.
  `Exception in thread "main" ...` (uncaught) begins an event.
- node: `    at ...` frames continue the line before them (the error's own line, or a log
  line ending with it); after them indented lines (`[cause]: ...`, the error's own
  properties), blank lines and the closing `}` continue.

The custom rule is Vector's and Fluent Bit's: a `start` regex (other lines continue)
and/or a `continue` regex (other lines begin). An event is complete when the line after it begins
the next one, when the file has been quiet for `timeout` (the source calls `flush`), or
when it reaches `max_lines`/`max_bytes` (then it is handed on as it is, and the lines
that would still continue it are dropped and counted once as `too_long`).

**What an event is made of, per format.**

- `regex`: the regex is searched in the joined text (lines joined by `\\n`) with
  `re.MULTILINE`: `^` and `$` match at each line's start and end and `.` stops at a line
  end, so a regex written for single lines takes its fields from the first line (and
  `message` stays one line, as metric regexes expect); `\\n` or `(?s:...)` in the regex
  reach further lines.
- `logfmt`: the first line is decoded; the lines after it only give the exception fields.
- `json`: a JSON object line is always one event of its own (a traceback logged by a
  JSON logger is already inside a field); lines that are not JSON are joined.
- `cri`/`docker`: records are reassembled from their `P`/`F` chunks (split lines) first,
  per stream; the payloads are then joined per stream and decoded by `inner_format`
  (`json`/`text`: `{"message": joined text}`, unless the payload is a JSON object, which
  is never joined). The event takes the `time` of its first record. Streams interleave
  line by line in these files, so each stream joins on its own, and an event waiting for
  its next line is complete once a record of another stream is `timeout` later (by the
  records' own times).

A joined event that the format cannot decode (a bare traceback in a regex source) but in
which an exception is found is still an event: `{"message": joined text, "exception":
...}`. Otherwise each event that yields nothing is counted once, by the reason its format
gives (`no_match`, `not_logfmt`, `not_json`, `empty`).

**Exception fields** (OpenTelemetry's names), added to events of more than one line as a
nested object, so `exception.type` reaches them in `match` and `labels`:
`{"exception": {"type", "message", "stacktrace"}}`; an event that has an `exception`
field of its own keeps it. `stacktrace` is the text from the exception's first line (the
`Traceback` header, the panic, the Java exception line, the Node error) to the event's
end. `type` and `message`:

- python: the last exception line (`openai.APITimeoutError: Request timed out.`), i.e.
  the exception raised last in a chain; the name as Python prints it (module-qualified
  unless built in). Exception groups: the group's type.
- go: there are no exception types in a panic; `runtime.Error` for runtime errors
  (`panic: runtime error: ...`), the value's type when Go prints one (`panic: (main.T)
  ...`), `panic` for any other panic value, `fatal error` for the runtime's fatal errors
  (deadlock, concurrent map writes), the signal for `SIGQUIT:`-style dumps.
- java: the first exception line's class (the outermost; `Caused by:` lines are in the
  stacktrace); `Exception in thread "main"` is not part of it.
- node: the error's name (`TypeError`, `Error [ERR_X]` gives `Error`) from the line just
  before the first `    at` frame.

With a custom rule all four shapes are looked for. Single-line events get no exception
fields.

**Checkpoints.** The decoders hold the lines of the event not yet complete and say how
many (`held_lines`); the file source keeps its checkpoint at the first of them, so a
restart reads a half-read event again, whole.
"""

from __future__ import annotations

import datetime
import re
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

from agent.decode.base import Decoder, OnError
from agent.decode.config import DecodeConfig, MultilineConfig
from agent.decode.events import Event
from agent.decode.json import _json_failure
from agent.decode.logfmt import parse_logfmt
from agent.decode.payload import payload_text

# -- rules: which lines continue an event -------------------------------------------------

NORMAL = 0
"""Every rule's first state: the line before was an ordinary line (or there was none)."""

Step = Callable[[int, str], tuple[bool, int]]
"""(state, line text) -> (does the line continue the event before it, next state)."""


class Rules:
    """One preset or custom rule: `step` judges a line in a state.

    `special` is the hot path: in the `NORMAL` state a line it does not match begins an
    event and leaves the state `NORMAL`, so `step` is not called (None: always call it).
    """

    __slots__ = ("kind", "special", "step")

    def __init__(self, kind: str | None, special: Callable[[str], object] | None, step: Step):
        self.kind = kind
        """The preset, None for a custom rule (whose exceptions may be any of the four)."""
        self.special = special
        self.step = step


def _blank(text: str) -> bool:
    return not text or text.isspace()


def _indented(text: str) -> bool:
    return text[:1] in (" ", "\t")


# python ---------------------------------------------------------------------------------

_PY_TB, _PY_EXC, _PY_INDENTED = 1, 2, 3
_PY_HEADERS = (
    "Traceback (most recent call last):",
    "  + Exception Group Traceback (most recent call last):",
    "Stack (most recent call last):",  # logging's stack_info=True
)
_PY_CHAIN = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)


def _python(state: int, text: str) -> tuple[bool, int]:
    if state == _PY_TB:  # frames: indented; the first line that is not is the exception
        return True, (_PY_TB if _indented(text) or _blank(text) else _PY_EXC)
    if state == _PY_INDENTED:  # an exception group or a stack: indented to its end
        if _indented(text):
            return True, state
        state = NORMAL
    if text.startswith(_PY_HEADERS[0]):
        return True, _PY_TB
    if text.startswith(_PY_HEADERS[1:]):
        return True, _PY_INDENTED
    if state == _PY_EXC and (_blank(text) or text.startswith(_PY_CHAIN)):
        return True, _PY_EXC
    return False, NORMAL


# go -------------------------------------------------------------------------------------

_GO_HEADER, _GO_DUMP = 1, 2
_GO_START = re.compile(r"(?:panic|fatal error): |SIG[A-Z]+: |.*\bhttp: panic serving ")
_GO_GOROUTINE = re.compile(r"goroutine \d+ .*\]:$")
_GO_FRAME = re.compile(r"\S+\(.*\)$|created by |\.\.\.additional frames elided\.\.\.$")


def _go(state: int, text: str) -> tuple[bool, int]:
    if state != NORMAL:
        if _blank(text) or text[:1] == "\t":
            return True, state
        if _GO_GOROUTINE.match(text) or text == "runtime stack:":
            return True, _GO_DUMP
        if state == _GO_HEADER and text.startswith("[signal "):
            return True, state
        if state == _GO_DUMP and (_GO_FRAME.match(text) or text.startswith("exit status ")):
            return True, state
    if _GO_GOROUTINE.match(text):  # a dump after a log line (net/http, debug.Stack)
        return True, _GO_DUMP
    if _GO_START.match(text):
        return False, _GO_HEADER
    return False, NORMAL


# java -----------------------------------------------------------------------------------

_JAVA_TRACE = 1
_JAVA_HEADER = re.compile(
    r"(?:Exception in thread \"[^\"]*\" )?(?:[A-Za-z_$][\w$]*\.)+[\w$]*"
    r"(?:Exception|Error|Throwable)(?::|$)"
)
_JAVA_MORE = re.compile(
    r"\s+at \S|\s*\.\.\. \d+ (?:more|common frames omitted)|\s*(?:Caused by|Suppressed): "
)


def _java(state: int, text: str) -> tuple[bool, int]:
    if state == _JAVA_TRACE and (_blank(text) or _JAVA_MORE.match(text)):
        return True, state
    if _JAVA_HEADER.match(text):  # the exception line joins the log line before it...
        return not text.startswith("Exception in thread"), _JAVA_TRACE  # ...unless uncaught
    if _JAVA_MORE.match(text):
        return True, _JAVA_TRACE
    return False, NORMAL


# node -----------------------------------------------------------------------------------

_NODE_STACK = 1
_NODE_FRAME = re.compile(r"\s+at \S")


def _node(state: int, text: str) -> tuple[bool, int]:
    if state == _NODE_STACK and (_indented(text) or _blank(text) or text.startswith("}")):
        return True, state  # frames, then `{ code: ..., [cause]: ... }` until its `}`
    if _NODE_FRAME.match(text):
        return True, _NODE_STACK
    return False, NORMAL


_PRESETS: dict[str, tuple[Callable[[str], object], Step]] = {
    "python": (re.compile("|".join(re.escape(h) for h in _PY_HEADERS)).match, _python),
    "go": (re.compile(r"panic: |fatal error: |SIG[A-Z]+: |goroutine \d|.*http: panic").match, _go),
    "java": (re.compile(r"\s+at \S|\s*\.\.\. \d|(?:Exception in thread|[\w$]+\.)").match, _java),
    "node": (_NODE_FRAME.match, _node),
}


def make_rules(cfg: MultilineConfig) -> Rules:
    if cfg.preset is not None:
        special, step = _PRESETS[cfg.preset]
        return Rules(cfg.preset, special, step)
    start = re.compile(cfg.start).search if cfg.start is not None else None
    cont = re.compile(cfg.continue_).search if cfg.continue_ is not None else None

    def custom(state: int, text: str) -> tuple[bool, int]:
        if start is not None and start(text):
            return False, NORMAL
        if cont is None:
            return True, NORMAL
        return cont(text) is not None, NORMAL

    return Rules(None, None, custom)


# -- exception fields ---------------------------------------------------------------------

_PY_LINE = re.compile(r"((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*)(?:: (.*))?$")
_PY_GROUP_LINE = re.compile(r"  \| ((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*)(?:: (.*))?$")
_GO_PANIC = re.compile(r"(?:panic|(fatal error)): (.*?)(?: \[recovered\])?$")
_GO_VALUE_TYPE = re.compile(r"\(([^()\s]+)\) ")
_GO_SIGNAL = re.compile(r"(SIG[A-Z]+): (.*)$")
_GO_HTTP = re.compile(r".*\bhttp: panic serving \S+: (.*)$")
_JAVA_LINE = re.compile(
    r"(?:Exception in thread \"[^\"]*\" )?((?:[A-Za-z_$][\w$]*\.)*[A-Za-z_$][\w$]*)(?:: (.*))?$"
)
_NODE_LINE = re.compile(r"([A-Za-z_$][\w$]*(?:Error|Exception)|Error)(?: \[[^\]]*\])?(?:: (.*))?$")


def _fields(kind: str, message: str | None, lines: list[str], first: int) -> dict[str, str]:
    out = {"type": kind} if kind else {}
    if message is not None:
        out["message"] = message
    out["stacktrace"] = "\n".join(lines[first:]).rstrip()
    return out


def _python_exception(lines: list[str]) -> dict[str, str] | None:
    first = next((i for i, ln in enumerate(lines) if ln.startswith(_PY_HEADERS)), None)
    if first is None:
        return None
    last = None
    for ln in lines[first + 1 :]:
        if ln and not (_indented(ln) or ln.isspace() or ln.startswith(_PY_CHAIN + _PY_HEADERS)):
            last = ln
    m = _PY_LINE.match(last) if last is not None else None
    if m is None:  # an exception group (all indented), or a stack with no exception
        m = next(filter(None, map(_PY_GROUP_LINE.match, lines[first + 1 :])), None)
    if m is None:
        return None if lines[first].startswith(_PY_HEADERS[2]) else _fields("", None, lines, first)
    return _fields(m.group(1), m.group(2) or "", lines, first)


def _go_exception(lines: list[str]) -> dict[str, str] | None:
    for i, ln in enumerate(lines):
        m = _GO_PANIC.match(ln)
        if m is not None:
            message = m.group(2)
            if m.group(1):
                kind = "fatal error"
            elif message.startswith("runtime error: "):
                kind = "runtime.Error"
            else:
                value = _GO_VALUE_TYPE.match(message)
                kind = value.group(1) if value else "panic"
            return _fields(kind, message, lines, i)
        m = _GO_SIGNAL.match(ln) or _GO_HTTP.match(ln)
        if m is not None and any(map(_GO_GOROUTINE.match, lines[i + 1 :])):
            if m.re is _GO_HTTP:
                return _fields("panic", m.group(1), lines, i)
            return _fields(m.group(1), m.group(2), lines, i)
    first = next((i for i, ln in enumerate(lines) if _GO_GOROUTINE.match(ln)), None)
    return None if first is None else _fields("", None, lines, first)


def _first_frame(lines: list[str]) -> int | None:
    return next((i for i, ln in enumerate(lines) if i and _NODE_FRAME.match(ln)), None)


def _java_exception(lines: list[str]) -> dict[str, str] | None:
    frame = _first_frame(lines)
    if frame is None:
        return None
    header = frame - 1
    m = _JAVA_LINE.match(lines[header])
    if m is None:
        return _fields("", None, lines, frame)
    return _fields(m.group(1), m.group(2) or "", lines, header)


def _node_exception(lines: list[str]) -> dict[str, str] | None:
    frame = _first_frame(lines)
    if frame is None:
        return None
    header = lines[frame - 1]
    m = _NODE_LINE.search(header)
    if m is None:
        return _fields("", None, lines, frame)
    stack = [header[m.start() :], *lines[frame:]]
    return _fields(m.group(1), m.group(2) or "", stack, 0)


def _any_exception(lines: list[str]) -> dict[str, str] | None:
    found = _python_exception(lines) or _go_exception(lines)
    if found is not None:
        return found
    frame = _first_frame(lines)
    if frame is None:
        return None
    node = _NODE_LINE.search(lines[frame - 1])
    java = _JAVA_LINE.match(lines[frame - 1])
    if lines[frame].startswith("\tat ") or node is None or (java and "." in java.group(1)):
        return _java_exception(lines)
    return _node_exception(lines)


_EXCEPTIONS: dict[str | None, Callable[[list[str]], dict[str, str] | None]] = {
    "python": _python_exception,
    "go": _go_exception,
    "java": _java_exception,
    "node": _node_exception,
    None: _any_exception,
}


def exception_fields(lines: list[str], preset: str | None) -> dict[str, str] | None:
    """`{"type", "message", "stacktrace"}` of the exception in an event's lines, None if
    there is none; keys not found are left out (see the module docstring)."""
    return _EXCEPTIONS[preset](lines)


# -- making events from joined lines -----------------------------------------------------

Make = Callable[[list[str]], "Event | None"]
"""An event's lines -> the event (with its exception fields), or None once the reason it
is not one was counted."""


def event_maker(kind: str, cfg: DecodeConfig, preset: str | None, on_error: OnError) -> Make:
    """How one event's lines become an event in format `kind` (`regex`, `logfmt`, `text`,
    or `json` for the lines of a JSON source that are not JSON)."""
    find = _EXCEPTIONS[preset]

    def with_exception(event: Event | None, lines: list[str], reason: str) -> Event | None:
        exception = find(lines) if len(lines) > 1 else None
        if exception is None:
            if event is None:
                on_error(reason)
            return event
        if event is None:
            return {"message": "\n".join(lines), "exception": exception}
        if "exception" not in event:
            event["exception"] = exception
        return event

    if kind == "regex":
        if not cfg.regex:
            raise ValueError("`format: regex` needs a `regex` with named groups")
        search = re.compile(cfg.regex, re.MULTILINE).search

        def make_regex(lines: list[str]) -> Event | None:
            if len(lines) == 1:
                text = lines[0]
                if _blank(text):
                    on_error("empty")
                    return None
                m = search(text)
                if m is None:
                    on_error("no_match")
                    return None
                return {k: v for k, v in m.groupdict().items() if v is not None}
            m = search("\n".join(lines))
            event = None if m is None else {k: v for k, v in m.groupdict().items() if v is not None}
            return with_exception(event, lines, "no_match")

        return make_regex

    if kind == "logfmt":

        def make_logfmt(lines: list[str]) -> Event | None:
            if len(lines) == 1 and _blank(lines[0]):
                on_error("empty")
                return None
            return with_exception(parse_logfmt(lines[0]), lines, "not_logfmt")

        return make_logfmt

    if kind == "json":  # lines of a json source that are not JSON objects

        def make_json(lines: list[str]) -> Event | None:
            if len(lines) == 1:
                if _blank(lines[0]):
                    on_error("empty")
                else:
                    on_error("not_json")
                return None
            return with_exception(None, lines, "empty" if _blank("".join(lines)) else "not_json")

        return make_json

    def make_text(lines: list[str]) -> Event | None:
        text = lines[0] if len(lines) == 1 else "\n".join(lines)
        if _blank(text):
            on_error("empty")
            return None
        event = {"message": text}
        return event if len(lines) == 1 else with_exception(event, lines, "")

    return make_text


# -- joining the lines of a line-per-record format ---------------------------------------


class LineJoiner(Decoder):
    """`regex`, `logfmt` and `json` sources with `multiline`: one stream of lines.

    The event being joined is `_lines` (None while there is none); it is complete when a
    line begins the next one. A JSON source's object lines are events of their own.
    """

    __slots__ = (
        "_drop",
        "_json",
        "_lines",
        "_make",
        "_max_bytes",
        "_max_lines",
        "_size",
        "_special",
        "_state",
        "_step",
    )

    def __init__(self, cfg: DecodeConfig, kind: str, on_error: OnError) -> None:
        super().__init__(on_error)
        ml = cfg.multiline
        assert ml is not None
        rules = make_rules(ml)
        self._special = rules.special
        self._step = rules.step
        self._make = event_maker(kind, cfg, rules.kind, on_error)
        self._json = kind == "json"
        self._max_lines = ml.max_lines
        self._max_bytes = ml.max_bytes
        self._state = NORMAL
        self._lines: list[str] | None = None
        self._size = 0
        self._drop = False
        """The event was cut at a limit: lines that would continue it are dropped."""

    @property
    def held_lines(self) -> int:
        return 0 if self._lines is None else len(self._lines)

    def decode(self, lines: list[bytes], out: list[Event]) -> None:
        special = self._special
        step = self._step
        state = self._state
        held = self._lines
        size = self._size
        max_lines = self._max_lines
        max_bytes = self._max_bytes
        json_lines = self._json
        loads = orjson.loads
        failed = orjson.JSONDecodeError
        for line in lines:
            if json_lines:
                try:
                    obj = loads(line)
                    reason = ""
                except failed:
                    obj, reason = _json_failure(line)
                if not reason or reason == "invalid_utf8":  # JSON: one event, never joined
                    if held is not None:
                        self._finish(held, out)
                        held = None
                    state = NORMAL
                    self._drop = False
                    if type(obj) is dict:
                        out.append(obj)
                    else:
                        self._on_error(reason or "not_object")
                    continue
            text = line.decode("utf-8", "replace")
            if text[-1:] == "\r":
                text = text[:-1]
            if state == NORMAL and special is not None and not special(text):
                continues = False
            else:
                continues, state = step(state, text)
            if continues:
                if held is not None:
                    if len(held) < max_lines and size + 1 + len(line) <= max_bytes:
                        held.append(text)
                        size += 1 + len(line)
                        continue
                    self._finish(held, out)  # cut at the limit; drop the rest of it
                    held = None
                    self._drop = True
                    self._on_error("too_long")
                    continue
                if self._drop:
                    continue
            self._drop = False
            if held is not None:
                self._finish(held, out)
            held = [text]
            size = len(line)
        self._state = state
        self._lines = held
        self._size = size

    def _finish(self, lines: list[str], out: list[Event]) -> None:
        event = self._make(lines)
        if event is not None:
            out.append(event)

    def flush(self, out: list[Event]) -> None:
        if self._lines is not None:
            self._finish(self._lines, out)
        self._lines = None
        self._state = NORMAL
        self._drop = False


# -- joining the payloads of cri and docker records --------------------------------------

Record = tuple["str | None", "str | None", bool, "bytes | str"]
"""A wrapper line: (stream, time, whole record (F, or docker's trailing newline), payload)."""
Split = Callable[[bytes], "Record | str"]
"""A wrapper line -> its record, or the reason it is not one."""


class _Slot:
    """A record's place in the output order, taken when its first line arrives.

    A slot becomes an event's when its record begins one (the record's event, or the
    reason it has none, once the event is complete), or is `void` when its record
    continues an event that began before it. The first line of the oldest slot not handed
    on is where a restart reads from (`held_lines`), so an event is handed on only when
    every line it spans lies before the first line of every event still held: streams
    interleave, and an event of one stream may span lines of another's (`_release`)."""

    __slots__ = ("done", "event", "first", "last", "void")

    def __init__(self, first: int) -> None:
        self.first = first
        """Index (lines fed before it) of its record's first line."""
        self.last = first
        """Index of the last line of its event so far."""
        self.event: Event | None = None
        self.done = False
        self.void = False


class _Stream:
    __slots__ = (
        "chunk_size",
        "chunk_slot",
        "chunk_time",
        "chunks",
        "drop",
        "drop_record",
        "last_time",
        "lines",
        "name",
        "size",
        "slot",
        "state",
        "time",
    )

    def __init__(self, name: str | None) -> None:
        self.name = name
        self.chunks: list[Any] | None = None
        """`P` chunks (docker: records without the trailing newline) of a record."""
        self.chunk_size = 0
        self.chunk_time: str | None = None
        self.chunk_slot: _Slot | None = None
        self.drop_record = False
        self.state = NORMAL
        self.lines: list[str] | None = None
        """The event being joined."""
        self.size = 0
        self.slot: _Slot | None = None
        self.time: str | None = None
        self.last_time: str | None = None
        self.drop = False


class RecordJoiner(Decoder):
    """`cri` and `docker` sources with `multiline`: records reassembled per stream, their
    payloads joined per stream, events handed on in the order they began (see `_Slot`)."""

    __slots__ = (
        "_cfg",
        "_inner_json",
        "_make",
        "_max",
        "_max_bytes",
        "_max_lines",
        "_n",
        "_slots",
        "_special",
        "_split",
        "_step",
        "_streams",
        "_timeout",
        "_times",
    )

    def __init__(self, cfg: DecodeConfig, split: Split, on_error: OnError) -> None:
        super().__init__(on_error)
        ml = cfg.multiline
        assert ml is not None
        rules = make_rules(ml)
        self._special = rules.special
        self._step = rules.step
        kind = "text" if cfg.inner_format == "json" else cfg.inner_format
        self._make = event_maker(kind, cfg, rules.kind, on_error)
        self._inner_json = cfg.inner_format == "json"
        self._split = split
        self._max = cfg.max_line_bytes
        self._max_lines = ml.max_lines
        self._max_bytes = ml.max_bytes
        self._timeout = ml.timeout
        self._streams: dict[str | None, _Stream] = {}
        self._slots: deque[_Slot] = deque()
        self._n = 0
        self._times: dict[str, float | None] = {}

    @property
    def held_lines(self) -> int:
        return self._n - self._slots[0].first if self._slots else 0

    def decode(self, lines: list[bytes], out: list[Event]) -> None:
        split = self._split
        streams = self._streams
        slots = self._slots
        for line in lines:
            index = self._n
            self._n = index + 1
            record = split(line)
            if isinstance(record, str):
                self._on_error(record)
                continue
            name, time, full, payload = record
            st = streams.get(name)
            if st is None:
                st = streams[name] = _Stream(name)
            if st.drop_record:
                st.drop_record = not full
                continue
            if st.chunks is None:
                slot = _Slot(index)
                slots.append(slot)
                if full:
                    self._record(st, time, payload, slot, index)
                else:
                    st.chunks = [payload]
                    st.chunk_size = len(payload)
                    st.chunk_time = time
                    st.chunk_slot = slot
                    self._check_size(st, full)
            else:
                st.chunks.append(payload)
                st.chunk_size += len(payload)
                if not self._check_size(st, full) and full:
                    self._whole(st, index)
            if len(slots) > self._max_lines:
                self._release(out)
                if len(slots) > self._max_lines:
                    self._force()
        self._release(out)

    def _check_size(self, st: _Stream, full: bool) -> bool:
        """A record grown past `max_line_bytes` is dropped (to its end), as without
        multiline; True if it was."""
        if st.chunk_size <= self._max:
            return False
        self._on_error("too_long")
        assert st.chunk_slot is not None
        st.chunk_slot.done = True
        st.chunk_slot.last = self._n - 1
        st.chunks = None
        st.drop_record = not full
        return True

    def _whole(self, st: _Stream, last: int) -> None:
        """The chunks of `st` make a whole record now, ending at line `last`."""
        chunks, slot = st.chunks, st.chunk_slot
        assert chunks is not None and slot is not None
        st.chunks = None
        st.chunk_slot = None
        self._record(st, st.chunk_time, chunks[0][:0].join(chunks), slot, last)

    def _record(
        self, st: _Stream, time: str | None, payload: bytes | str, slot: _Slot, last: int
    ) -> None:
        if len(self._streams) > 1 and time is not None:
            for other in self._streams.values():
                if other is not st and other.lines is not None and self._late(other, time):
                    self._complete(other)
                    other.state = NORMAL  # as after a quiet spell: the next line begins
        if self._inner_json and payload[:1] in (b"{", "{"):
            try:
                obj = orjson.loads(payload)
            except orjson.JSONDecodeError:
                obj = None
            if type(obj) is dict:
                if st.lines is not None:
                    self._complete(st)
                st.state = NORMAL
                st.drop = False
                _stamp(obj, st.name, time)
                slot.event = obj
                slot.last = last
                slot.done = True
                return
        text = payload_text(payload)
        state = st.state
        if state == NORMAL and self._special is not None and not self._special(text):
            continues = False
        else:
            continues, st.state = self._step(state, text)
        held = st.lines
        if continues and held is not None:
            slot.void = slot.done = True  # its lines are part of the event in st.slot
            assert st.slot is not None
            st.slot.last = last
            if len(held) < self._max_lines and st.size + 1 + len(payload) <= self._max_bytes:
                held.append(text)
                st.size += 1 + len(payload)
                st.last_time = time
                return
            self._complete(st)
            st.drop = True
            self._on_error("too_long")
            return
        if continues and st.drop:
            slot.done = True
            slot.last = last
            return
        st.drop = False
        if held is not None:
            self._complete(st)
        slot.last = last
        st.lines = [text]
        st.size = len(payload)
        st.slot = slot
        st.time = st.last_time = time

    def _late(self, st: _Stream, time: str) -> bool:
        """Is `time` (a record's) `timeout` or more after the last line of `st`'s event?"""
        last = st.last_time
        if last is None:
            return False
        if self._timeout >= 1 and last[:19] == time[:19]:
            return False  # the same second
        then, now = self._seconds(last), self._seconds(time)
        return then is not None and now is not None and now - then >= self._timeout

    def _seconds(self, time: str) -> float | None:
        times = self._times
        if time in times:
            seconds = times[time]
        else:
            try:
                seconds = datetime.datetime.fromisoformat(time).timestamp()
            except ValueError:
                seconds = None
            if len(times) > 64:
                times.clear()
            times[time] = seconds
        return seconds

    def _complete(self, st: _Stream) -> None:
        lines, slot = st.lines, st.slot
        assert lines is not None and slot is not None
        st.lines = None
        st.slot = None
        event = self._make(lines)
        if event is not None:
            _stamp(event, st.name, st.time)
        slot.event = event
        slot.done = True

    def _force(self) -> None:
        """Too many events wait behind ones still being joined: complete those as they are
        (records still in chunks included), so the queue goes out."""
        for st in self._streams.values():
            if st.chunks is not None:
                self._whole(st, self._n - 1)
            if st.lines is not None:
                self._complete(st)
                st.state = NORMAL

    def _release(self, out: list[Event]) -> None:
        """Hand on the oldest events, as far as every line they span lies before the first
        line of every event still held (so a restart from there reads none of them)."""
        slots = self._slots
        while slots and slots[0].void:
            slots.popleft()
        if not slots or not slots[0].done:
            return
        release = 0
        reach = -1
        for i, slot in enumerate(slots):
            if slot.void:
                continue
            if slot.first > reach:
                release = i
            if not slot.done:
                break
            reach = max(reach, slot.last)
        else:
            release = len(slots)
        for _ in range(release):
            slot = slots.popleft()
            if slot.event is not None:
                out.append(slot.event)
        while slots and slots[0].void:
            slots.popleft()

    def flush(self, out: list[Event]) -> None:
        for st in self._streams.values():
            if st.chunks is not None:
                self._whole(st, self._n - 1)
            st.drop_record = False
        for st in self._streams.values():
            if st.lines is not None:
                self._complete(st)
            st.state = NORMAL
            st.drop = False
        self._release(out)
        assert not self._slots


def _stamp(event: Event, stream: str | None, time: str | None) -> None:
    if stream is not None and "stream" not in event:
        event["stream"] = stream
    if time is not None and "time" not in event:
        event["time"] = time
