"""LineSplitter: any chunking of any stream gives the same lines, long ones skipped."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agent.sources.lines import LineSplitter

MAX = 16

line_bytes = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b""))


@given(
    lines=st.lists(line_bytes, max_size=30),
    tail=line_bytes,
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=20),
)
def test_any_chunking_gives_the_same_lines(
    lines: list[bytes], tail: bytes, cuts: list[int]
) -> None:
    data = b"".join(line + b"\n" for line in lines) + tail
    too_long: list[int] = []
    splitter = LineSplitter(MAX, lambda: too_long.append(1))
    out: list[bytes] = []
    fed = 0
    committed = 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        out += splitter.feed(data[fed:cut])
        fed = max(fed, cut)
        # The committed offset only ever moves forward and stays on a line boundary.
        now = fed - splitter.uncommitted
        assert now >= committed
        assert now == 0 or data[now - 1 : now] == b"\n"
        committed = now
    assert out == [line for line in lines if len(line) <= MAX]
    assert len(too_long) == sum(len(line) > MAX for line in lines) + (len(tail) > MAX)
    assert committed == len(data) - len(tail)
    held = splitter.flush()
    assert held == (tail if 0 < len(tail) <= MAX else None)


def test_crlf_and_empty_lines() -> None:
    # Blank lines are lines: the decoder counts them as `empty` (so live tailing and
    # replay count the same), they are not dropped here unseen.
    splitter = LineSplitter(100, lambda: None)
    assert splitter.feed(b'{"a":1}\r\n\n\r\n{"b":2}\n') == [b'{"a":1}', b"", b"", b'{"b":2}']


def test_flushed_partial_line_drops_its_rest() -> None:
    splitter = LineSplitter(100, lambda: None)
    assert splitter.feed(b"one\ntw") == [b"one"]
    assert splitter.flush() == b"tw"
    assert splitter.mid_line
    assert splitter.feed(b"o-rest\nthree\n") == [b"three"]
    assert not splitter.mid_line


@given(
    lines=st.lists(st.tuples(line_bytes, st.booleans()), max_size=30),
    tail=line_bytes,
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=20),
    base=st.integers(min_value=0, max_value=10_000),
)
def test_tracked_starts_are_where_each_line_begins(
    lines: list[tuple[bytes, bool]], tail: bytes, cuts: list[int], base: int
) -> None:
    """With `track` (multi-line sources), each line handed on comes with the file offset
    of its first byte: CRLF endings and skipped long lines included."""
    data = b"".join(line + (b"\r\n" if crlf else b"\n") for line, crlf in lines) + tail
    splitter = LineSplitter(MAX, lambda: None, track=base)
    got: list[tuple[bytes, int]] = []
    fed = 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        out = splitter.feed(data[fed:cut])
        assert len(splitter.starts) == len(out)
        got += zip(out, splitter.starts, strict=True)
        fed = cut
    flushed = splitter.flush()
    if flushed is not None:
        got.append((flushed, splitter.starts[0]))
    assert [line for line, _ in got] == [line for line, _ in lines if len(line) <= MAX] + (
        [tail] if tail and len(tail) <= MAX else []
    )
    for line, start in got:
        at = start - base
        assert data[at : at + len(line)] == line
        assert at == 0 or data[at - 1 : at] == b"\n"
