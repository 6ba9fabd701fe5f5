"""Multi-line events (`multiline:`): real stack traces, through every wrapper format.

Python's `logging`, a Go program's panics, Java's `java.util.logging` and Node's
`console.error` are run for real (tests/multiline_support.py); their lines go through
the decoder as plain text, as CRI records and as docker json-file records (long lines
split into chunks, so reassembly happens before joining). Each event must carry the
exception the program raised, counted exactly.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from pydantic import ValidationError

from agent.decode.base import Decoder
from agent.decode.cri import CRIDecoder
from agent.decode.docker import DockerDecoder
from agent.decode.formats import make_decoder
from agent.decode.json import JSONDecoder
from agent.decode.logfmt import LogfmtDecoder
from agent.decode.multiline import exception_fields
from agent.decode.regex import RegexDecoder
from agent.sources.config import SourceConfig
from tests.multiline_support import (
    PY_REGEX,
    Expected,
    go_panics,
    java_trace,
    node_errors,
    python_app,
    source,
    to_cri,
    wrap,
)

WRAPPERS = ["plain", "cri", "docker"]
Run = tuple[bytes, list[Expected]]


@pytest.fixture(scope="module")
def python_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    log, expected = python_app(tmp_path_factory.mktemp("python"), rounds=3)
    return log.read_bytes(), expected


@pytest.fixture(scope="module")
def go_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return go_panics(tmp_path_factory.mktemp("go"))


@pytest.fixture(scope="module")
def java_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return java_trace(tmp_path_factory.mktemp("java"))


@pytest.fixture(scope="module")
def node_run() -> Run:
    return node_errors()


def decoder(settings: dict[str, Any]) -> tuple[Decoder, Counter[str]]:
    reasons: Counter[str] = Counter()
    cfg = SourceConfig.model_validate(settings)
    return make_decoder(cfg, lambda reason: reasons.update([reason])), reasons


def decode(settings: dict[str, Any], lines: list[bytes], batch: int = 7) -> tuple[list, Counter]:
    """All lines, in batches of `batch` (events span batches), then the final flush."""
    dec, reasons = decoder(settings)
    events: list[dict[str, Any]] = []
    for i in range(0, len(lines), batch):
        dec.decode(lines[i : i + batch], events)
    dec.flush(events)
    assert dec.held_lines == 0
    return events, reasons


def check_exceptions(events: list[dict[str, Any]], expected: list[Expected]) -> None:
    """One event per expected record, each with the expected exception type (or none) and
    message (where the expectation gives one)."""
    assert len(events) == len(expected)
    assert [e.get("exception", {}).get("type") for e in events] == [
        x.exception_type for x in expected
    ]
    checked = [(e, x) for e, x in zip(events, expected, strict=True) if x.exception_message]
    assert [e["exception"]["message"] for e, _ in checked] == [
        x.exception_message for _, x in checked
    ]


@pytest.mark.parametrize("fmt", WRAPPERS)
def test_python_logging_tracebacks_are_one_event_each(python_run: Run, fmt: str) -> None:
    output, expected = python_run
    lines = output.splitlines()
    settings = source(fmt, PY_REGEX, preset="python")
    if fmt == "cri":
        settings["inner_format"] = "regex"  # the payload decoded by the same regex
        settings["regex"] = PY_REGEX
    events, reasons = decode(settings, wrap(fmt, lines, chunk=50))

    assert reasons == {}
    check_exceptions(events, expected)
    chained = [e for e in events if e.get("exception", {}).get("type") == "RuntimeError"]
    assert len(chained) == 3
    for e in chained:
        trace = e["exception"]["stacktrace"]
        assert trace.startswith("Traceback (most recent call last):")
        assert "TimeoutError: timed out" in trace and trace.endswith(
            "RuntimeError: LLM call failed"
        )
    if fmt == "docker":  # text payloads: the joined lines are the message
        assert [e["message"].split("\n")[0].split(" - ", 1)[1] for e in events] == [
            x.message for x in expected
        ]
        assert all(e["stream"] == "stderr" and e["time"] for e in events)
    else:  # the regex's fields come from each record's first line
        assert [(e["level"], e["message"]) for e in events] == [
            (x.level, x.message) for x in expected
        ]


@pytest.mark.parametrize("fmt", WRAPPERS)
def test_go_panics_are_one_event_each(go_run: Run, fmt: str) -> None:
    output, expected = go_run
    events, reasons = decode(source(fmt, preset="go"), wrap(fmt, output.splitlines(), chunk=30))
    assert reasons == {}
    check_exceptions(events, expected)
    panics = [e["exception"] for e in events if "exception" in e]
    assert all(p["stacktrace"].startswith(("panic: ", "fatal error: ")) for p in panics)
    assert all("goroutine 1 [" in p["stacktrace"] for p in panics)
    assert panics[0]["message"].startswith("runtime error: index out of range")
    assert panics[3]["message"] == "session store corrupted"  # `[recovered]` taken off


@pytest.mark.parametrize("fmt", WRAPPERS)
def test_java_stack_traces_join_the_log_line_before_them(java_run: Run, fmt: str) -> None:
    output, expected = java_run
    events, reasons = decode(source(fmt, preset="java"), wrap(fmt, output.splitlines(), chunk=40))
    assert reasons == {}
    check_exceptions(events, expected)
    severe = events[1]["exception"]["stacktrace"]
    assert "Caused by: java.io.IOException: crm down for order 42" in severe
    assert severe.rstrip().endswith("... 1 more")
    if fmt == "plain":
        assert (
            events[1]["level"] == "SEVERE"
            and events[1]["message"] == "support.bot - request failed"
        )


@pytest.mark.parametrize("fmt", WRAPPERS)
def test_node_console_error_is_one_event_each(node_run: Run, fmt: str) -> None:
    output, expected = node_run
    events, reasons = decode(source(fmt, preset="node"), wrap(fmt, output.splitlines(), chunk=45))
    assert reasons == {}
    check_exceptions(events, expected)
    with_cause = events[1]["exception"]["stacktrace"]
    assert with_cause.startswith("TypeError: cannot load session\n    at ")
    assert "[cause]: Error: connect ECONNREFUSED" in with_cause and with_cause.endswith("}")


def test_streams_interleaved_in_a_cri_log_join_on_their_own() -> None:
    """The runtime writes stdout and stderr line by line into one file: a stdout line can
    land in the middle of a stderr traceback. Each stream joins its own lines, and events
    go out in the order they began."""
    stderr = [
        b"2026-01-01 10:00:00,000 [ERROR] bot - call failed",
        b"Traceback (most recent call last):",
        b'  File "/app/bot.py", line 3, in call',
        b"    raise ValueError('bad')",
        b"ValueError: bad",
        b"2026-01-01 10:00:00,500 [INFO] bot - next",
    ]
    lines = to_cri(stderr)
    stdout = [b'2026-01-01T10:00:00.%dZ stdout F {"n": %d}' % (i, i) for i in range(3)]
    mixed = [lines[0], stdout[0], lines[1], lines[2], stdout[1], lines[3], lines[4], stdout[2]]
    mixed.append(lines[5])
    dec, reasons = decoder(source("cri", preset="python"))
    events: list[dict[str, Any]] = []
    dec.decode(mixed, events)
    # The traceback's event began first: nothing after it goes out before it is complete.
    assert [e.get("n", e.get("message", "")[:40]) for e in events] == [
        "2026-01-01 10:00:00,000 [ERROR] bot - ca",
        0,
        1,
        2,
    ]
    assert events[0]["exception"] == {
        "type": "ValueError",
        "message": "bad",
        "stacktrace": "\n".join(s.decode() for s in stderr[1:5]),
    }
    assert dec.held_lines == 1  # the last stderr line waits for its next line
    dec.flush(events)
    assert len(events) == 5 and reasons == {}


def test_an_event_of_one_stream_completes_when_the_other_is_a_timeout_later() -> None:
    dec, _ = decoder(source("cri", preset="python", timeout="2s"))
    events: list[dict[str, Any]] = []
    dec.decode([b"2026-01-01T10:00:00.1Z stderr F waiting for its next line"], events)
    dec.decode([b'2026-01-01T10:00:01.9Z stdout F {"n": 1}'], events)
    assert events == [] and dec.held_lines == 2  # 1.8 s later: it may still go on
    dec.decode([b'2026-01-01T10:00:02.1Z stdout F {"n": 2}'], events)
    assert [e.get("n", e.get("message")) for e in events] == ["waiting for its next line", 1, 2]
    assert dec.held_lines == 0


def test_held_lines_are_the_lines_of_the_event_being_joined() -> None:
    """What the file source keeps its checkpoint before."""
    dec, _ = decoder(source("plain", PY_REGEX, preset="python"))
    events: list[dict[str, Any]] = []
    dec.decode([b"2026-01-01 10:00:00,000 [INFO] bot - one"], events)
    assert (len(events), dec.held_lines) == (0, 1)  # the next line may continue it
    two = [b"2026-01-01 10:00:00,001 [ERROR] bot - two", b"Traceback (most recent call last):"]
    dec.decode([*two, b'  File "x.py", line 1, in <module>'], events)
    assert (len(events), dec.held_lines) == (1, 3)
    dec.decode([b"ValueError: x"], events)
    assert (len(events), dec.held_lines) == (1, 4)
    dec.decode([b"2026-01-01 10:00:00,002 [INFO] bot - three"], events)
    assert (len(events), dec.held_lines) == (2, 1)
    dec.flush(events)
    assert (len(events), dec.held_lines) == (3, 0)
    assert [e.get("exception", {}).get("type") for e in events] == [None, "ValueError", None]


def test_custom_start_rule() -> None:
    lines = [
        b"2026-01-01 10:00:00 INFO reply sent",
        b"  tokens: 12",
        b"not indented, still part of it",
        b"2026-01-01 10:00:01 INFO next",
    ]
    events, reasons = decode(source("plain", start=r"^\d{4}-"), lines)
    assert [e["message"] for e in events] == ["reply sent", "next"]
    assert reasons == {}


def test_custom_continue_rule_and_both() -> None:
    lines = [b"2026-01-01 10:00:00 INFO a", b"  more of a", b"orphan", b"\tmore of orphan"]
    events, reasons = decode(source("plain", **{"continue": r"^\s"}), lines)
    assert [e.get("message") for e in events] == ["a"]
    assert reasons == {"no_match": 1}  # "orphan" + its line: one event the regex refuses
    both = source("plain", start=r"^\d{4}-", **{"continue": r"^\s"})
    events, reasons = decode(both, [*lines, b"2026-01-01 10:00:01 INFO b"])
    assert [e.get("message") for e in events] == ["a", "b"] and reasons == {"no_match": 1}


def test_the_regex_sees_the_joined_text_line_by_line() -> None:
    """`^`/`$` match at each line, `.` stops at its end; `\\n` reaches the next lines."""
    lines = [b"2026-01-01 10:00:00 ERROR failed", b"  detail one", b"  detail two"]
    events, _ = decode(source("plain", start=r"^\d{4}-"), lines)
    assert events[0]["message"] == "failed"
    deeper = r"^(?P<ts>\S+ \S+) (?P<level>\w+) (?P<message>.*)\n(?P<details>(?s:.*))"
    events, _ = decode(source("plain", deeper, start=r"^\d{4}-"), lines)
    assert events[0]["message"] == "failed"
    assert events[0]["details"] == "  detail one\n  detail two"


def test_a_bare_traceback_is_an_event_with_its_exception() -> None:
    """An uncaught exception printed with nothing before it: the regex cannot decode it,
    but it is an error worth counting by type."""
    lines = [
        b"Traceback (most recent call last):",
        b'  File "/app/main.py", line 9, in <module>',
        b"    main()",
        b"KeyboardInterrupt",
    ]
    events, reasons = decode(source("plain", preset="python"), lines)
    assert events == [
        {
            "message": "\n".join(s.decode() for s in lines),
            "exception": {
                "type": "KeyboardInterrupt",
                "message": "",
                "stacktrace": "\n".join(s.decode() for s in lines),
            },
        }
    ]
    assert reasons == {}


def test_an_event_is_cut_at_max_lines_and_the_rest_counted_once() -> None:
    frames = [b'  File "/app/x.py", line %d, in f' % i for i in range(10)]
    lines = [b"2026-01-01 10:00:00 ERROR deep", b"Traceback (most recent call last):", *frames]
    lines += [b"RecursionError: too deep", b"2026-01-01 10:00:01 INFO after"]
    events, reasons = decode(source("plain", preset="python", max_lines=5), lines)
    assert [e["message"] for e in events] == ["deep", "after"]
    assert reasons == {"too_long": 1}
    events, reasons = decode(source("plain", preset="python", max_bytes=120), lines)
    assert [e["message"] for e in events] == ["deep", "after"] and reasons == {"too_long": 1}


def test_a_json_source_joins_only_the_lines_that_are_not_json() -> None:
    lines = [
        b'{"event": "start", "exc_info": "Traceback (most recent call last):\\n..."}',
        b"Traceback (most recent call last):",
        b'  File "/app/main.py", line 9, in <module>',
        b"ValueError: crashed",
        b'{"event": "restart"}',
        b"not json",
        b"[1, 2]",
        b"",
    ]
    events, reasons = decode({**source("json", preset="python"), "format": "json"}, lines)
    assert [e.get("event", e.get("exception", {}).get("type")) for e in events] == [
        "start",
        "ValueError",
        "restart",
    ]
    assert reasons == {"not_json": 1, "not_object": 1, "empty": 1}


def test_logfmt_decodes_the_first_line_and_takes_the_exception_from_the_rest() -> None:
    lines = [
        b'level=error msg="call failed" model=gpt-4o',
        b"Traceback (most recent call last):",
        b'  File "/app/llm.py", line 3, in call',
        b"openai.RateLimitError: 429",
        b"level=info msg=ok",
    ]
    events, reasons = decode({**source("logfmt", preset="python")}, lines)
    assert events[0]["msg"] == "call failed" and events[0]["model"] == "gpt-4o"
    assert events[0]["exception"]["type"] == "openai.RateLimitError"
    assert events[1] == {"level": "info", "msg": "ok"} and reasons == {}


def test_an_application_field_named_exception_wins() -> None:
    regex = r"^(?P<level>\w+) (?P<exception>\w+)$"
    events, _ = decode(
        source("plain", regex, preset="java"), [b"ERROR boom", b"\tat a.B(C.java:1)"]
    )
    assert events == [{"level": "ERROR", "exception": "boom"}]


def test_exception_fields_of_custom_rules_find_every_shape(java_run: Run) -> None:
    output, expected = java_run
    events, _ = decode(source("plain", start=r"^(?:\d{4}-|Exception in)"), output.splitlines())
    check_exceptions(events, expected)
    assert exception_fields(["x", "TypeError: no", "    at f (/a.js:1:1)"], None) == {
        "type": "TypeError",
        "message": "no",
        "stacktrace": "TypeError: no\n    at f (/a.js:1:1)",
    }
    assert exception_fields(["one line only", "and another"], None) is None


def test_without_multiline_the_single_line_decoders_are_used() -> None:
    """No cost when `multiline` is unset: the decoders are the ones without it."""
    kinds = {"json": JSONDecoder, "logfmt": LogfmtDecoder, "regex": RegexDecoder}
    kinds |= {"cri": CRIDecoder, "docker": DockerDecoder}
    for fmt, cls in kinds.items():
        cfg = SourceConfig(name="a", paths=["x"], format=fmt, regex="(?P<m>.*)")
        assert type(make_decoder(cfg, print)) is cls


def test_config() -> None:
    short = SourceConfig.model_validate(source("plain", preset="go") | {"multiline": "go"})
    assert short.multiline is not None and short.multiline.preset == "go"
    assert short.multiline.timeout == 1.0 and short.multiline.max_lines == 1000
    for bad, says in [
        ({}, "needs a `preset`"),
        ({"preset": "python", "start": "^x"}, "not both"),
        ({"continue": "("}, "not a valid regular expression"),
        ({"preset": "ruby"}, "'python', 'go', 'java' or 'node'"),
        ({"preset": "go", "timeout": "0s"}, "greater than 0"),
    ]:
        with pytest.raises(ValidationError, match="multiline") as info:
            SourceConfig.model_validate(source("plain") | {"multiline": bad})
        assert says in str(info.value)


@pytest.mark.parametrize("fmt", ["cri", "docker"])
def test_auto_finds_the_wrapper_then_joins(node_run: Run, fmt: str) -> None:
    output, expected = node_run
    settings = source(fmt, preset="node") | {"format": "auto"}
    events, reasons = decode(settings, wrap(fmt, output.splitlines(), chunk=45))
    assert reasons == {}
    check_exceptions(events, expected)


def _restart_anywhere(settings: dict[str, Any], lines: list[bytes]) -> None:
    """Cut the lines anywhere, as a stop would: the events handed on so far, then those a
    fresh decoder gives from the first line still held (where the checkpoint stays) are
    the events of an uncut run. And batching never changes them."""
    whole, reasons = decode(settings, lines, batch=len(lines))
    assert decode(settings, lines, batch=1) == (whole, reasons)
    for cut in range(len(lines) + 1):
        dec, _ = decoder(settings)
        before: list[dict[str, Any]] = []
        dec.decode(lines[:cut], before)
        after, _ = decode(settings, lines[cut - dec.held_lines :])
        assert before + after == whole, cut


def test_a_restart_anywhere_reads_each_event_once_whole(python_run: Run) -> None:
    output, _ = python_run
    lines = output.splitlines()[:80]
    _restart_anywhere(source("plain", PY_REGEX, preset="python"), lines)
    _restart_anywhere(source("docker", preset="python"), wrap("docker", lines, chunk=40))


def test_a_restart_anywhere_in_interleaved_streams(node_run: Run, go_run: Run) -> None:
    """CRI: Node's errors on stdout, Go's panics on stderr, line by line interleaved at
    random, long lines split into chunks; some records come seconds apart."""
    rng = random.Random(7)
    streams = [
        [(b"stdout", line) for line in node_run[0].splitlines()],
        [(b"stderr", line) for line in go_run[0].splitlines()],
    ]
    mixed = []
    while any(streams):
        pick = rng.choice([s for s in streams if s])
        mixed.append(pick.pop(0))
    lines = []
    second = 0
    for stream, line in mixed:
        second += rng.choice([0, 0, 0, 2])
        time = b"2026-01-01T10:%02d:%02d.%03dZ" % (second // 60, second % 60, len(lines))
        pieces = [line[i : i + 25] for i in range(0, len(line), 25)] or [b""]
        for k, piece in enumerate(pieces):
            tag = b"F" if k == len(pieces) - 1 else b"P"
            lines.append(b"%s %s %s %s" % (time, stream, tag, piece))
    _restart_anywhere(source("cri", preset="go"), lines)
    _restart_anywhere(source("cri", start=r"^(\d{4}-|panic|fatal|[A-Z]\w*Error)"), lines)
