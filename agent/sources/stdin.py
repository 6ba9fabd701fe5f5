"""Lines from standard input, for `chatbot | chatwatch run`.

A daemon thread does the blocking reads (of `sys.stdin.buffer` or a given binary stream)
and hands chunks to the event loop through a small bounded queue, so a slow pipeline
slows the writer instead of filling memory, and shutdown never waits for a read that may
never return. At end of input the held partial line and the decoder's state are handed
on and `run()` returns.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from typing import BinaryIO

from agent.decode import make_decoder
from agent.events import Event, Origin, Sink
from agent.selfmetrics import SelfMetrics
from agent.sources.config import SourceConfig
from agent.sources.lines import LineSplitter, SourceCounters
from agent.sources.tail import CHUNK, DecoderFactory

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
        self._stopping = asyncio.Event()
        self._done = asyncio.Event()
        self._running = False
        self._flushed = False

    async def run(self) -> None:
        """Read and hand on lines until end of input or `stop()`."""
        if self._stopping.is_set():
            return
        self._running = True
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(maxsize=4)
        stream = self._stream if self._stream is not None else sys.stdin.buffer
        reader = threading.Thread(
            target=_read_chunks, args=(stream, loop, queue), name="stdin-reader", daemon=True
        )
        try:
            reader.start()
            self.opened.set()
            stop = asyncio.ensure_future(self._stopping.wait())
            try:
                while True:
                    get = asyncio.ensure_future(queue.get())
                    await asyncio.wait({get, stop}, return_when=asyncio.FIRST_COMPLETED)
                    if not get.done():
                        get.cancel()
                        break
                    item = get.result()
                    if item is None:
                        break
                    if isinstance(item, BaseException):
                        log.error(
                            "reading standard input failed",
                            extra={"source": self.cfg.name, "error": str(item)},
                        )
                        break
                    self._feed(item)
            finally:
                stop.cancel()
        finally:
            self._flush()
            self._done.set()

    async def stop(self) -> None:
        """Stop reading; hand on the held partial line and the decoder's state."""
        self._stopping.set()
        if self._running:
            await self._done.wait()
        else:
            self._flush()

    def _feed(self, data: bytes) -> None:
        self._counters.bytes.inc(self._label, len(data))
        lines = self._splitter.feed(data)
        if lines:
            self._counters.lines.inc(self._label, len(lines))
            events: list[Event] = []
            self._decoder.decode(lines, events)
            self._emit(events)

    def _flush(self) -> None:
        if self._flushed:
            return
        self._flushed = True
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


def _read_chunks(
    stream: BinaryIO,
    loop: asyncio.AbstractEventLoop,
    queue: asyncio.Queue[bytes | BaseException | None],
) -> None:
    """Thread body: blocking reads, each chunk queued on the loop (waits while it is full)."""
    read = getattr(stream, "read1", stream.read)
    item: bytes | BaseException | None
    while True:
        try:
            data = read(CHUNK)
            item = data if data else None
        except Exception as exc:
            item = exc
        try:
            asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()
        except Exception:
            return  # the loop is gone or shutting down
        if item is None or isinstance(item, BaseException):
            return
