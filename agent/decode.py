"""PLACEHOLDER interface (being rewritten): line bytes -> events, errors counted by reason."""

from __future__ import annotations

from collections.abc import Callable

import orjson

from agent.events import Event
from agent.sources.config import SourceConfig

OnError = Callable[[str], None]


class Decoder:
    """One per file: holds state across lines (CRI partials, docker split lines)."""

    def __init__(self, on_error: OnError) -> None:
        self.on_error = on_error

    def decode(self, lines: list[bytes], out: list[Event]) -> None:
        loads = orjson.loads
        for line in lines:
            try:
                obj = loads(line)
            except orjson.JSONDecodeError:
                self.on_error("not_json")
                continue
            if type(obj) is dict:
                out.append(obj)
            else:
                self.on_error("not_object")

    def flush(self, out: list[Event]) -> None:
        """Hand on anything held back (at rotation, idle timeout or shutdown)."""


def make_decoder(cfg: SourceConfig, on_error: OnError) -> Decoder:
    return Decoder(on_error)
