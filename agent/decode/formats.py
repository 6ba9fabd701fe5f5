"""Which decoder reads a source: `make_decoder` by `format`, and `auto` detection."""

from __future__ import annotations

import orjson

from agent.decode.base import BOM, Decoder, OnError
from agent.decode.config import DecodeConfig
from agent.decode.cri import CRIDecoder, cri_record, split_cri
from agent.decode.docker import DockerDecoder, docker_record
from agent.decode.events import Event
from agent.decode.json import JSONDecoder
from agent.decode.logfmt import LogfmtDecoder
from agent.decode.multiline import LineJoiner, RecordJoiner
from agent.decode.regex import RegexDecoder


def _detect(line: bytes) -> str | None:
    """`docker`, `json` or `cri` when `line` is recognisably one of them, else None."""
    if line.startswith(BOM):
        line = line[3:]
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "cri" if split_cri(line) is not None else None
    if type(obj) is not dict:
        return None
    if type(obj.get("log")) is str and "stream" in obj and "time" in obj:
        return "docker"
    return "json"


class AutoDecoder(Decoder):
    """Finds a file's format on its first recognisable line, then hands every line to it.

    One per file, like every decoder, so a source globbing plain JSON logs and container
    logs together decodes each file in its own format.
    """

    __slots__ = ("_cfg", "_found", "_kind")

    def __init__(self, cfg: DecodeConfig, on_error: OnError) -> None:
        super().__init__(on_error)
        self._cfg = cfg
        self._found: Decoder | None = None
        self._kind = ""

    @property
    def detected(self) -> str | None:
        """The format found so far (`json`, `cri`, `docker`), None before the first."""
        return None if self._found is None else self._kind

    @property
    def held_lines(self) -> int:
        return 0 if self._found is None else self._found.held_lines

    def decode(self, lines: list[bytes], out: list[Event]) -> None:
        if self._found is not None:
            self._found.decode(lines, out)
            return
        for i, line in enumerate(lines):
            kind = _detect(line)
            if kind is not None:
                self._found = _make(kind, self._cfg, self._on_error)
                self._kind = kind
                self._found.decode(lines[i:], out)
                return
            JSONDecoder(self._on_error).decode([line], out)

    def flush(self, out: list[Event]) -> None:
        if self._found is not None:
            self._found.flush(out)


def _make(kind: str, cfg: DecodeConfig, on_error: OnError) -> Decoder:
    if cfg.multiline is not None and kind != "auto":
        return _joining(kind, cfg, on_error)
    if kind == "json":
        return JSONDecoder(on_error)
    if kind == "cri":
        return CRIDecoder(cfg, on_error)
    if kind == "docker":
        return DockerDecoder(cfg, on_error)
    if kind == "logfmt":
        return LogfmtDecoder(on_error)
    if kind == "regex":
        if not cfg.regex:
            raise ValueError("`format: regex` needs a `regex` with named groups")
        return RegexDecoder(cfg.regex, on_error)
    if kind == "auto":
        return AutoDecoder(cfg, on_error)
    raise ValueError(f"unknown format {kind!r}")


def _joining(kind: str, cfg: DecodeConfig, on_error: OnError) -> Decoder:
    """The decoder of a source with `multiline` (see `multiline.py`)."""
    if kind in ("json", "logfmt", "regex"):
        if kind == "regex" and not cfg.regex:
            raise ValueError("`format: regex` needs a `regex` with named groups")
        return LineJoiner(cfg, kind, on_error)
    if kind == "cri":
        return RecordJoiner(cfg, cri_record, on_error)
    if kind == "docker":
        return RecordJoiner(cfg, docker_record, on_error)
    raise ValueError(f"unknown format {kind!r}")


def make_decoder(cfg: DecodeConfig, on_error: OnError) -> Decoder:
    """The decoder for one file (or stdin) of source `cfg`; reasons go to `on_error`."""
    return _make(cfg.format, cfg, on_error)
