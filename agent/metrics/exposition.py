"""/metrics: the store's series written straight to the text format and OpenMetrics.

A scrape of 100k histogram label sets is over a million samples. Building one
prometheus_client `Sample` per sample (and a dict of labels for each) cost seconds and
gigabytes, so the store's families are written here, line by line, from the store's own
cells: the label part of a series is escaped once per series, not per sample, and each
line is one string concatenation. prometheus_client still encodes the small families:
`chatwatch_build_info`, the self-metrics and its `process_*`/`python_*` collectors.

The output is byte for byte what prometheus_client writes for the same families (the
tests compare the two on the reference workload): labels sorted by name, label values
escaped (`\\`, newline, `"`), HELP escaped as each format wants, numbers as
`floatToGoString`, a counter family named without `_total` in OpenMetrics, histograms
as `_bucket{le}` (cumulative), `_count`, `_sum`, and no `_created`.

A scrape has two steps. `snapshot()` runs on the event loop and copies each family's keys
and values into flat lists (a few milliseconds for a million numbers, and no object per
series), so the extractor may go on changing the store meanwhile; `StoreSnapshot.write()`
is pure work on those copies and runs in a worker thread for a large scrape. A small
family whose keys and values did not change since the last scrape is not written again:
its text is kept (`CACHE_CHARS`); a large one would cost as much memory as it saves time.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any

from prometheus_client import GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest as generate_text
from prometheus_client.openmetrics.exposition import (
    UNDERSCORES,
    escape_label_name,
    escape_metric_name,
)
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from agent import __version__
from agent.metrics.store import ExternalFamily, Family, LabelValues, Store
from agent.support.selfmetrics import SelfMetrics

CACHE_CHARS = 256 * 1024
"""A family's written samples are kept for the next scrape up to this size."""
CHUNK_SERIES = 2000
"""Series per chunk of text `write()` yields: big enough to be cheap, small enough that a
gzip stream never holds a whole large family as text."""

_FIRST = itemgetter(0)

__all__ = ["Exposition", "StoreSnapshot", "collector"]


def _escape_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


@dataclass(slots=True)
class _Copy:
    """One family at the instant of the snapshot: flat copies, no object per series."""

    name: str
    """The family name prometheus_client would give it (a counter's without `_total`)."""
    sample: str
    """The sample name of a counter or gauge (`foo_total`), or a histogram's base name."""
    kind: str
    """counter, gauge, histogram or unknown."""
    help: str
    labelnames: tuple[str, ...]
    static: tuple[tuple[str, str], ...]
    les: tuple[str, ...]
    keys: list[Any]
    """Label values per series (`LabelValues`); for an external family, sorted pairs."""
    values: list[Any]
    """A value per series; a histogram's whole cell per series (`len(les) + 1` numbers)."""
    external: bool = False
    """Set by the rules: each key is the series' sorted (label, value) pairs."""


@dataclass(slots=True)
class _Cached:
    shape: tuple[Any, ...]
    """What else the text depends on: the escaping, kind, label names, static labels and
    buckets (a reload may change them and bring back the same keys and values)."""
    keys: list[Any]
    values: list[Any]
    text: str


class StoreSnapshot:
    """The store's families at one instant, ready to be written (in any thread)."""

    def __init__(self, families: list[_Copy], cache: dict[str, _Cached]) -> None:
        self._families = families
        self._cache = cache
        self.names = frozenset(f.name for f in families)
        """Family names as prometheus_client names them, to keep other collectors' repeats out."""
        self.samples = sum(
            len(f.keys) * (len(f.les) + 2 if f.kind == "histogram" else 1) for f in families
        )

    def write(self, openmetrics: bool = False, escaping: str = UNDERSCORES) -> Iterator[str]:
        """The text of every family, in chunks; no `# EOF` (the caller ends the body)."""
        for fam in self._families:
            name = escape_metric_name(fam.name, escaping)
            if openmetrics:
                doc = _escape_value(fam.help)
                yield f"# HELP {name} {doc}\n# TYPE {name} {fam.kind}\n"
            else:
                doc = fam.help.replace("\\", r"\\").replace("\n", r"\n")
                kind = "untyped" if fam.kind == "unknown" else fam.kind
                if fam.kind == "counter":
                    name = escape_metric_name(fam.name + "_total", escaping)
                yield f"# HELP {name} {doc}\n# TYPE {name} {kind}\n"
            cached = self._cache.get(fam.sample)
            shape = (escaping, fam.kind, fam.labelnames, fam.static, fam.les)
            if (
                cached is not None
                and cached.shape == shape
                and cached.keys == fam.keys
                and cached.values == fam.values
            ):
                yield cached.text
                continue
            if fam.external:
                chunks = _external(fam, escaping)
            elif fam.kind == "histogram":
                chunks = _histogram(fam, escaping)
            else:
                chunks = _plain(fam, escaping)
            if len(fam.keys) > CHUNK_SERIES:
                self._cache.pop(fam.sample, None)
                yield from chunks
                continue
            text = "".join(chunks)
            if len(text) <= CACHE_CHARS:
                self._cache[fam.sample] = _Cached(shape, fam.keys, fam.values, text)
            yield text


def _label_template(
    fam: _Copy, escaping: str, extra: str | None = None
) -> tuple[str, str, int, Callable[[LabelValues], tuple[str, ...]]]:
    """`%`-templates for a series' labels, sorted by name with the static labels filled in.

    Returns (before, after, n, order): the labels sorting before `extra` (a label added
    per sample: `le`) and after it, how many of the series' values go in `before`, and the
    function that puts a series' values in template order (escaped). Without `extra`,
    everything is in `before`."""
    slots: list[tuple[str, int | str]] = [(n, i) for i, n in enumerate(fam.labelnames)]
    slots += [(n, _escape_value(v).replace("%", "%%")) for n, v in fam.static]
    slots.sort(key=_FIRST)
    before: list[str] = []
    after: list[str] = []
    order: list[int] = []
    n_before = 0
    for label, slot in slots:
        part = escape_label_name(label, escaping)
        is_after = extra is not None and label > extra
        if isinstance(slot, int):
            order.append(slot)
            n_before += not is_after
            text = f'{part}="%s"'
        else:
            text = f'{part}="{slot}"'
        (after if is_after else before).append(text)
    return ",".join(before), ",".join(after), n_before, _reorder(order, len(fam.labelnames))


def _reorder(order: list[int], arity: int) -> Callable[[LabelValues], tuple[str, ...]]:
    def escaped(values: tuple[str, ...]) -> tuple[str, ...]:
        joined = "".join(values)  # one scan for the rare value that needs escaping
        if "\\" not in joined and '"' not in joined and "\n" not in joined:
            return values
        return tuple(map(_escape_value, values))

    if order == list(range(arity)):
        return escaped
    if len(order) == 1:
        (i,) = order
        return lambda values: escaped((values[i],))
    pick = itemgetter(*order)
    return lambda values: escaped(pick(values))


_INF = float("inf")


def _number(value: Any) -> str:
    """floatToGoString: `repr` but for infinities, NaN, ints and 1e6 <= x < 1e16 (which Go
    writes with an exponent)."""
    if value.__class__ is float and -_INF < value < 1e6:
        return repr(value)
    return floatToGoString(value)


def _plain(fam: _Copy, escaping: str) -> Iterator[str]:
    """A counter's or gauge's sample lines."""
    labels, _, _, order = _label_template(fam, escaping)
    name = escape_metric_name(fam.sample, escaping)
    head = f"{name}{{{labels}}} " if labels else f"{name} "
    if not fam.labelnames:
        head %= ()  # static labels only: no value to fill in, `%%` to undo
    keys, values = fam.keys, fam.values
    for start in range(0, len(keys), CHUNK_SERIES):
        stop = start + CHUNK_SERIES
        if fam.labelnames:
            lines = [
                f"{head % order(k)}{_number(v)}\n"
                for k, v in zip(keys[start:stop], values[start:stop], strict=True)
            ]
        else:
            lines = [f"{head}{_number(v)}\n" for v in values[start:stop]]
        yield "".join(lines)


def _histogram(fam: _Copy, escaping: str) -> Iterator[str]:
    """`_bucket` (cumulative) for each bound, then `_count` and `_sum`, per series."""
    before, after, n_before, order = _label_template(fam, escaping, extra="le")
    base = fam.sample
    bucket_name = escape_metric_name(base + "_bucket", escaping)
    bucket = f"{bucket_name}{{{before},le=" if before else f"{bucket_name}{{le="
    bucket_end = f",{after}}} " if after else "} "
    plain = ",".join(p for p in (before, after) if p)
    count_name = escape_metric_name(base + "_count", escaping)
    sum_name = escape_metric_name(base + "_sum", escaping)
    has_sum = float(fam.les[0]) >= 0  # prometheus_client omits both with a negative bucket
    les = [f'"{le}"' for le in fam.les]
    width = len(les) + 1
    # Cumulative counts repeat a lot: each is formatted once per write.
    memo: dict[float, str] = {}
    remembered = memo.get
    keys, values = fam.keys, fam.values
    dynamic = bool(fam.labelnames)
    # Parts with no value of the series to fill in are filled once (`% ()` undoes the
    # `%%` of static values); the others per series.
    head = bucket % () if not n_before else bucket
    end = bucket_end if dynamic else bucket_end % ()
    labels = f"{{{plain % ()}}} " if plain and not dynamic else " "
    for start in range(0, len(keys), CHUNK_SERIES):
        out: list[str] = []
        append = out.append
        for i, key in enumerate(keys[start : start + CHUNK_SERIES], start):
            cell = values[i * width : (i + 1) * width]
            if dynamic:
                vals = order(key)
                if n_before:
                    head = bucket % vals[:n_before]
                end = bucket_end % vals[n_before:]
                labels = f"{{{plain % vals}}} "
            cumulative = 0.0
            text = "0.0"
            for le, c in zip(les, cell, strict=False):
                cumulative += c
                text = remembered(cumulative)  # type: ignore[assignment]
                if text is None:
                    text = floatToGoString(cumulative)
                    if cumulative != 0:  # 0.0 and -0.0 are equal keys, written differently
                        memo[cumulative] = text
                append(f"{head}{le}{end}{text}\n")
            if has_sum:
                append(f"{count_name}{labels}{text}\n{sum_name}{labels}{_number(cell[-1])}\n")
        yield "".join(out)


def _copy(fam: Family) -> _Copy:
    cells = fam.series.values()
    if fam.kind == "histogram":
        values: list[Any] = list(chain.from_iterable(cells))
        return _Copy(
            fam.name,
            fam.name,
            "histogram",
            fam.help,
            fam.labelnames,
            fam.static,
            tuple(fam.le_strings),
            list(fam.series),
            values,
        )
    name = fam.name.removesuffix("_total") if fam.kind == "counter" else fam.name
    sample = name + "_total" if fam.kind == "counter" else name
    return _Copy(
        name,
        sample,
        fam.kind,
        fam.help,
        fam.labelnames,
        fam.static,
        (),
        list(fam.series),
        list(map(_FIRST, cells)),
    )


def _copy_external(ext: ExternalFamily) -> _Copy:
    """Recording-rule results and ALERTS; a counter whose name lacks `_total` is untyped.

    Their samples carry a label dict each (each may have its own names), so each series'
    labels become its key, with no label names of the family's own."""
    kind, name = ext.kind, ext.name
    if kind == "counter":
        if name.endswith("_total"):
            name = name.removesuffix("_total")
        else:
            kind = "unknown"
    elif kind not in ("gauge", "unknown"):
        kind = "unknown"
    keys = [tuple(sorted(labels.items())) for labels, _ in ext.samples]
    values = [value for _, value in ext.samples]
    help = ext.help or f"{ext.name} (computed by chatwatch rules)"
    return _Copy(name, ext.name, kind, help, (), (), (), keys, values, external=True)


def _external(fam: _Copy, escaping: str) -> Iterator[str]:
    name = escape_metric_name(fam.sample, escaping)
    lines = []
    pairs: Any
    for pairs, value in zip(fam.keys, fam.values, strict=True):
        if pairs:
            labels = ",".join(
                f'{escape_label_name(k, escaping)}="{_escape_value(v)}"' for k, v in pairs
            )
            lines.append(f"{name}{{{labels}}} {_number(value)}\n")
        else:
            lines.append(f"{name} {_number(value)}\n")
    yield "".join(lines)


class Exposition(Collector):
    """What /metrics shows: the store written directly, the rest by prometheus_client.

    As a prometheus_client `Collector` it yields only the small families (build info,
    self-metrics, and with `runtime` the process_* and python_* collectors); the store's
    families come from `snapshot()`. `text()` and `openmetrics()` give a whole scrape."""

    def __init__(self, store: Store, stats: SelfMetrics, runtime: bool = True) -> None:
        self.store = store
        self.stats = stats
        self._runtime: list[Collector] = []
        if runtime:  # GCCollector insists on a registry: a private one, never scraped
            gc_collector = GCCollector(registry=CollectorRegistry(auto_describe=False))
            process = ProcessCollector(registry=None)
            self._runtime = [process, PlatformCollector(registry=None), gc_collector]
        self._cache: dict[str, _Cached] = {}

    def snapshot(self) -> StoreSnapshot:
        """Copies of every family's series: call it on the event loop (where the store
        changes), then write the snapshot anywhere."""
        families = [_copy(f) for f in list(self.store.families.values())]
        families += [_copy_external(e) for e in list(self.store.external.values())]
        return StoreSnapshot(families, self._cache)

    def collect(self) -> Iterator[Metric]:
        build = GaugeMetricFamily(
            "chatwatch_build_info",
            "chatwatch build information; the value is always 1.",
            labels=["version", "python"],
        )
        build.add_metric([__version__, platform.python_version()], 1)
        yield build
        yield from self.stats.collect()
        for runtime in self._runtime:
            yield from runtime.collect()

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def text(self) -> str:
        """A whole scrape in the text format 0.0.4."""
        return "".join(self.snapshot().write()) + generate_text(_Families(self)).decode()

    def openmetrics(self) -> str:
        """A whole scrape in OpenMetrics 1.0 (ends with `# EOF`)."""
        written = "".join(self.snapshot().write(openmetrics=True))
        return written + generate_openmetrics(_Families(self)).decode()


class _Families(Collector):
    def __init__(self, source: Collector) -> None:
        self._families = list(source.collect())

    def collect(self) -> Iterable[Metric]:
        return self._families


def collector(store: Store, stats: SelfMetrics, runtime: bool = True) -> Exposition:
    """The store's exposition, to put among the server's collectors."""
    return Exposition(store, stats, runtime)
