"""The in-memory TSDB the rule engine reads: recent samples of the agent's own series.

Every `evaluation_interval` the app appends one snapshot of the store. Each series keeps its
timestamps (integer milliseconds, as Prometheus does, so range arithmetic is exact) and
values in compact arrays, trimmed to `retention` seconds. A series that was in the previous
snapshot and is missing from this one gets Prometheus' staleness marker, so instant
selectors stop returning it at once instead of 5 minutes later.

Beside the samples each series keeps the timestamps of its "irregular" samples (staleness
markers and counter resets), usually none. That tells in O(1) whether a window needs the
slow path in `rate()` and friends, which keeps evaluation over 10k series fast without
changing a single bit of the result, for 16 bytes a sample.
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agent.support.goregexp import compile_anchored

SeriesKey = tuple[tuple[str, str], ...]

STALE_BITS = 0x7FF0000000000002
"""Prometheus' staleness marker: a NaN with this exact bit pattern (value.StaleNaN)."""
_STALE_BYTES = struct.pack("<Q", STALE_BITS)
STALE_NAN: float = struct.unpack("<d", _STALE_BYTES)[0]
_pack = struct.Struct("<d").pack

BYTES_PER_SAMPLE = 16
"""What a sample costs in a series' arrays: an int64 millisecond timestamp and a float64."""


def is_stale(value: float) -> bool:
    """Whether `value` is the staleness marker (and not just any NaN)."""
    return value != value and _pack(value) == _STALE_BYTES


MatchOp = Literal["=", "!=", "=~", "!~"]


@dataclass(frozen=True, slots=True)
class Matcher:
    """A label matcher as in `name="value"`; regexes are anchored as in Prometheus."""

    name: str
    op: MatchOp
    value: str

    def compile(self) -> _CompiledMatcher:
        return _CompiledMatcher(self)


class _CompiledMatcher:
    __slots__ = ("name", "op", "regex", "value")

    def __init__(self, m: Matcher) -> None:
        self.name = m.name
        self.op = m.op
        self.value = m.value
        # Go's regexp, anchored as Prometheus anchors it (`^(?:v)$`), translated to Python.
        self.regex = compile_anchored(m.value) if m.op in ("=~", "!~") else None

    def matches(self, value: str) -> bool:
        op = self.op
        if op == "=":
            return value == self.value
        if op == "!=":
            return value != self.value
        assert self.regex is not None
        hit = self.regex.match(value) is not None
        return hit if op == "=~" else not hit


class Series:
    """One series' samples: timestamps in ms, values, and where the irregular ones are."""

    __slots__ = (
        "irregular",
        "key",
        "key_noname",
        "labels",
        "prev",
        "ts",
        "vals",
    )

    def __init__(self, key: SeriesKey) -> None:
        self.key = key
        self.labels = dict(key)
        self.key_noname: SeriesKey = tuple(p for p in key if p[0] != "__name__")
        self.ts = array("q")
        self.vals = array("d")
        # Timestamps of staleness markers and of values lower than the value before
        # (counter resets), in order; trimmed with the samples.
        self.irregular: list[int] = []
        self.prev = float("nan")  # last non-stale value, for reset detection

    def add(self, t_ms: int, value: float) -> None:
        ts = self.ts
        if ts and t_ms <= ts[-1]:
            if t_ms < ts[-1]:
                return  # out of order: Prometheus rejects it too
            self._drop_last()
        if value != value and _pack(value) == _STALE_BYTES:
            self.irregular.append(t_ms)
        else:
            if value < self.prev:
                self.irregular.append(t_ms)
            self.prev = value
        ts.append(t_ms)
        self.vals.append(value)

    def _drop_last(self) -> None:
        """Same timestamp again: the newer value wins (a recording rule re-evaluated)."""
        t = self.ts.pop()
        self.vals.pop()
        if self.irregular and self.irregular[-1] == t:
            self.irregular.pop()
        self.prev = float("nan")
        for v in reversed(self.vals):
            if not is_stale(v):
                self.prev = v
                break

    def trim(self, min_ms: int) -> None:
        """Drop samples older than `min_ms`."""
        ts = self.ts
        if not ts or ts[0] >= min_ms:
            return
        i = bisect_left(ts, min_ms)
        del ts[:i]
        del self.vals[:i]
        if self.irregular:
            del self.irregular[: bisect_left(self.irregular, min_ms)]

    def regular(self, lo: int, hi: int) -> bool:
        """Whether samples lo..hi-1 hold no staleness marker and no drop between them."""
        irregular = self.irregular
        if irregular:
            i = bisect_right(irregular, self.ts[lo])  # a drop *at* lo is outside the window
            if i < len(irregular) and irregular[i] <= self.ts[hi - 1]:
                return False
            v = self.vals[lo]
            if v != v and _pack(v) == _STALE_BYTES:
                return False
        return True

    def last_is_stale(self) -> bool:
        return bool(self.vals) and is_stale(self.vals[-1])

    def truncate(self, from_ms: int) -> None:
        """Drop samples at or after `from_ms` (a subquery's steps that must be recomputed)."""
        ts = self.ts
        if not ts or ts[-1] < from_ms:
            return
        i = bisect_left(ts, from_ms)
        del ts[i:]
        del self.vals[i:]
        if self.irregular:
            del self.irregular[bisect_left(self.irregular, from_ms) :]
        self.prev = float("nan")
        for v in reversed(self.vals):
            if not is_stale(v):
                self.prev = v
                break


def window(ts: array[int], start: int, end: int) -> tuple[int, int]:
    """Indices [lo, hi) of the timestamps in the closed range [start, end].

    Samples usually arrive at a steady interval, so the positions are guessed from the
    spacing and checked (two comparisons) before falling back to binary search."""
    n = len(ts)
    last = ts[n - 1]
    hi = n if last <= end else bisect_right(ts, end)
    if hi == 0:
        return 0, 0
    first = ts[0]
    if first >= start:
        return 0, hi
    if n > 1:
        g = n - 1 - (last - start) * (n - 1) // (last - first)
        if 0 < g < n and ts[g - 1] < start <= ts[g]:
            return g, hi
        g += 1
        if 0 < g < n and ts[g - 1] < start <= ts[g]:
            return g, hi
    return bisect_left(ts, start, 0, hi), hi


def _by_key(s: Series) -> SeriesKey:
    return s.key


_NOTHING = 2**63
_EVERYTHING = -(2**63)


class History:
    """Recent samples of every series, bounded by `retention` seconds."""

    def __init__(self, retention: float) -> None:
        self.retention = retention
        self._series: dict[SeriesKey, Series] = {}
        # Label index: label name -> label value -> series with that pair.
        self._postings: dict[str, dict[str, dict[SeriesKey, Series]]] = {}
        self._snapshot: dict[SeriesKey, Series] = {}
        self._select_cache: dict[tuple[Matcher, ...], list[Series]] = {}
        self._last_sweep_ms: int | None = None
        self._started = False
        self.memo: dict[tuple[str, int], Any] = {}
        """Results of subexpressions at one instant, shared by the rules of a cycle (many
        rules compute the same `rate(x[5m])`). A snapshot clears it; a single sample (a
        recording rule's result, ALERTS) only drops the results that read its metric."""
        self._memo_readers: dict[str, list[tuple[str, int]]] = {}
        self.subqueries: dict[str, Any] = {}
        """Each subquery's results at its steps, kept between evaluations and extended step
        by step (engine.py owns the values; each has a `last_used_ms`, so a sweep drops
        those no rule reads any more)."""
        # The earliest timestamp written in each epoch (an epoch ends when `changes_since`
        # is asked), so cached subquery steps at or after a write are recomputed.
        self._write_floors: list[int] = [_NOTHING]
        self._floors_base = 0

    def __len__(self) -> int:
        return len(self._series)

    def sample_count(self) -> int:
        """Samples held (staleness markers included), each BYTES_PER_SAMPLE of arrays."""
        return sum(len(s.ts) for s in self._series.values())

    # -- writing ---------------------------------------------------------------------

    def append(
        self,
        ts: float,
        samples: Iterable[tuple[SeriesKey, float]],
        created: Iterable[tuple[SeriesKey, float]] = (),
    ) -> None:
        """Add one snapshot taken at `ts`; series missing from it since the last one go stale.

        `created`: counter samples new since the last snapshot, with their creation time.
        Each gets a 0 at that time, as Prometheus does with created timestamps, so that
        `increase()` counts a new label value's first events (without it, three errors of
        a new type read as an increase of two). Not on the first snapshot: what was read
        before it is a backlog whose counting time says nothing about when it happened.
        """
        t_ms = round(ts * 1000)
        self.forget_memo()
        get = self._series.get
        earliest = t_ms
        if self._started:
            for key, created_at in created:
                if get(key) is None:
                    zero_ms = min(round(created_at * 1000), t_ms - 1)
                    self._create(key).add(zero_ms, 0.0)
                    earliest = min(earliest, zero_ms)
        self._started = True
        self._wrote(earliest)
        current: dict[SeriesKey, Series] = {}
        for key, value in samples:
            s = get(key)
            if s is None:
                s = self._create(key)
            times = s.ts
            if value != value or (times and t_ms <= times[-1]):
                s.add(t_ms, value)  # NaN, staleness marker or not newer: the general path
            else:  # Series.add inlined: the hot loop of every evaluation cycle
                if value < s.prev:
                    s.irregular.append(t_ms)
                s.prev = value
                times.append(t_ms)
                s.vals.append(value)
            current[key] = s
        previous = self._snapshot
        for key in previous.keys() - current.keys():
            s = previous[key]
            if not s.last_is_stale():
                s.add(t_ms, STALE_NAN)
        self._snapshot = current
        self._maybe_sweep(t_ms)

    def add(self, key: SeriesKey, ts: float, value: float) -> None:
        """Add a single sample (rule tests, recording rules); `value` may be `STALE_NAN`."""
        t_ms = round(ts * 1000)
        if self.memo:
            for label, name in key:
                if label == "__name__":
                    self._forget_readers(name)
                    break
            else:
                self._forget_readers("")
        s = self._series.get(key)
        if s is None:
            s = self._create(key)
        s.add(t_ms, value)
        self._wrote(t_ms)
        self._maybe_sweep(t_ms)

    def _wrote(self, t_ms: int) -> None:
        floors = self._write_floors
        if t_ms < floors[-1]:
            floors[-1] = t_ms

    def changes_since(self, token: int | None) -> tuple[int, int]:
        """The earliest timestamp written since the call that returned `token` (None: since
        ever), and the token for the next call. Results computed from samples up to some
        time T stay valid while nothing is written at or before T."""
        floors = self._write_floors
        i = -1 if token is None else token - self._floors_base
        earliest = _EVERYTHING if i < 0 else min(floors[i:])
        if floors[-1] != _NOTHING:
            floors.append(_NOTHING)  # writes from now on belong to the next caller's epoch
            if len(floors) > 4096:
                del floors[:2048]
                self._floors_base += 2048
        return earliest, self._floors_base + len(floors) - 1

    def remember(self, key: tuple[str, int], names: frozenset[str] | None, value: Any) -> None:
        """Keep a result that read the metrics `names` (None: any metric)."""
        self.memo[key] = value
        for name in names if names is not None else ("",):
            self._memo_readers.setdefault(name, []).append(key)

    def forget_memo(self) -> None:
        self.memo.clear()
        self._memo_readers.clear()

    def _forget_readers(self, name: str) -> None:
        memo = self.memo
        for n in (name, "") if name else ("",):
            for k in self._memo_readers.pop(n, ()):
                memo.pop(k, None)
        if not name:  # a series without a name may match any selector
            self.forget_memo()

    def _create(self, key: SeriesKey) -> Series:
        s = Series(key)
        self._series[key] = s
        for name, value in key:
            self._postings.setdefault(name, {}).setdefault(value, {})[key] = s
        self._select_cache.clear()
        return s

    def _remove(self, s: Series) -> None:
        del self._series[s.key]
        self._snapshot.pop(s.key, None)
        for name, value in s.key:
            by_value = self._postings[name]
            members = by_value[value]
            del members[s.key]
            if not members:
                del by_value[value]
                if not by_value:
                    del self._postings[name]
        self._select_cache.clear()

    def _maybe_sweep(self, now_ms: int) -> None:
        retention_ms = round(self.retention * 1000)
        every = max(1000, retention_ms // 8)
        if self._last_sweep_ms is not None and now_ms - self._last_sweep_ms < every:
            return
        self._last_sweep_ms = now_ms
        self.sweep(now_ms - retention_ms)

    def sweep(self, min_ms: int) -> None:
        """Trim samples older than `min_ms`; forget series with nothing left."""
        self.forget_memo()
        dead = []
        for s in self._series.values():
            ts = s.ts
            if not ts or ts[-1] < min_ms:
                dead.append(s)
            elif ts[0] < min_ms:
                s.trim(min_ms)
        for s in dead:
            self._remove(s)
        for key in [k for k, v in self.subqueries.items() if v.last_used_ms < min_ms]:
            del self.subqueries[key]  # a subquery no rule has read for a whole retention

    # -- reading ---------------------------------------------------------------------

    def series(self, matchers: Sequence[Matcher]) -> list[Series]:
        """Every series the matchers select, sorted by labels as Prometheus' storage returns
        them (sums then add up in the same order); cached until the set of series changes."""
        key = tuple(matchers)
        hit = self._select_cache.get(key)
        if hit is not None:
            return hit
        result = sorted(self._match(matchers), key=_by_key)
        self._select_cache[key] = result
        return result

    def _match(self, matchers: Sequence[Matcher]) -> list[Series]:
        candidates: dict[SeriesKey, Series] | None = None
        rest: list[_CompiledMatcher] = []
        for m in matchers:
            if m.op == "=" and m.value != "":
                posting = self._postings.get(m.name, {}).get(m.value)
                if not posting:
                    return []
                if candidates is None or len(posting) < len(candidates):
                    if candidates is not None:
                        posting = {k: v for k, v in posting.items() if k in candidates}
                    candidates = posting
                else:
                    candidates = {k: v for k, v in candidates.items() if k in posting}
            else:
                rest.append(m.compile())
        pool = candidates.values() if candidates is not None else self._series.values()
        if not rest:
            return list(pool)
        out = []
        for s in pool:
            labels = s.labels
            if all(m.matches(labels.get(m.name, "")) for m in rest):
                out.append(s)
        return out

    def select(
        self, matchers: Sequence[Matcher], start: float, end: float
    ) -> list[tuple[SeriesKey, list[tuple[float, float]]]]:
        """Samples in the closed window [start, end] (seconds) of each selected series.

        Staleness markers are left out, as in a Prometheus range selector; series with no
        sample in the window are left out.
        """
        lo_ms, hi_ms = round(start * 1000), round(end * 1000)
        out = []
        for s in self.series(matchers):
            lo, hi = bisect_left(s.ts, lo_ms), bisect_right(s.ts, hi_ms)
            points = [(s.ts[i] / 1000, s.vals[i]) for i in range(lo, hi) if not is_stale(s.vals[i])]
            if points:
                out.append((s.key, points))
        return out
