"""Config of decoding: a source's `format` and what that format needs."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from agent.decode.timestamps import FORMATS
from agent.support.configmodel import Duration, Model

Format = Literal["json", "cri", "docker", "logfmt", "regex", "auto"]
Preset = Literal["python", "go", "java", "node"]


def _compiles(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


class MultilineConfig(Model):
    """Which lines make one event: a stack trace joins the log line it belongs to.

    Either a `preset` or a custom rule (`start` and/or `continue`), as Fluent Bit's and
    Vector's multiline parsers take them; `agent/decode/multiline.py` applies it.
    """

    preset: Preset | None = None
    """Ready rules for the stack traces of a runtime: `python` (tracebacks, chained ones
    included), `go` (panics, goroutine dumps), `java` (`at ...`, `Caused by:`, `... N
    more`), `node` (an Error and its `    at` frames)."""
    start: str | None = None
    """Custom rule: a regex (searched) matching a line that begins an event; other lines
    continue the event before them."""
    continue_: str | None = Field(default=None, alias="continue")
    """Custom rule: a regex (searched) matching a line that continues the event before it;
    other lines begin an event (with `start` too: only lines matching neither do)."""
    max_lines: int = Field(default=1000, gt=0)
    """An event is cut at this many lines; the rest of it is dropped and counted once as
    `too_long`."""
    max_bytes: int = Field(default=1_048_576, gt=0)
    """An event is cut before it grows past this many bytes (as `max_lines`)."""
    timeout: Duration = Field(default=1.0, gt=0)
    """The last event of a file is handed on once the file has been quiet this long (an
    event is complete only when the line after it arrives)."""

    @model_validator(mode="before")
    @classmethod
    def _preset_name(cls, data: Any) -> Any:
        return {"preset": data} if isinstance(data, str) else data

    _start_compiles = field_validator("start", "continue_")(_compiles)

    @model_validator(mode="after")
    def _one_rule(self) -> MultilineConfig:
        custom = self.start is not None or self.continue_ is not None
        if self.preset is not None and custom:
            raise ValueError("give either a `preset` or `start`/`continue` regexes, not both")
        if self.preset is None and not custom:
            raise ValueError(
                "needs a `preset` (python, go, java, node) or a `start` or `continue` regex"
            )
        return self


class TimestampConfig(Model):
    """Where an event says when it happened: a source's `timestamp:`.

    With it, what was written while chatwatch was down is caught up in the log's own
    time after a restart (agent/catchup.py), and `chatwatch replay` reads the same field.
    """

    field: str | None = None
    """The field path (dots reach into nested objects); default: the first of `ts`,
    `time`, `timestamp`, `@timestamp` the event has. CRI and docker records carry the
    wrapper's time as `time` unless the payload has a field of that name."""
    format: str = "auto"
    """`auto` (ISO 8601 / RFC 3339 text, Python logging's `%(asctime)s`, or an epoch
    number in s, ms, µs or ns told apart by size), `rfc3339`, `unix`, `unix_ms`,
    `unix_us`, `unix_ns`, `python` (`2026-11-30 16:05:45,123`), or a strptime format with
    `%` directives. Text without a zone is UTC."""

    @model_validator(mode="before")
    @classmethod
    def _field_name(cls, data: Any) -> Any:
        return {"field": data} if isinstance(data, str) else data

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in FORMATS and "%" not in value:
            raise ValueError(
                f"expected one of {', '.join(FORMATS)} or a strptime format with % "
                f"directives (such as '%d/%b/%Y:%H:%M:%S %z'), got {value!r}"
            )
        return value


class DecodeConfig(Model):
    """How a source's lines become events; `sources[]` extends it with where they come from."""

    format: Format = "json"
    regex: str | None = None
    """Python regex with named groups, for `format: regex`; each group becomes a field."""
    inner_format: Literal["json", "logfmt", "regex", "text"] = "json"
    """How the payload inside `cri`/`docker` wrappers is decoded: `json` falls back to a
    `message` field when the payload is not a JSON object."""
    max_line_bytes: int = Field(default=1_048_576, gt=0)
    multiline: MultilineConfig | None = None
    """Join the lines of one event (a log line and its stack trace) before decoding; a
    preset's name alone (`multiline: python`) is short for `{preset: python}`."""
    timestamp: TimestampConfig | None = None
    """The event's own time; a field name alone (`timestamp: ts`) is short for
    `{field: ts}`. Without it, what a restart finds unread is counted as it is read."""

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        if not compiled.groupindex:
            raise ValueError("the regex needs at least one named group, such as (?P<level>\\w+)")
        return value

    @model_validator(mode="after")
    def _format_needs(self) -> DecodeConfig:
        if self.format == "regex" and not self.regex:
            raise ValueError("`format: regex` needs a `regex` with named groups")
        if (
            self.format in ("cri", "docker", "auto")
            and self.inner_format == "regex"
            and not self.regex
        ):
            raise ValueError("`inner_format: regex` needs a `regex` with named groups")
        return self
