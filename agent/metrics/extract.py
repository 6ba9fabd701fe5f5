"""Metric definitions compiled into update functions: events in, series updated.

This is the hot path. Each definition becomes one small Python function generated from
its config (field reads, conditions and label reads inlined; no interpretation of the
config per event), and definitions are indexed by an equality/`in` condition, so an event
only visits the definitions that can match it: `{event: http_request}` puts a definition
in the bucket for `event == "http_request"`; definitions with no such condition are
visited by every event.

Pure stage: it takes events, their origin and the clock given to it; it never does I/O.
Values that cannot be used (missing, not a number, negative counter increment, bad event
timestamp) skip the event for that metric and are counted in
`chatwatch_extract_errors_total{metric,reason}`.
"""

from __future__ import annotations

import logging
import re
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson

from agent.decode.events import Event, Origin
from agent.decode.timestamps import event_time, number
from agent.metrics.config import LabelFrom, MetricConfig, parse_replacement
from agent.metrics.store import Family, Store
from agent.support.selfmetrics import SelfCounter, SelfMetrics

log = logging.getLogger("chatwatch.extract")

UpdateFn = Callable[[Event, float, str, str], None]

_RELABEL_CACHE_SIZE = 4096
INLINE_BUCKETS = 8
"""Up to this many values of an index field, buckets are an if/elif chain in the loop."""
_ACTION_CODES = {"inc": 0, "dec": 1, "set": 2, "set_to_event_time": 3}


# -- value conversions (called only off the fast path: when a value is not a str/number) --


def text(value: Any) -> str | None:
    """The text form used to compare values and to make label values; None if missing."""
    cls = value.__class__
    if cls is str:
        return value
    if value is None:
        return None
    if cls is bool:
        return "true" if value else "false"
    if cls is int:
        return str(value)
    if cls is float:
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def label_text(value: Any) -> str:
    """A label value: the text form, empty (no label) when the field is missing."""
    t = text(value)
    return "" if t is None else t


# Text of small ints (status codes, counts), looked up instead of formatted per event.
_INT_TEXT: dict[int, str] = {i: str(i) for i in range(1024)}


def _relabeller(spec: LabelFrom) -> Callable[[Any], str]:
    """Label value from a field value, Prometheus relabel style, with a bounded memo."""
    default = spec.default
    if spec.regex is None:

        def plain(value: Any) -> str:
            t = text(value)
            return default if t is None else t

        return plain
    fullmatch = re.compile(spec.regex).fullmatch
    parts = parse_replacement(spec.replacement)
    cache: dict[str, str] = {}

    def relabel(value: Any) -> str:
        t = value if value.__class__ is str else text(value)
        if t is None:
            return default
        out = cache.get(t)
        if out is not None:
            return out
        m = fullmatch(t)
        if m is None:
            out = default
        else:
            pieces = []
            for is_ref, part in parts:
                # Group references were checked against the regex at load.
                pieces.append((m.group(part) or "") if is_ref else str(part))
            out = "".join(pieces)
        if len(cache) >= _RELABEL_CACHE_SIZE:
            cache.clear()
        cache[t] = out
        return out

    return relabel


# -- code generation --------------------------------------------------------------------
#
# Each definition becomes a block of straight-line code that leaves early with `break`
# (the block sits in `while True: ... break`, which costs nothing in CPython 3.11). Blocks
# of the definitions in one index bucket are fused into one function, so an event costs
# one index lookup and one call however many definitions it feeds, and a field several
# of them read is read once.


class _Gen:
    """Accumulates the source of one generated function and the names it refers to."""

    def __init__(self, env: dict[str, Any] | None = None) -> None:
        self.lines: list[str] = []
        self.env: dict[str, Any] = env if env is not None else {}
        self.env.setdefault("text", text)
        self.env.setdefault("label_text", label_text)
        self.env.setdefault("_ints", _INT_TEXT)
        self.env.setdefault("bisect_left", bisect_left)
        self.env.setdefault("_number", number)
        self.env.setdefault("event_time", event_time)
        self.shared: dict[str, str] = {}
        self.shared_labels: dict[str, str] = {}
        self.indent = 1

    def const(self, value: Any, hint: str = "c") -> str:
        name = f"_{hint}{len(self.env)}"
        self.env[name] = value
        return name

    def var(self, hint: str = "v") -> str:
        self.env.setdefault("#vars", [0])
        counter = self.env["#vars"]
        counter[0] += 1
        return f"{hint}{counter[0]}"

    def emit(self, line: str, extra: int = 0) -> None:
        self.lines.append("    " * (self.indent + extra) + line)

    def read(self, path: str) -> str:
        """Emit an unconditional read of a field path; returns the variable holding it."""
        var = self.var("f")
        self.emit(f"{var} = e.get({path!r})")
        if "." in path:
            # A flat key containing the dots first (`"usage.total": 3`), then the nesting.
            head, *rest = path.split(".")
            self.emit(f"if {var} is None:")
            self.emit(f"{var} = e.get({head!r})", 1)
            for part in rest:
                self.emit(f"{var} = {var}.get({part!r}) if {var}.__class__ is dict else None", 1)
        return var

    def get(self, path: str) -> str:
        """A variable the caller may overwrite, holding the field's raw value."""
        shared = self.shared.get(path)
        if shared is None:
            return self.read(path)
        var = self.var("f")
        self.emit(f"{var} = {shared}")
        return var

    def text_of(self, path: str) -> str:
        var = self.get(path)
        self.emit(f"if {var}.__class__ is not str:")
        self.emit(
            f"{var} = (_ints.get({var}) if {var}.__class__ is int else None) or text({var})", 1
        )
        return var

    def label_of(self, path: str) -> str:
        """A variable holding the field's value as a label value (text, '' if missing)."""
        shared = self.shared_labels.get(path)
        if shared is not None:
            return shared
        var = self.get(path)
        self.emit(f"if {var}.__class__ is not str:")
        self.emit(
            f"{var} = (_ints.get({var}) if {var}.__class__ is int else None) or label_text({var})",
            1,
        )
        return var

    def hoist(self, paths: Counter[str], labels: Counter[str] | None = None) -> None:
        """Read once, up front, every path (and label value) more than one block reads."""
        for path, n in sorted(paths.items()):
            if n > 1 and path not in self.shared:
                self.shared[path] = self.read(path)
        for path, n in sorted((labels or Counter()).items()):
            if n > 1 and path not in self.shared_labels:
                self.shared_labels[path] = self.label_of(path)

    def compile(self, name: str, args: str, filename: str) -> tuple[Any, str]:
        src = f"def {name}({args}):\n" + "\n".join(self.lines) + "\n"
        namespace = {k: v for k, v in self.env.items() if not k.startswith("#")}
        exec(compile(src, filename, "exec"), namespace)
        return namespace[name], src


def _scalar_text(value: Any) -> str:
    t = text(value)
    return "null" if t is None else t


def _index_values(cfg: MetricConfig) -> dict[str, set[str]]:
    """Conditions usable as an index: field path -> the text values it must equal."""
    out: dict[str, set[str]] = {}
    for path, cond in cfg.match.items():
        if not isinstance(cond, dict):
            if cond is not None:
                out[path] = {_scalar_text(cond)}
        elif set(cond) == {"in"} and None not in cond["in"]:
            out[path] = {_scalar_text(v) for v in cond["in"]}
    field = cfg.resolved_action_field
    if field is not None and field not in out and isinstance(cfg.action, dict):
        out[field] = set(cfg.action)
    return out


class CompiledMetric:
    """One definition, as a block of generated code, and the index entry chosen for it."""

    def __init__(
        self,
        cfg: MetricConfig,
        family: Family,
        errors: SelfCounter,
        index_field: str | None,
        index_values: set[str],
    ) -> None:
        self.cfg = cfg
        self.family = family
        self.index_field = index_field
        self.index_values = index_values
        self._errors = errors
        self._warned = False

    def paths(self) -> Counter[str]:
        """Field paths the block reads (to hoist the ones several blocks share)."""
        cfg = self.cfg
        out: Counter[str] = Counter()
        for path, cond in cfg.match.items():
            if not self._indexed(path, cond):
                out[path] += 1
        if cfg.resolved_action_field:
            out[cfg.resolved_action_field] += 1
        for p in (cfg.value, cfg.timestamp_field):
            if p:
                out[p] += 1
        for spec in cfg.labels.values():
            out[spec if isinstance(spec, str) else spec.field] += 1
        return out

    def label_paths(self) -> Counter[str]:
        """Field paths used as plain labels (their text value can be shared too)."""
        return Counter(spec for spec in self.cfg.labels.values() if isinstance(spec, str))

    def _indexed(self, path: str, cond: Any) -> bool:
        return path == self.index_field and (
            (not isinstance(cond, dict) and cond is not None) or set(cond or {}) == {"in"}
        )

    # Called from generated code only when something is wrong.

    def err(self, reason: str) -> None:
        self._errors.inc((self.cfg.name, reason))

    def num(self, value: Any) -> float | None:
        if value is None:
            self._errors.inc((self.cfg.name, "missing_value"))
            return None
        f = number(value)
        if f is None:
            self._errors.inc((self.cfg.name, "not_a_number"))
        return f

    def internal(self, exc: Exception) -> None:
        self._errors.inc((self.cfg.name, "internal"))
        if not self._warned:
            self._warned = True
            log.error("metric %s: unexpected error (reported once)", self.cfg.name, exc_info=exc)

    # -- code --------------------------------------------------------------------------

    def emit(self, g: _Gen) -> None:
        """Emit this definition's block into `g` (inside a function of `e`, `now`, origin)."""
        fam = self.family
        self.names = {
            "series": g.const(fam.series, "series"),
            "touched": g.const(fam.touched, "touched"),
            "admit": g.const(fam.admit, "admit"),
            "err": g.const(self.err, "err"),
            "num": g.const(self.num, "num"),
            "internal": g.const(self.internal, "internal"),
        }
        g.emit(f"# {self.cfg.name}")
        g.emit("while True:")
        g.emit("try:", 1)
        g.indent += 2
        self._emit_body(g)
        g.indent -= 2
        g.emit("except Exception as exc:", 1)
        g.emit(f"{self.names['internal']}(exc)", 2)
        g.emit("break", 1)

    def _emit_body(self, g: _Gen) -> None:
        cfg, n = self.cfg, self.names
        for path, cond in cfg.match.items():
            if not self._indexed(path, cond):
                self._emit_condition(g, path, cond)
        # Gauge action picked by a field's value.
        action_var: str | None = None
        actions: set[str] = set()
        if isinstance(cfg.action, dict):
            field = cfg.resolved_action_field
            assert field is not None
            amap = g.const({k: _ACTION_CODES[v] for k, v in cfg.action.items()}, "amap")
            var = g.text_of(field)
            action_var = g.var("a")
            g.emit(f"{action_var} = {amap}.get({var})")
            g.emit(f"if {action_var} is None: break")
            actions = set(cfg.action.values())
        elif isinstance(cfg.action, str):
            actions = {cfg.action}
        elif cfg.type == "gauge":
            actions = {"set"}
        # Value.
        x: str | None = None
        if cfg.value is not None:
            x = g.get(cfg.value)
            g.emit(f"if {x}.__class__ is not int and {x}.__class__ is not float:")
            g.emit(f"{x} = {n['num']}({x})", 1)
            g.emit(f"if {x} is None: break", 1)
            if cfg.scale != 1.0:
                g.emit(f"{x} = {x} * {cfg.scale!r}")
            if cfg.type == "counter":
                g.emit(f"if {x} < 0:")
                g.emit(f"{n['err']}('negative_value')", 1)
                g.emit("break", 1)
        # Event time, for set_to_event_time.
        ts: str | None = None
        if "set_to_event_time" in actions:
            if cfg.timestamp_field is not None:
                raw = g.get(cfg.timestamp_field)
                why = f"'missing_timestamp' if {raw} is None else 'bad_timestamp'"
                ts = g.var("t")
                extra = 0
                if action_var is not None:
                    g.emit(f"{ts} = None")
                    g.emit(f"if {action_var} == 3:")
                    extra = 1
                g.emit(f"{ts} = event_time({raw})", extra)
                g.emit(f"if {ts} is None:", extra)
                g.emit(f"{n['err']}({why})", extra + 1)
                g.emit("break", extra + 1)
            else:
                ts = "now"
        # Labels, in the family's (sorted) label order.
        values = [self._emit_label(g, name) for name in self.family.labelnames]
        g.emit("k = (" + "".join(f"{v}, " for v in values) + ")")
        self._emit_update(g, actions, action_var, x, ts)
        if self.family.touched is not None:
            g.emit(f"{n['touched']}[k] = now")

    def _emit_condition(self, g: _Gen, path: str, cond: Any) -> None:
        if not isinstance(cond, dict):
            cond = {"exists": False} if cond is None else {"in": [cond]}
        var = g.text_of(path)
        for op, arg in cond.items():
            if op == "in":
                wanted = frozenset(_scalar_text(v) for v in arg if v is not None)
                also_missing = f" and {var} is not None" if None in arg else ""
                if len(wanted) == 1:
                    g.emit(f"if {var} != {next(iter(wanted))!r}{also_missing}: break")
                else:
                    g.emit(f"if {var} not in {g.const(wanted, 'set')}{also_missing}: break")
            elif op == "not":
                items = arg if isinstance(arg, list) else [arg]
                unwanted = frozenset(_scalar_text(v) for v in items if v is not None)
                or_missing = f" or {var} is None" if None in items else ""
                g.emit(f"if {var} in {g.const(unwanted, 'set')}{or_missing}: break")
            elif op == "regex":
                fm = g.const(re.compile(arg).fullmatch, "re")
                g.emit(f"if {var} is None or {fm}({var}) is None: break")
            elif op == "exists":
                g.emit(f"if {var} is {'None' if arg else 'not None'}: break")
            else:
                sym = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
                num = g.var("n")
                g.emit(f"{num} = _number({var})")
                g.emit(f"if {num} is None or not ({num} {sym} {float(arg)!r}): break")

    def _emit_label(self, g: _Gen, name: str) -> str:
        cfg = self.cfg
        if name in cfg.origin_labels and name not in cfg.labels:
            return "o_source" if name == "source" else "o_path"
        spec = cfg.labels[name]
        if isinstance(spec, str):
            return g.label_of(spec)
        var = g.get(spec.field)
        if spec.required:
            g.emit(f"if {var} is None:")
            g.emit(f"{self.names['err']}('missing_label')", 1)
            g.emit("break", 1)
        g.emit(f"{var} = {g.const(_relabeller(spec), 'relabel')}({var})")
        return var

    def _emit_update(
        self, g: _Gen, actions: set[str], action_var: str | None, x: str | None, ts: str | None
    ) -> None:
        cfg, n = self.cfg, self.names
        series, admit = n["series"], n["admit"]
        # Each series is a list (a mutable cell): one dict lookup per update, no store.
        width = len(self.family.bounds) + 2 if cfg.type == "histogram" else 1
        g.emit(f"c = {g.const(self.family.series.get, 'get')}(k)")
        g.emit("if c is None:")
        g.emit(f"if not {admit}(k, now): break", 1)
        g.emit(f"c = {series}[k] = [0.0] * {width}", 1)
        if cfg.type == "counter":
            g.emit(f"c[0] += {x or '1.0'}")
            return
        if cfg.type == "histogram":
            assert x is not None
            bounds = g.const(self.family.bounds, "bounds")
            g.emit(f"c[bisect_left({bounds}, {x})] += 1.0")
            g.emit(f"c[-1] += {x}")
            return
        amount = x or "1.0"
        stmts = {
            "inc": f"c[0] += {amount}",
            "dec": f"c[0] -= {amount}",
            "set": f"c[0] = {x}",
            "set_to_event_time": f"c[0] = {ts}",
        }
        if action_var is None:
            (action,) = actions
            g.emit(stmts[action])
            return
        for i, action in enumerate(sorted(actions, key=_ACTION_CODES.__getitem__)):
            g.emit(f"{'if' if i == 0 else 'elif'} {action_var} == {_ACTION_CODES[action]}:")
            g.emit(stmts[action], 1)


def labelnames_of(cfg: MetricConfig) -> tuple[str, ...]:
    """The label names whose values come from each event (fields and origin), sorted."""
    return tuple(sorted({*cfg.labels, *cfg.origin_labels}))


def _choose_index(metrics: list[MetricConfig]) -> list[tuple[str | None, set[str]]]:
    """Per definition, the field to index it by: the candidate most definitions share."""
    candidates = [_index_values(m) for m in metrics]
    popularity = Counter(f for c in candidates for f in c)
    chosen: list[tuple[str | None, set[str]]] = []
    for cand in candidates:
        if not cand:
            chosen.append((None, set()))
            continue
        field = max(cand, key=lambda f: (popularity[f], -len(cand[f]), f))
        chosen.append((field, cand[field]))
    return chosen


Runner = Callable[[list[Event], float, str, str], None]


class Extractor:
    """A Sink: updates the store from events, through the compiled definitions."""

    def __init__(
        self,
        metrics: list[MetricConfig],
        store: Store,
        stats: SelfMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self.errors = stats.counter(
            "chatwatch_extract_errors_total",
            "Events skipped for a metric because a value could not be used, by reason.",
            ("metric", "reason"),
        )
        store.attach(stats)  # no-op when the store was given the same registry already
        self.compiled: list[CompiledMetric] = []
        for cfg, (field, values) in zip(metrics, _choose_index(metrics), strict=True):
            family = store.define(cfg, labelnames_of(cfg), now=clock())
            self.compiled.append(CompiledMetric(cfg, family, self.errors, field, values))
        store.retain(m.name for m in metrics)
        self.sources: list[str] = []
        self._run: Runner = self._compile()

    def _compile(self) -> Runner:
        env: dict[str, Any] = {}
        buckets: dict[str, dict[str, list[CompiledMetric]]] = {}
        always: list[CompiledMetric] = []
        for cm in self.compiled:
            if cm.index_field is None:
                always.append(cm)
                continue
            table = buckets.setdefault(cm.index_field, {})
            for v in sorted(cm.index_values):
                table.setdefault(v, []).append(cm)
        # The loop over the batch. Per index field, the event's value picks its bucket:
        # a short if/elif chain inlined in the loop when the field has few values, else a
        # dict of fused functions (one call). Then the always-visited blocks, inline.
        g = _Gen(env)
        g.emit("for e in events:")
        g.indent = 2
        reads: Counter[str] = Counter(dict.fromkeys(buckets, 2))
        label_reads: Counter[str] = Counter()
        for m in always:
            reads.update(m.paths())
            label_reads.update(m.label_paths())
        g.hoist(reads, label_reads)
        for field, table in buckets.items():
            key = g.var("key")
            g.emit(f"{key} = {g.shared[field]}")
            g.emit(f"if {key}.__class__ is not str: {key} = text({key})")
            if len(table) <= INLINE_BUCKETS:
                for i, (value, members) in enumerate(table.items()):
                    g.emit(f"{'if' if i == 0 else 'elif'} {key} == {value!r}:")
                    g.indent += 1
                    self._emit_bucket(g, members)
                    g.indent -= 1
                continue
            functions = {}
            for value, members in table.items():
                fg = _Gen(env)
                self._emit_bucket(fg, members)
                args = "e, now, o_source, o_path"
                fn, src = fg.compile("bucket", args, f"<bucket {field}={value}>")
                self.sources.append(src)
                functions[value] = fn
            fn_var = g.var("fn")
            g.emit(f"{fn_var} = {g.const(functions, 'index')}.get({key})")
            g.emit(f"if {fn_var} is not None: {fn_var}(e, now, o_source, o_path)")
        for m in always:
            m.emit(g)
        if not buckets and not always:
            g.emit("pass")
        g.indent = 1
        run, src = g.compile("run", "events, now, o_source, o_path", "<extractor>")
        self.sources.append(src)
        return run

    @staticmethod
    def _emit_bucket(g: _Gen, members: list[CompiledMetric]) -> None:
        """The blocks of one bucket, sharing the reads several of them make."""
        saved = dict(g.shared), dict(g.shared_labels)
        g.hoist(
            sum((m.paths() for m in members), Counter()),
            sum((m.label_paths() for m in members), Counter()),
        )
        for m in members:
            m.emit(g)
        g.shared, g.shared_labels = saved

    def __call__(self, origin: Origin, events: list[Event]) -> None:
        if events:
            self._run(events, self._clock(), origin.source, origin.path)
