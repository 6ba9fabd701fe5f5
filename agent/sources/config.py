"""Config of sources and checkpoints."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from agent.configtypes import Duration, Model

Format = Literal["json", "cri", "docker", "logfmt", "regex", "auto"]


class SourceConfig(Model):
    """One stream of log lines: files matching globs, or standard input."""

    name: str = Field(min_length=1)
    paths: list[str] = []
    exclude: list[str] = []
    stdin: bool = False
    format: Format = "json"
    regex: str | None = None
    """Python regex with named groups, for `format: regex`; each group becomes a field."""
    inner_format: Literal["json", "logfmt", "regex", "text"] = "json"
    """How the payload inside `cri`/`docker` wrappers is decoded: `json` falls back to a
    `message` field when the payload is not a JSON object."""
    start_at: Literal["end", "beginning"] = "end"
    max_line_bytes: int = Field(default=1_048_576, gt=0)
    partial_line_timeout: Duration = 5.0
    """A last line with no newline is handed on after this long without growth, at
    shutdown, or when the file rotates."""
    stat_interval: Duration = 10.0
    """Safety-net stat of every watched file, for filesystems whose rotation sends no event."""
    permission_retry: Duration = 10.0
    """How often a matching file that cannot be opened (permission denied) is retried."""
    rotate_wait: Duration = 5.0
    """A file rotated away (renamed out of the globs, deleted, symlink retargeted) is still
    read by its open descriptor until it has not grown for this long, since writers keep
    writing to it for a moment after rotation."""

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
    def _one_kind(self) -> SourceConfig:
        if self.stdin and self.paths:
            raise ValueError("a source reads either `paths` or `stdin: true`, not both")
        if not self.stdin and not self.paths:
            raise ValueError("a source needs `paths` (a list of globs) or `stdin: true`")
        if self.format == "regex" and not self.regex:
            raise ValueError("`format: regex` needs a `regex` with named groups")
        if (
            self.format in ("cri", "docker", "auto")
            and self.inner_format == "regex"
            and not self.regex
        ):
            raise ValueError("`inner_format: regex` needs a `regex` with named groups")
        return self


class CheckpointConfig(Model):
    path: str | None = None
    """Defaults to `<state_dir>/checkpoints.json`."""
    interval: Duration = 5.0
    forget_after: Duration = 86400.0
    """Checkpoints of files gone (not open) for this long are pruned."""
