"""Fuzzing every decoder: no input escapes as an exception, every line is accounted for,
what comes out can always be encoded again, and batch boundaries never change the result."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.decode.base import REASONS
from agent.decode.cri import CRIDecoder
from agent.decode.docker import DockerDecoder
from agent.decode.events import Event
from agent.decode.logfmt import _parse_logfmt_quoted, parse_logfmt
from tests.decode_support import Run, source

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FORMATS = ["json", "cri", "docker", "logfmt", "regex", "auto"]
REGEX = r"^(?P<level>[A-Z]+)(?: (?P<msg>.*?))?(?: user=(?P<user>\S+))?$"

line_bytes = st.binary(max_size=120).map(lambda b: b.replace(b"\n", b""))

# Lines close enough to each format to reach past its first check.
cri_lines = st.builds(
    lambda time, stream, tag, payload: b" ".join([time, stream, tag, payload]),
    st.sampled_from(
        [b"2026-11-23T09:30:05.1Z"] * 4
        + [b"2026-11-23T09:30:05+02:00", b"2026-", b"2026-11-23T09:30:05.\xff", b"x" * 20]
    ),
    st.sampled_from([b"stdout", b"stderr"] * 3 + [b"stdin", b""]),
    st.sampled_from([b"P", b"F"] * 3 + [b"P:x", b"F:", b"X", b"PF"]),
    st.one_of(
        line_bytes,
        st.sampled_from([b'{"a": 1}', b'{"a": ', b"  ", b"", b"[1]"]),
        st.sampled_from([b"x" * 40, b"y" * 70]),  # past max_line_bytes=64 alone or joined
    ),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)
docker_lines = st.builds(
    lambda log, stream, time, extra: orjson.dumps(
        {**({"log": log} if log is not None else {}), "stream": stream, "time": time, **extra}
    ),
    st.one_of(
        st.none(),
        st.integers(-9, 9),
        st.text(max_size=40),
        st.text(max_size=40).map(lambda s: s + "\n"),
        st.sampled_from(["x" * 40, "y" * 70]),
        st.sampled_from(["z" * 40 + "\n", "w" * 70 + "\n"]),
    ),
    st.sampled_from(["stdout", "stderr", None, 1]),
    st.sampled_from(["2026-11-23T09:30:05Z", None, 5]),
    st.dictionaries(st.text(max_size=5), json_values, max_size=2),
)
json_lines = st.one_of(
    json_values.map(lambda v: orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS)),
    st.sampled_from([b'{"n": 99999999999999999999999}', b'{"n": 1e400}', b'{"n": NaN}']),
)
logfmt_escapes = ["\\ud800", "\\ud83e\\udd16", "\\udd16", '\\"', "\\n", "\\x41", "\\q", "\\"]
logfmt_value = st.one_of(
    st.text(alphabet="ab=\\é\udfff", max_size=6),
    st.builds(
        lambda parts, close: '"' + "".join(parts) + close,
        st.lists(st.sampled_from([*logfmt_escapes, "x", " ", "é", "="]), max_size=6),
        st.sampled_from(['"', ""]),
    ),
)
logfmt_pair = st.builds(
    lambda key, eq, value: key + eq + value,
    st.sampled_from(["a", "k", "é", "", '"']),
    st.sampled_from(["=", "", "=="]),
    logfmt_value,
)
logfmt_lines = st.lists(logfmt_pair, max_size=6).map(
    lambda pairs: " ".join(pairs).encode("utf-8", "surrogatepass")
)
regex_lines = st.builds(
    lambda level, msg, user: level + msg + user,
    st.sampled_from([b"INFO", b"info", b""]),
    st.one_of(st.just(b""), line_bytes.map(lambda b: b" " + b)),
    st.sampled_from([b"", b" user=ana", b" user="]),
)
any_line = st.one_of(line_bytes, cri_lines, docker_lines, json_lines, logfmt_lines, regex_lines)
files = st.lists(any_line, max_size=25)
cut_points = st.lists(st.integers(min_value=0), max_size=5)
"""Where to cut a file into batches (taken modulo its length, see split)."""
inner_formats = st.sampled_from(["json", "logfmt", "regex", "text"])


def run_all(format: str, batches: list[list[bytes]]) -> tuple[list[Event], Counter[str]]:
    run = Run(format, regex=REGEX, max_line_bytes=64)
    for batch in batches:
        run.feed(batch)
    run.flush()
    run.flush()
    return run.events, run.errors


def split(lines: list[bytes], cuts: list[int]) -> list[list[bytes]]:
    points = sorted({c % (len(lines) + 1) for c in cuts})
    batches, start = [], 0
    for point in [*points, len(lines)]:
        batches.append(lines[start:point])
        start = point
    return batches


def check_events(events: list[Event]) -> None:
    for event in events:
        assert type(event) is dict
        assert all(type(k) is str for k in event)
        # Later stages (labels, JSON payloads) can always encode what a decoder gives.
        orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_SUBCLASS)


@pytest.mark.parametrize("format", FORMATS)
@FUZZ
@given(lines=files, cuts=cut_points)
def test_any_file_is_accounted_for_and_decodes_the_same_in_any_batches(
    format: str, lines: list[bytes], cuts: list[int]
) -> None:
    events, errors = run_all(format, [lines])
    check_events(events)
    assert set(errors) <= set(REASONS)
    if format in ("json", "logfmt", "regex"):
        # One line, one outcome.
        assert len(events) + sum(errors.values()) == len(lines)
    else:
        # A record spans one line or more; each ends as one event or one reason.
        assert len(events) + sum(errors.values()) <= len(lines)
    assert run_all(format, split(lines, cuts)) == (events, errors)


@pytest.mark.parametrize(
    ("format", "record_lines"),
    [pytest.param("cri", cri_lines, id="cri"), pytest.param("docker", docker_lines, id="docker")],
)
@FUZZ
@given(inner=inner_formats, data=st.data())
def test_every_inner_format_survives_any_records(
    format: str, record_lines: st.SearchStrategy[bytes], inner: str, data: st.DataObject
) -> None:
    lines = data.draw(st.lists(record_lines, max_size=25), label="lines")
    run = Run(format, inner_format=inner, regex=REGEX, max_line_bytes=64)
    run.feed(lines)
    run.flush()
    check_events(run.events)
    assert len(run.events) + sum(run.errors.values()) <= len(lines)


def line_by_line_json(lines: list[bytes]) -> tuple[list[Event], Counter[str]]:
    """The plain per-line loop the batch fast path must agree with."""
    events: list[Event] = []
    errors: Counter[str] = Counter()
    for line in lines:
        if not line.strip():
            errors["empty"] += 1
            continue
        text = line[3:] if line.startswith(b"\xef\xbb\xbf") else line
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            try:
                text.decode()
            except UnicodeDecodeError:
                errors["invalid_utf8"] += 1
            else:
                errors["not_json"] += 1
            continue
        if type(obj) is dict:
            events.append(obj)
        else:
            errors["not_object"] += 1
    return events, errors


bom_lines = st.one_of(any_line, any_line.map(lambda line: b"\xef\xbb\xbf" + line))


@FUZZ
@given(st.lists(bom_lines, max_size=25), cut_points)
def test_json_batch_fast_path_agrees_with_the_line_by_line_loop(
    lines: list[bytes], cuts: list[int]
) -> None:
    assert run_all("json", split(lines, cuts)) == line_by_line_json(lines)
    # Appending to a list that already holds events leaves those alone.
    run = Run("json")
    out: list[Event] = [{"earlier": 1}, {"earlier": 2}]
    for batch in split(lines, cuts):
        run.decoder.decode(batch, out)
    assert out == [{"earlier": 1}, {"earlier": 2}, *line_by_line_json(lines)[0]]


class SlowCRI(CRIDecoder):
    """Every line through the general chunk path: the model the inline fast path must match."""

    __slots__ = ()

    def decode(self, lines: list[bytes], out: list[Event]) -> None:
        for line in lines:
            self._chunk(line, out)


class SlowDocker(DockerDecoder):
    __slots__ = ()

    def decode(self, lines: list[bytes], out: list[Event]) -> None:
        for line in lines:
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError:
                self._on_error("empty" if not line.strip() else "bad_docker")
                continue
            if type(rec) is not dict:
                self._on_error("bad_docker")
                continue
            log, stream, time = rec.get("log"), rec.get("stream"), rec.get("time")
            if not (
                type(log) is str
                and (stream is None or type(stream) is str)
                and (time is None or type(time) is str)
            ):
                self._on_error("bad_docker")
                continue
            self._chunk(log, stream, time, out)


def run_decoder(
    decoder_class: type[CRIDecoder] | type[DockerDecoder],
    format: str,
    inner: str,
    batches: list[list[bytes]],
) -> tuple[list[Event], Counter[str]]:
    errors: Counter[str] = Counter()
    cfg = source(format, inner_format=inner, regex=REGEX, max_line_bytes=64)
    decoder = decoder_class(cfg, lambda reason: errors.update([reason]))
    out: list[Event] = []
    for batch in batches:
        decoder.decode(batch, out)
    decoder.flush(out)
    return out, errors


cri_file = st.lists(
    st.one_of(cri_lines, cri_lines, cri_lines, docker_lines, line_bytes), max_size=30
)
docker_file = st.lists(
    st.one_of(docker_lines, docker_lines, docker_lines, cri_lines, line_bytes), max_size=30
)


@pytest.mark.parametrize(
    ("format", "fast", "slow", "file"),
    [
        pytest.param("cri", CRIDecoder, SlowCRI, cri_file, id="cri"),
        pytest.param("docker", DockerDecoder, SlowDocker, docker_file, id="docker"),
    ],
)
@FUZZ
@given(inner=inner_formats, cuts=cut_points, data=st.data())
def test_fast_path_agrees_with_the_chunk_path(
    format: str,
    fast: type[CRIDecoder] | type[DockerDecoder],
    slow: type[CRIDecoder] | type[DockerDecoder],
    file: st.SearchStrategy[list[bytes]],
    inner: str,
    cuts: list[int],
    data: st.DataObject,
) -> None:
    lines = data.draw(file, label="lines")
    expected = run_decoder(slow, format, inner, [lines])
    assert run_decoder(fast, format, inner, split(lines, cuts)) == expected


@FUZZ
@given(
    st.one_of(
        logfmt_lines.map(lambda b: b.decode("utf-8", "replace")),
        line_bytes.map(lambda b: b.decode("utf-8", "replace")),
        st.text(alphabet="ab=é \t\x1c\x85\xa0\u2003\u200b\ufeff\u3000\r\\", max_size=30),
    )
)
def test_logfmt_without_quotes_reads_as_the_general_pattern_does(text: str) -> None:
    text = text.replace('"', "")
    assert parse_logfmt(text) == _parse_logfmt_quoted(text)
