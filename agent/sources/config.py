"""Config of sources and checkpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from agent.decode.config import DecodeConfig
from agent.support.configmodel import Duration, Model


class SourceConfig(DecodeConfig):
    """One stream of log lines: files matching globs, or standard input."""

    name: str = Field(min_length=1)
    paths: list[str] = []
    exclude: list[str] = []
    stdin: bool = False
    start_at: Literal["end", "beginning"] = "end"
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

    @model_validator(mode="after")
    def _one_kind(self) -> SourceConfig:
        if self.stdin and self.paths:
            raise ValueError("a source reads either `paths` or `stdin: true`, not both")
        if not self.stdin and not self.paths:
            raise ValueError("a source needs `paths` (a list of globs) or `stdin: true`")
        return self


class CheckpointConfig(Model):
    path: str | None = None
    """Defaults to `<state_dir>/checkpoints.json`."""
    interval: Duration = 5.0
    forget_after: Duration = 86400.0
    """Checkpoints of files gone (not open) for this long are pruned."""
