"""Helpers for the decoder tests: build a decoder as the source does and count its reasons."""

from __future__ import annotations

from collections import Counter
from typing import Any

from agent.decode.base import REASONS, Decoder
from agent.decode.events import Event
from agent.decode.formats import make_decoder
from agent.sources.config import SourceConfig


def source(format: str, **options: Any) -> SourceConfig:
    return SourceConfig.model_validate(
        {"name": "chatbot", "paths": ["/var/log/chatbot/*.log"], "format": format, **options}
    )


class Run:
    """A decoder for one file, with what it handed on and what it counted."""

    def __init__(self, format: str, **options: Any) -> None:
        self.errors: Counter[str] = Counter()
        self.events: list[Event] = []
        self.decoder: Decoder = make_decoder(source(format, **options), self._count)

    def _count(self, reason: str) -> None:
        # Every reason must be one /metrics pre-registers.
        assert reason in REASONS, reason
        self.errors[reason] += 1

    def feed(self, lines: list[bytes]) -> list[Event]:
        """Decode a batch; return the events it produced."""
        out: list[Event] = []
        self.decoder.decode(lines, out)
        self.events += out
        return out

    def flush(self) -> list[Event]:
        out: list[Event] = []
        self.decoder.flush(out)
        self.events += out
        return out


def decode(format: str, lines: list[bytes], **options: Any) -> tuple[list[Event], Counter[str]]:
    """Decode `lines` as one file (then flush it, as at rotation); events and reason counts."""
    run = Run(format, **options)
    run.feed(lines)
    run.flush()
    return run.events, run.errors


def text_lines(text: str) -> list[bytes]:
    """What the line reader hands on for `text`: lines without newline, no empty lines."""
    return [line for line in text.encode().split(b"\n") if line]
