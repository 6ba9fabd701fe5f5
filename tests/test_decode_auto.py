"""`format: auto`: each file's format (json, cri, docker) is detected from its first
recognisable line, so one source can glob a mix of plain JSON logs and container logs."""

from __future__ import annotations

from agent.decode.formats import AutoDecoder
from tests.decode_support import Run, decode

JSON_LINES = [
    b'{"event": "http_request", "route": "/api/chat", "status_code": 200}',
    b'{"event": "llm_call", "model": "gpt-4o", "tokens_in": 100}',
]
CRI_LINES = [
    b'2026-11-23T09:30:05.1Z stdout P {"event": "http_request", ',
    b"2026-11-23T09:30:05.2Z stderr F booting",
    b'2026-11-23T09:30:05.3Z stdout F "status_code": 200}',
]
DOCKER_LINES = [
    b'{"log":"{\\"event\\": \\"http_request\\", \\"status_code\\": 200}\\n",'
    b'"stream":"stdout","time":"2026-11-23T09:30:05.1Z"}',
    b'{"log":"booting\\n","stream":"stderr","time":"2026-11-23T09:30:05.2Z"}',
]


def detected(run: Run) -> str | None:
    assert isinstance(run.decoder, AutoDecoder)
    return run.decoder.detected


def test_a_json_file_decodes_as_json() -> None:
    run = Run("auto")
    run.feed(JSON_LINES)
    assert detected(run) == "json"
    assert run.events == decode("json", JSON_LINES)[0]
    assert [e["event"] for e in run.events] == ["http_request", "llm_call"]


def test_a_cri_file_decodes_as_cri_even_when_it_starts_with_a_partial_chunk() -> None:
    run = Run("auto")
    run.feed(CRI_LINES)
    assert detected(run) == "cri"
    assert run.errors == {}
    assert run.events == [
        {"message": "booting", "stream": "stderr", "time": "2026-11-23T09:30:05.2Z"},
        {
            "event": "http_request",
            "status_code": 200,
            "stream": "stdout",
            "time": "2026-11-23T09:30:05.1Z",
        },
    ]


def test_a_docker_file_decodes_as_docker_not_as_raw_json_records() -> None:
    run = Run("auto")
    run.feed(DOCKER_LINES)
    assert detected(run) == "docker"
    assert run.errors == {}
    assert run.events == [
        {
            "event": "http_request",
            "status_code": 200,
            "stream": "stdout",
            "time": "2026-11-23T09:30:05.1Z",
        },
        {"message": "booting", "stream": "stderr", "time": "2026-11-23T09:30:05.2Z"},
    ]


def test_lines_before_the_format_is_known_are_counted_as_json_would_count_them() -> None:
    run = Run("auto")
    run.feed([b"starting up...", b"   ", b"[1, 2]", b"\xff\xfe"])
    assert detected(run) is None
    run.feed([b"still text", *CRI_LINES[1:2]])
    assert detected(run) == "cri"
    run.feed([*CRI_LINES, b'{"event": "json now"}'])
    assert run.errors == {
        "not_json": 2,
        "empty": 1,
        "not_object": 1,
        "invalid_utf8": 1,
        "bad_cri": 1,
    }
    assert [e.get("message") or e["event"] for e in run.events] == [
        "booting",
        "booting",
        "http_request",
    ]


def test_a_text_file_is_never_detected_and_every_line_is_counted() -> None:
    events, errors = decode("auto", [b"plain text", b"more text", b"2026 not cri either"])
    assert events == []
    assert errors == {"not_json": 3}


def test_detection_is_per_file() -> None:
    first, second = Run("auto"), Run("auto")
    first.feed(JSON_LINES)
    second.feed(DOCKER_LINES)
    assert (detected(first), detected(second)) == ("json", "docker")


def test_flush_reaches_the_detected_decoder() -> None:
    run = Run("auto")
    run.feed(CRI_LINES[:1])
    assert run.events == []
    assert run.flush() == [
        {
            "message": '{"event": "http_request", ',
            "stream": "stdout",
            "time": "2026-11-23T09:30:05.1Z",
        }
    ]
    assert Run("auto").flush() == []  # nothing seen, nothing held
