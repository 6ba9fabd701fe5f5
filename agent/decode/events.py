"""The values that flow between pipeline stages.

An `Event` is the decoded log record: a plain dict (field name -> JSON value), the
cheapest shape to build in the decoder and to read in the extractor. Its origin (which
source, which file) travels beside a batch of events instead of inside every event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Event = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a batch of events came from: the source's name and the file path (`-` for stdin)."""

    source: str
    path: str


Sink = Callable[[Origin, list[Event]], None]
"""A stage that takes decoded events. Called synchronously: once it returns, the events
are handed on and the source may advance its checkpoint past the lines they came from."""
