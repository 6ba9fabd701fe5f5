"""Decoders: log line bytes -> events (dicts), or a counted reason.

One `Decoder` per file (or stdin stream), made by `formats.make_decoder(cfg, on_error)`;
this module holds what every format shares, each format has a module of its own. It is a
pure stage: no I/O, no clock. `decode(lines, out)` appends the events found in `lines`
(without their trailing newline) to `out`; every line that yields no event is reported once
through `on_error(reason)`, so for line-per-record formats

    lines fed == events + errors counted

and for `cri`/`docker`, whose records may span several lines, every *record* is either an
event or one counted reason. `flush(out)` hands on what is held back (partial CRI/docker
records); the source calls it when a file rotates away and at shutdown. With `multiline`
(`multiline.py`) lines are joined into events first, and `held_lines` tells the source
which lines an unfinished event holds.

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

from collections.abc import Callable

from agent.decode.events import Event

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

BOM = b"\xef\xbb\xbf"


class Decoder:
    """One per file or stream: holds state across lines (CRI partials, docker split lines)."""

    __slots__ = ("_on_error",)

    def __init__(self, on_error: OnError) -> None:
        self._on_error = on_error

    def decode(self, lines: list[bytes], out: list[Event]) -> None:
        raise NotImplementedError

    def flush(self, out: list[Event]) -> None:
        """Hand on anything held back (at rotation or shutdown)."""

    @property
    def held_lines(self) -> int:
        """How many of the last lines fed belong to events not handed on yet: the lines of
        a multi-line event still being joined (`multiline.py`). A file source keeps its
        checkpoint before them, so a restart reads the event again, whole. 0 for the
        single-line decoders, whose held CRI/docker chunks are handed on by `flush`."""
        return 0


def line_text(line: bytes) -> str:
    text = line.decode("utf-8", "replace")
    return text[:-1] if text.endswith("\r") else text
