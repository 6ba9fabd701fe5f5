"""The rules' in-memory TSDB: snapshots, staleness markers, retention, label selection."""

from __future__ import annotations

import math
from array import array

from hypothesis import given
from hypothesis import strategies as st

from agent.alerting.history import STALE_NAN, History, Matcher, SeriesKey, is_stale, window


def key(name: str, **labels: str) -> SeriesKey:
    return tuple(sorted({"__name__": name, **labels}.items()))


REQ_CHAT = key("requests_total", route="/chat", code="200")
REQ_LOGIN = key("requests_total", route="/login", code="500")
SESSIONS = key("sessions", pod="a")


def test_staleness_marker_is_prometheus_bit_pattern_and_not_any_nan() -> None:
    assert math.isnan(STALE_NAN)
    assert is_stale(STALE_NAN)
    assert not is_stale(float("nan"))
    assert not is_stale(1.0)


def test_snapshot_samples_are_selected_in_the_closed_window() -> None:
    h = History(retention=3600)
    for t in range(0, 5):
        h.append(100.0 + t, [(REQ_CHAT, float(t)), (SESSIONS, 7.0)])
    got = h.select([Matcher("__name__", "=", "requests_total")], 101, 103)
    assert got == [(REQ_CHAT, [(101.0, 1.0), (102.0, 2.0), (103.0, 3.0)])]


def test_series_missing_from_the_next_snapshot_gets_one_staleness_marker() -> None:
    h = History(retention=3600)
    h.append(10, [(REQ_CHAT, 1.0), (SESSIONS, 3.0)])
    h.append(11, [(REQ_CHAT, 2.0)])
    h.append(12, [(REQ_CHAT, 3.0)])
    (series,) = h.series([Matcher("__name__", "=", "sessions")])
    assert list(series.ts) == [10_000, 11_000]  # one marker, not one per snapshot
    assert is_stale(series.vals[-1])
    # Range selections leave markers out, as Prometheus does.
    assert h.select([Matcher("pod", "=", "a")], 0, 20) == [(SESSIONS, [(10.0, 3.0)])]


def test_series_that_returns_after_going_stale_continues() -> None:
    h = History(retention=3600)
    h.append(1, [(SESSIONS, 1.0)])
    h.append(2, [])
    h.append(3, [(SESSIONS, 5.0)])
    assert h.select([Matcher("__name__", "=", "sessions")], 0, 10) == [
        (SESSIONS, [(1.0, 1.0), (3.0, 5.0)])
    ]


def test_retention_trims_old_samples_and_forgets_dead_series() -> None:
    h = History(retention=60)
    for t in range(0, 600):
        h.append(float(t), [(REQ_CHAT, float(t))] + ([(REQ_LOGIN, 1.0)] if t < 100 else []))
    (chat,) = h.series([Matcher("route", "=", "/chat")])
    # Bounded: at most retention plus one sweep period (retention/8) of samples.
    assert 60 <= len(chat.ts) <= 60 + 60 // 8 + 2
    assert chat.ts[0] >= (599 - 60 - 60 // 8 - 1) * 1000
    assert h.series([Matcher("route", "=", "/login")]) == []
    assert len(h) == 1


def test_add_replaces_a_sample_at_the_same_timestamp_and_ignores_older_ones() -> None:
    h = History(retention=3600)
    h.add(SESSIONS, 5, 1.0)
    h.add(SESSIONS, 5, 2.0)
    h.add(SESSIONS, 4, 9.0)
    assert h.select([Matcher("pod", "=", "a")], 0, 10) == [(SESSIONS, [(5.0, 2.0)])]


def test_matchers_equality_regex_negation_and_empty_value() -> None:
    h = History(retention=3600)
    other = key("requests_total", route="/chat")  # no code label
    h.append(1, [(REQ_CHAT, 1.0), (REQ_LOGIN, 2.0), (other, 3.0), (SESSIONS, 4.0)])

    def names(*ms: Matcher) -> list[SeriesKey]:
        return [s.key for s in h.series(ms)]

    name = Matcher("__name__", "=", "requests_total")
    assert names(name, Matcher("code", "=~", "5..")) == [REQ_LOGIN]
    assert names(name, Matcher("code", "!~", "5..")) == [REQ_CHAT, other]
    assert names(name, Matcher("route", "!=", "/chat")) == [REQ_LOGIN]
    assert names(name, Matcher("code", "=", "")) == [other]  # "" matches a missing label
    assert names(Matcher("code", "=~", "2.*|5.*")) == [REQ_CHAT, REQ_LOGIN]
    assert names(Matcher("route", "=~", "/c")) == []  # regexes are anchored
    assert names(Matcher("__name__", "=", "nope")) == []


def test_selection_sees_series_created_after_a_cached_selection() -> None:
    h = History(retention=3600)
    m = [Matcher("__name__", "=", "requests_total")]
    h.append(1, [(REQ_CHAT, 1.0)])
    assert len(h.series(m)) == 1
    h.append(2, [(REQ_CHAT, 2.0), (REQ_LOGIN, 1.0)])
    assert [s.key for s in h.series(m)] == [REQ_CHAT, REQ_LOGIN]


def test_a_replaced_sample_keeps_counter_reset_detection_exact() -> None:
    from agent.alerting.promql.engine import compile_expr, evaluate

    h = History(retention=3600)
    h.add(SESSIONS, 0, 10.0)
    h.add(SESSIONS, 60, 20.0)
    h.add(SESSIONS, 60, 3.0)  # replaced: now a reset from 10 to 3
    h.add(SESSIONS, 120, 8.0)
    (sample,) = evaluate(compile_expr("increase(sessions[2m])"), h, 120)  # type: ignore[misc]
    assert sample.value == 8 - 10 + 10


@given(
    st.lists(st.integers(0, 10_000), min_size=1, max_size=60, unique=True),
    st.integers(-100, 10_100),
    st.integers(0, 5_000),
)
def test_window_guess_always_agrees_with_binary_search(
    stamps: list[int], start: int, length: int
) -> None:
    ts = array("q", sorted(stamps))
    end = start + length
    lo, hi = window(ts, start, end)
    want = [t for t in ts if start <= t <= end]
    assert list(ts[lo:hi]) == want if lo < hi else want == []
