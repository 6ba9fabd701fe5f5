"""`format: cri`: Kubernetes CRI log lines (`<time> <stream> <P|F> <payload>`), partial
lines reassembled."""

from __future__ import annotations

import orjson

from agent.decode.base import Decoder, OnError
from agent.decode.config import DecodeConfig
from agent.decode.events import Event
from agent.decode.payload import Held, finish_record, payload_decoder

_STDOUT = b"stdout"
_STDERR = b"stderr"
_STREAM_NAMES = {_STDOUT: "stdout", _STDERR: "stderr"}


def _time_ok(time: bytes) -> bool:
    """Shaped like an RFC 3339 time (`2016-10-06T00:17:09.669794202Z`), and ASCII.

    Decoders do not parse times; this only tells a CRI line from other text. The fast path
    in `CRIDecoder.decode` inlines the same test.
    """
    return len(time) >= 20 and time[4] == 45 and time[10] == 84 and time.isascii()


def split_cri(line: bytes) -> tuple[bytes, bytes, bool, bytes] | None:
    """`<time> <stream> <tag> <payload>` -> (time, stream, is_full, payload), None if malformed.

    The tag is `P` (partial) or `F` (full), possibly followed by `:`-separated extra tags
    (the CRI format reserves them). A line ending right after the tag has an empty payload.
    """
    parts = line.split(b" ", 3)
    if len(parts) == 4:
        time, stream, tag, payload = parts
    elif len(parts) == 3:
        time, stream, tag = parts
        payload = b""
    else:
        return None
    if stream != _STDOUT and stream != _STDERR:
        return None
    if tag == b"F":
        full = True
    elif tag == b"P":
        full = False
    else:
        head, colon, _ = tag.partition(b":")
        if not colon or (head != b"F" and head != b"P"):
            return None
        full = head == b"F"
    if not _time_ok(time):
        return None
    return time, stream, full, payload


def cri_record(line: bytes) -> tuple[str, str, bool, bytes] | str:
    """A CRI line as `(stream, time, is_full, payload)` for multi-line joining
    (`multiline.RecordJoiner`), or the reason it is not one."""
    parsed = split_cri(line)
    if parsed is None:
        return "bad_cri"
    time, stream, full, payload = parsed
    return _STREAM_NAMES[stream], time.decode(), full, payload


class CRIDecoder(Decoder):
    """Kubernetes CRI container logs, reassembling `P` chunks until `F` per stream.

    The common line, a whole record (`F`) while no stream holds or discards a record, is
    decoded inline; everything else goes through `_chunk`.
    """

    __slots__ = ("_dropping", "_held", "_inner_json", "_max", "_payload")

    def __init__(self, cfg: DecodeConfig, on_error: OnError) -> None:
        super().__init__(on_error)
        self._payload = payload_decoder(cfg, on_error)
        self._inner_json = cfg.inner_format == "json"
        self._max = cfg.max_line_bytes
        self._held: dict[bytes, Held] = {}
        self._dropping: set[bytes] = set()
        """Streams whose current record grew too long: discard chunks until its `F`."""

    def decode(self, lines: list[bytes], out: list[Event]) -> None:
        loads = orjson.loads
        failed = orjson.JSONDecodeError
        payload_event = self._payload
        inner_json = self._inner_json
        held = self._held
        dropping = self._dropping
        append = out.append
        for line in lines:
            parts = line.split(b" ", 3)
            if (
                len(parts) != 4
                or held
                or dropping
                or parts[2] != b"F"
                or (parts[1] != _STDOUT and parts[1] != _STDERR)
            ):
                self._chunk(line, out)
                continue
            time, stream, _, payload = parts
            if not (len(time) >= 20 and time[4] == 45 and time[10] == 84 and time.isascii()):
                self._chunk(line, out)  # as _time_ok: "-" is 45, "T" is 84
                continue
            if inner_json and payload[:1] == b"{":
                try:
                    event = loads(payload)
                except failed:
                    event = None
                if type(event) is not dict:
                    event = payload_event(payload)
            else:
                event = payload_event(payload)
                if event is None:
                    continue
            if "stream" not in event:
                event["stream"] = "stdout" if stream == _STDOUT else "stderr"
            if "time" not in event:
                event["time"] = time.decode()
            append(event)

    def _chunk(self, line: bytes, out: list[Event]) -> None:
        parsed = split_cri(line)
        if parsed is None:
            self._on_error("bad_cri")
            return
        time, stream, full, payload = parsed
        if self._dropping and stream in self._dropping:
            if full:
                self._dropping.discard(stream)
            return
        held = self._held
        record = held.get(stream)
        if record is None:
            if full:
                finish_record(self._payload(payload), _STREAM_NAMES[stream], time.decode(), out)
                return
            record = held[stream] = Held(time, payload)
        else:
            record.chunks.append(payload)
            record.size += len(payload)
        if record.size > self._max:
            del held[stream]
            self._on_error("too_long")
            if not full:
                self._dropping.add(stream)
        elif full:
            del held[stream]
            self._emit(stream, record, out)

    def _emit(self, stream: bytes, record: Held, out: list[Event]) -> None:
        payload = b"".join(record.chunks)
        finish_record(self._payload(payload), _STREAM_NAMES[stream], record.time.decode(), out)

    def flush(self, out: list[Event]) -> None:
        held, self._held = self._held, {}
        self._dropping.clear()
        for stream, record in held.items():
            self._emit(stream, record, out)
