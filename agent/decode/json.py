"""`format: json`: one JSON object per line (the fast path: orjson, a batch at a time)."""

from __future__ import annotations

from typing import Any

import orjson

from agent.decode.base import BOM, Decoder
from agent.decode.events import Event


def _json_failure(line: bytes) -> tuple[Any, str]:
    """Why orjson refused `line`; or the value, for the one case we recover (a UTF-8 BOM)."""
    if not line.strip():
        return None, "empty"
    if line.startswith(BOM):
        try:
            return orjson.loads(line[3:]), ""
        except orjson.JSONDecodeError:
            line = line[3:]
    try:
        line.decode()
    except UnicodeDecodeError:
        return None, "invalid_utf8"
    return None, "not_json"


class JSONDecoder(Decoder):
    """One JSON object per line: the hot path.

    The batch is parsed by `out.extend(map(orjson.loads, rest))`, a loop that runs in C:
    no Python bytecode per line. When a line fails, `extend` has kept the events before it
    and `rest` resumes after it, so the failure is handled and the loop restarts where it
    stopped. Whether everything parsed is an object is then checked over the whole batch
    at once; the rare non-objects are taken out and counted.
    """

    __slots__ = ()

    def decode(self, lines: list[bytes], out: list[Event]) -> None:
        loads = orjson.loads
        failed = orjson.JSONDecodeError
        start = len(out)
        rest = iter(lines)
        consumed = 0
        while True:
            before = len(out)
            try:
                out.extend(map(loads, rest))
                break
            except failed:
                consumed += len(out) - before + 1
                obj, reason = _json_failure(lines[consumed - 1])
                if reason:
                    self._on_error(reason)
                else:
                    out.append(obj)
        if len(out) > start:
            parsed = out[start:] if start else out
            if set(map(type, parsed)) != _ONLY_DICT:
                out[start:] = self._objects(parsed)

    def _objects(self, parsed: list[Any]) -> list[Event]:
        objects = []
        for obj in parsed:
            if type(obj) is dict:
                objects.append(obj)
            else:
                self._on_error("not_object")
        return objects


_ONLY_DICT = {dict}
