"""Bytes -> complete lines, shared by the file and stdin readers.

A `LineSplitter` is fed chunks as they are read and returns the complete lines in them
(without the newline; a trailing `\\r` is dropped, empty lines are skipped). What follows
the last newline is held until its newline arrives. Nothing here decodes text, so invalid
UTF-8 passes through untouched to the decoder, which counts it.

A line longer than `max_line_bytes` is skipped whole: as soon as the held part grows past
the limit it is dropped, and everything up to the next newline is discarded without being
buffered, so one runaway line costs no memory and never stops the stream. `on_too_long`
is called once per skipped line.

Offsets: the reader advances its committed offset to `position - uncommitted`, i.e. just
past the last line handed on. After `flush()` hands on a held partial line, the committed
offset points into the middle of that line (`mid_line`), and the rest of the line, when it
arrives, is discarded: it belongs to a line already handed on.

With `track` (the file offset of the first byte fed; sources with `multiline` use it),
`starts` holds the file offset at which each line of the last `feed()` or `flush()`
begins, so the reader can keep its checkpoint at the first line of a multi-line event
the decoder still holds. Without it nothing is counted.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import accumulate

from agent.decode.base import REASONS
from agent.support.selfmetrics import SelfMetrics

_NL = b"\n"
_CR = b"\r"


class LineSplitter:
    __slots__ = (
        "_at",
        "_buf",
        "_max",
        "_on_too_long",
        "_skip",
        "_track",
        "mid_line",
        "starts",
        "uncommitted",
    )

    def __init__(
        self,
        max_line_bytes: int,
        on_too_long: Callable[[], None],
        *,
        mid_line: bool = False,
        track: int | None = None,
    ) -> None:
        self._track = track is not None
        self._at = track or 0
        """File offset of the next byte fed (counted only with `track`)."""
        self.starts: list[int] = []
        self._max = max_line_bytes
        self._on_too_long = on_too_long
        self._buf = bytearray()
        # Discarding until the next newline: the current line is too long, or its start
        # was already handed on by flush() (mid_line).
        self._skip = mid_line
        self.mid_line = mid_line
        self.uncommitted = 0
        """Bytes fed after the last line boundary (held partial or skipped long line)."""

    @property
    def partial(self) -> bytes:
        """The held start of an unfinished line (empty while skipping)."""
        return bytes(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Split a chunk; return the complete lines it finishes."""
        lines: list[bytes] = []
        track = self._track
        if track:
            base = self._at
            self._at += len(data)
            starts: list[int] = []
            self.starts = starts
        if not data:
            return lines
        start = 0
        if self._skip:
            nl = data.find(_NL)
            if nl < 0:
                self.uncommitted += len(data)
                return lines
            self._skip = False
            self.mid_line = False
            start = nl + 1
        elif self._buf:
            nl = data.find(_NL)
            if nl < 0:
                if len(self._buf) + len(data) > self._max:
                    self._start_skip(len(self._buf) + len(data))
                else:
                    self._buf += data
                    self.uncommitted += len(data)
                return lines
            if track:
                first = base - len(self._buf)
            self._buf += data[:nl]
            line = bytes(self._buf)
            self._buf.clear()
            if line.endswith(_CR):
                line = line[:-1]
            if len(line) > self._max:
                self._on_too_long()
            else:
                lines.append(line)
                if track:
                    starts.append(first)
            start = nl + 1

        last = data.rfind(_NL, start)
        if last >= 0:
            parts = data[start:last].split(_NL)
            if track:  # each line's offset: the one before it, plus its length and newline
                offsets = list(accumulate(map((1).__add__, map(len, parts)), initial=base + start))
                offsets.pop()
            if _CR in data:
                parts = [p[:-1] if p.endswith(_CR) else p for p in parts]
            if last - start > self._max:
                keep = []
                for i, p in enumerate(parts):
                    if len(p) > self._max:
                        self._on_too_long()
                    else:
                        keep.append(p)
                        if track:
                            starts.append(offsets[i])
                lines.extend(keep)
            else:
                # blank lines too: the decoder counts them (`empty`), as replay does
                lines.extend(parts)
                if track:
                    starts.extend(offsets)
            start = last + 1

        rest = len(data) - start
        if rest > self._max:
            self._start_skip(rest)
        else:
            if rest:
                self._buf += data[start:]
            self.uncommitted = rest
        return lines

    def _start_skip(self, uncommitted: int) -> None:
        self._on_too_long()
        self._buf.clear()
        self._skip = True
        self.uncommitted = uncommitted

    def flush(self) -> bytes | None:
        """Hand over the held partial line (idle timeout, rotation, shutdown).

        The rest of that line, if it ever comes, is discarded. Returns None when nothing
        is held.
        """
        if not self._buf:
            return None
        line = bytes(self._buf)
        self.starts = [self._at - len(line)]
        self._buf.clear()
        self._skip = True
        self.mid_line = True
        self.uncommitted = 0
        return line


class SourceCounters:
    """The self-metrics every source keeps, registered once per agent, labelled per source."""

    def __init__(self, stats: SelfMetrics, source: str) -> None:
        self.label = (source,)
        self.source = source
        self.lines = stats.counter(
            "chatwatch_lines_read_total",
            "Complete lines read and handed to the decoder.",
            ("source",),
        )
        self.bytes = stats.counter("chatwatch_bytes_read_total", "Bytes read.", ("source",))
        self.events = stats.counter(
            "chatwatch_events_total", "Decoded events handed on to the metrics stage.", ("source",)
        )
        self.decode_errors = stats.counter(
            "chatwatch_decode_errors_total",
            "Lines that gave no event, by reason (not_json, not_object, too_long, ...).",
            ("source", "reason"),
        )

        # every counter shows from the start at 0, so rate() and increase() see the first
        # error, and a dashboard has a series to plot before anything went wrong
        for counter in (self.lines, self.bytes, self.events):
            counter.inc(self.label, 0.0)
        for reason in REASONS:
            self.decode_errors.inc((source, reason), 0.0)

    def decode_error(self, reason: str) -> None:
        self.decode_errors.inc((self.source, reason))

    def too_long(self) -> None:
        self.decode_errors.inc((self.source, "too_long"))
