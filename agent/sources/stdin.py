"""Lines from standard input, for `chatbot | chatwatch run`.

A pipe (or terminal) is read when the event loop says it is readable (`add_reader`):
a read then returns what is there without blocking, no thread is involved, and the
descriptor's flags are left alone (they are shared with the process that gave it to
us). A read that never returns can therefore not hold up shutdown. Standard input
redirected from a regular file (`< app.log`) cannot be polled; it is read in a worker
thread, where a read never blocks for long. At end of input the held partial line and
the decoder's state are handed on and `run()` returns. With `multiline`, the event being
joined is handed on once the input has been quiet for `multiline.timeout`.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
from typing import BinaryIO

from agent.decode.events import Event, Origin, Sink
from agent.decode.formats import make_decoder
from agent.sources.config import SourceConfig
from agent.sources.lines import LineSplitter, SourceCounters
from agent.sources.tail import CHUNK, DecoderFactory
from agent.support.selfmetrics import SelfMetrics

log = logging.getLogger("chatwatch.stdin")


class StdinSource:
    """Reads one binary stream (standard input by default) until end of input or `stop()`."""

    def __init__(
        self,
        cfg: SourceConfig,
        sink: Sink,
        stats: SelfMetrics,
        stream: BinaryIO | None = None,
        decoder_factory: DecoderFactory = make_decoder,
    ) -> None:
        self.cfg = cfg
        self.sink = sink
        self._stream = stream
        self._counters = SourceCounters(stats, cfg.name)
        self._label = (cfg.name,)
        self._origin = Origin(cfg.name, "-")
        self._decoder = decoder_factory(cfg, self._counters.decode_error)
        self._splitter = LineSplitter(cfg.max_line_bytes, self._counters.too_long)
        self.opened = asyncio.Event()
        self._finished = asyncio.Event()
        """End of input, a read error, or stop()."""
        self._done = asyncio.Event()
        self._running = False
        self._flushed = False
        self._timeout = cfg.multiline.timeout if cfg.multiline is not None else None
        self._timer: asyncio.TimerHandle | None = None
        """Hands on a multi-line event once the input was quiet for the timeout."""

    async def run(self) -> None:
        """Read and hand on lines until end of input or `stop()`."""
        if self._finished.is_set():
            return
        self._running = True
        stream = self._stream if self._stream is not None else sys.stdin.buffer
        try:
            try:
                fd = stream.fileno()
            except (OSError, ValueError, io.UnsupportedOperation):
                fd = -1
            if fd < 0:
                await self._read_stream(stream)
            elif not self._watch(fd):
                await self._read_file(fd)
            else:
                self.opened.set()
                try:
                    await self._finished.wait()
                finally:
                    asyncio.get_running_loop().remove_reader(fd)
        finally:
            self._flush()
            self._done.set()

    async def stop(self) -> None:
        """Stop reading; hand on the held partial line and the decoder's state."""
        self._finished.set()
        if self._running:
            await self._done.wait()
        else:
            self._flush()

    def _watch(self, fd: int) -> bool:
        """Read `fd` whenever it is readable; False if it cannot be polled (a regular file)."""
        try:
            asyncio.get_running_loop().add_reader(fd, self._readable, fd)
        except (PermissionError, ValueError, OSError):
            return False
        return True

    def _readable(self, fd: int) -> None:
        if self._finished.is_set():
            return
        try:
            data = os.read(fd, CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._failed(exc)
            return
        if data:
            self._feed(data)
        else:
            self._finished.set()

    async def _read_file(self, fd: int) -> None:
        self.opened.set()
        while not self._finished.is_set():
            try:
                data = await asyncio.to_thread(os.read, fd, CHUNK)
            except OSError as exc:
                self._failed(exc)
                return
            if not data:
                return
            if not self._finished.is_set():
                self._feed(data)

    async def _read_stream(self, stream: BinaryIO) -> None:
        """An in-memory stream (no descriptor): reads never block."""
        self.opened.set()
        read = getattr(stream, "read1", stream.read)
        while not self._finished.is_set():
            data = read(CHUNK)
            if not data:
                return
            self._feed(data)
            await asyncio.sleep(0)

    def _failed(self, exc: OSError) -> None:
        log.error(
            "reading standard input failed", extra={"source": self.cfg.name, "error": str(exc)}
        )
        self._finished.set()

    def _feed(self, data: bytes) -> None:
        self._counters.bytes.inc(self._label, len(data))
        lines = self._splitter.feed(data)
        if lines:
            self._counters.lines.inc(self._label, len(lines))
            events: list[Event] = []
            self._decoder.decode(lines, events)
            self._emit(events)
        if self._timeout is not None:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = None
            if self._decoder.held_lines:
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(self._timeout, self._quiet)

    def _quiet(self) -> None:
        self._timer = None
        if self._flushed:
            return
        events: list[Event] = []
        self._decoder.flush(events)
        self._emit(events)

    def _flush(self) -> None:
        if self._flushed:
            return
        self._flushed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        events: list[Event] = []
        line = self._splitter.flush()
        if line is not None:
            self._counters.lines.inc(self._label)
            self._decoder.decode([line], events)
        self._decoder.flush(events)
        self._emit(events)

    def _emit(self, events: list[Event]) -> None:
        if not events:
            return
        self._counters.events.inc(self._label, len(events))
        try:
            self.sink(self._origin, events)
        except Exception:
            log.exception("the sink failed on a batch of events; the batch is dropped")
