"""The payload inside a CRI or docker wrapper, decoded by the source's `inner_format`."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from agent.decode.base import OnError
from agent.decode.config import DecodeConfig
from agent.decode.events import Event
from agent.decode.logfmt import parse_logfmt

Payload = Callable[[bytes | str], "Event | None"]
"""Decodes a CRI/docker payload into an event, or counts why not and returns None."""


def payload_text(payload: bytes | str) -> str:
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8", "replace")
    return payload[:-1] if payload.endswith("\r") else payload


def payload_decoder(cfg: DecodeConfig, on_error: OnError) -> Payload:
    kind = cfg.inner_format
    loads = orjson.loads
    failed = orjson.JSONDecodeError

    if kind == "json":

        def decode_json(payload: bytes | str) -> Event | None:
            stripped = payload.lstrip()
            if not stripped:
                on_error("empty")
                return None
            if stripped[:1] in (b"{", "{"):
                try:
                    obj = loads(payload)
                except failed:
                    obj = None
                if type(obj) is dict:
                    return obj
            return {"message": payload_text(payload)}

        return decode_json

    if kind == "logfmt":

        def decode_logfmt(payload: bytes | str) -> Event | None:
            if not payload.strip():
                on_error("empty")
                return None
            event = parse_logfmt(payload_text(payload))
            if event is None:
                on_error("not_logfmt")
            return event

        return decode_logfmt

    if kind == "regex":
        if not cfg.regex:
            raise ValueError("`inner_format: regex` needs a `regex` with named groups")
        search = re.compile(cfg.regex).search

        def decode_regex(payload: bytes | str) -> Event | None:
            if not payload.strip():
                on_error("empty")
                return None
            m = search(payload_text(payload))
            if m is None:
                on_error("no_match")
                return None
            return {k: v for k, v in m.groupdict().items() if v is not None}

        return decode_regex

    def decode_text(payload: bytes | str) -> Event | None:
        if not payload.strip():
            on_error("empty")
            return None
        return {"message": payload_text(payload)}

    return decode_text


def finish_record(event: Event | None, stream: Any, time: Any, out: list[Event]) -> None:
    if event is None:
        return
    if stream is not None and "stream" not in event:
        event["stream"] = stream
    if time is not None and "time" not in event:
        event["time"] = time
    out.append(event)


class Held:
    """A record being reassembled from chunks of one stream."""

    __slots__ = ("chunks", "size", "time")

    def __init__(self, time: Any, chunk: Any) -> None:
        self.time = time
        self.chunks = [chunk]
        self.size = len(chunk)
