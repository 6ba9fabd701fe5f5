"""`format: regex`: named groups of a Python regex become fields."""

from __future__ import annotations

import re

from agent.decode.base import Decoder, OnError, line_text
from agent.decode.events import Event


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
            m = search(line_text(line))
            if m is None:
                on_error("no_match")
            else:
                out.append({k: v for k, v in m.groupdict().items() if v is not None})
