"""`format: docker`: docker's json-file records (`{"log": ..., "stream": ..., "time": ...}`),
split lines reassembled."""

from __future__ import annotations

import orjson

from agent.decode.base import Decoder, OnError
from agent.decode.config import DecodeConfig
from agent.decode.events import Event
from agent.decode.payload import Held, finish_record, payload_decoder


def docker_record(line: bytes) -> tuple[str | None, str | None, bool, str] | str:
    """A json-file record as `(stream, time, is_full, log)` for multi-line joining
    (`multiline.RecordJoiner`), or the reason it is not one."""
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "empty" if not line.strip() else "bad_docker"
    if type(rec) is not dict:
        return "bad_docker"
    log = rec.get("log")
    stream = rec.get("stream")
    time = rec.get("time")
    if (
        type(log) is not str
        or (stream is not None and type(stream) is not str)
        or (time is not None and type(time) is not str)
    ):
        return "bad_docker"
    full = log.endswith("\n")
    return stream, time, full, log[:-1] if full else log


class DockerDecoder(Decoder):
    """Docker's json-file driver: `{"log": "text\\n", "stream": "stdout", "time": "..."}`.

    Docker splits output lines longer than 16 KiB into several records; all but the last
    lack the trailing newline in `log`, so records are joined (per stream) until one ends
    with `\\n`. Sizes are counted in characters of the decoded `log` text. As for CRI, a
    whole record while no stream holds or discards a record is decoded inline.
    """

    __slots__ = ("_dropping", "_held", "_inner_json", "_max", "_payload")

    def __init__(self, cfg: DecodeConfig, on_error: OnError) -> None:
        super().__init__(on_error)
        self._payload = payload_decoder(cfg, on_error)
        self._inner_json = cfg.inner_format == "json"
        self._max = cfg.max_line_bytes
        self._held: dict[str | None, Held] = {}
        self._dropping: set[str | None] = set()

    def decode(self, lines: list[bytes], out: list[Event]) -> None:
        loads = orjson.loads
        failed = orjson.JSONDecodeError
        payload_event = self._payload
        inner_json = self._inner_json
        held = self._held
        dropping = self._dropping
        append = out.append
        str_ = str
        for line in lines:
            try:
                rec = loads(line)
            except failed:
                self._on_error("empty" if not line.strip() else "bad_docker")
                continue
            if type(rec) is not dict:
                self._on_error("bad_docker")
                continue
            log = rec.get("log")
            stream = rec.get("stream")
            time = rec.get("time")
            if (
                type(log) is not str_
                or (stream is not None and type(stream) is not str_)
                or (time is not None and type(time) is not str_)
            ):
                self._on_error("bad_docker")
                continue
            if held or dropping or not log.endswith("\n"):
                self._chunk(log, stream, time, out)
                continue
            log = log[:-1]
            if inner_json and log[:1] == "{":
                try:
                    event = loads(log)
                except failed:
                    event = None
                if type(event) is not dict:
                    event = payload_event(log)
            else:
                event = payload_event(log)
                if event is None:
                    continue
            if stream is not None and "stream" not in event:
                event["stream"] = stream
            if time is not None and "time" not in event:
                event["time"] = time
            append(event)

    def _chunk(self, log: str, stream: str | None, time: str | None, out: list[Event]) -> None:
        full = log.endswith("\n")
        if full:
            log = log[:-1]
        if self._dropping and stream in self._dropping:
            if full:
                self._dropping.discard(stream)
            return
        held = self._held
        record = held.get(stream)
        if record is None:
            if full:
                finish_record(self._payload(log), stream, time, out)
                return
            record = held[stream] = Held(time, log)
        else:
            record.chunks.append(log)
            record.size += len(log)
        if record.size > self._max:
            del held[stream]
            self._on_error("too_long")
            if not full:
                self._dropping.add(stream)
        elif full:
            del held[stream]
            finish_record(self._payload("".join(record.chunks)), stream, record.time, out)

    def flush(self, out: list[Event]) -> None:
        held, self._held = self._held, {}
        self._dropping.clear()
        for stream, record in held.items():
            finish_record(self._payload("".join(record.chunks)), stream, record.time, out)
