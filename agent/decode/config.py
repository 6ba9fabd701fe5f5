"""Config of decoding: a source's `format` and what that format needs."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from agent.support.configmodel import Model

Format = Literal["json", "cri", "docker", "logfmt", "regex", "auto"]


class DecodeConfig(Model):
    """How a source's lines become events; `sources[]` extends it with where they come from."""

    format: Format = "json"
    regex: str | None = None
    """Python regex with named groups, for `format: regex`; each group becomes a field."""
    inner_format: Literal["json", "logfmt", "regex", "text"] = "json"
    """How the payload inside `cri`/`docker` wrappers is decoded: `json` falls back to a
    `message` field when the payload is not a JSON object."""
    max_line_bytes: int = Field(default=1_048_576, gt=0)

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
