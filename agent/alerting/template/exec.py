"""Alert label and annotation templates: the subset of Go text/template Prometheus offers.

Rule authors paste annotations written for Prometheus, so the syntax and the output must
be Prometheus' own: `{{ $labels.route }}`, `{{ .Value }}`, pipelines such as
`{{ $value | humanize }}`, `printf`, `if`/`else`/`end`, `with`, `range` over `$labels`,
comparisons (`gt $value 10.0`), and the humanize functions with Go's exact number
formatting (`%.4g`, `+Inf`, `1e+06`).

Templates are parsed when rules load (parse.py), and everything certain to fail is a
`TemplateError` then. This module renders the parse tree for one alert, as Go's exec.go
does, calling the functions of funcs.py. What can only fail with real data
(`humanize "abc"`) renders, as in Prometheus, as `<error expanding template: ...>`
instead of an empty message.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from agent.alerting.template.funcs import FUNCS, MISSING, GoInt, truth
from agent.alerting.template.parse import (
    DATA_FIELDS,
    Action,
    Command,
    Control,
    Node,
    ParseError,
    Pipe,
    Term,
    Text,
    parse,
)
from agent.support.goformat import go_print, go_type

__all__ = ["Template", "TemplateError"]


class TemplateError(ValueError):
    """A template that cannot be parsed, or an error while rendering one."""


class _AlertData:
    """The `.` of an alert template, as Prometheus' template.AlertTemplateData."""

    __slots__ = ("ExternalLabels", "ExternalURL", "Labels", "Value")
    go_type = "template.Data"

    def __init__(
        self, labels: Mapping[str, str], external_labels: Mapping[str, str], url: str, value: float
    ):
        self.Labels = labels
        self.ExternalLabels = external_labels
        self.ExternalURL = url
        self.Value = value

    def __str__(self) -> str:
        """Go's `%v` of the struct: `{map[...] map[...] url value}`."""
        parts = [self.Labels, self.ExternalLabels, self.ExternalURL, self.Value]
        return "{" + " ".join(go_print(p) for p in parts) + "}"


class _Exec:
    def __init__(self, data: _AlertData) -> None:
        self.data = data
        self.vars: list[dict[str, Any]] = [
            {
                "$": data,
                "$labels": data.Labels,
                "$externalLabels": data.ExternalLabels,
                "$externalURL": data.ExternalURL,
                "$value": data.Value,
            }
        ]

    def run(self, nodes: list[Node], dot: Any, out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, Text):
                out.append(node.text)
            elif isinstance(node, Action):
                value = self.pipe(node.pipe, dot)
                if not node.pipe.decl:
                    out.append(go_print(value))
            else:
                self.control(node, dot, out)

    def control(self, node: Control, dot: Any, out: list[str]) -> None:
        self.vars.append({})
        try:
            if node.kind == "range":
                self.range(node, dot, out)
                return
            value = self.pipe(node.pipe, dot)
            if truth(value):
                self.run(node.body, value if node.kind == "with" else dot, out)
            else:
                self.run(node.else_body, dot, out)
        finally:
            self.vars.pop()

    def range(self, node: Control, dot: Any, out: list[str]) -> None:
        pipe = node.pipe
        value = self.pipe(Pipe([], False, pipe.cmds), dot)
        items: list[tuple[Any, Any]]
        if isinstance(value, Mapping):
            items = [(k, value[k]) for k in sorted(value)]
        elif isinstance(value, list | tuple):
            items = [(GoInt(i), v) for i, v in enumerate(value)]
        elif isinstance(value, int) and not isinstance(value, bool):
            items = [(GoInt(i), GoInt(i)) for i in range(int(value))]
        elif value is MISSING or value is None:
            items = []
        else:
            raise TemplateError(f"range can't iterate over {go_print(value)}")
        if not items:
            self.run(node.else_body, dot, out)
            return
        for key, elem in items:
            if len(pipe.decl) == 1:
                self._set(pipe.decl[0], elem, pipe.assign)
            elif len(pipe.decl) == 2:
                self._set(pipe.decl[0], key, pipe.assign)
                self._set(pipe.decl[1], elem, pipe.assign)
            self.run(node.body, elem, out)

    def _set(self, name: str, value: Any, assign: bool) -> None:
        if assign:
            for scope in reversed(self.vars):
                if name in scope:
                    scope[name] = value
                    return
        self.vars[-1][name] = value

    def pipe(self, pipe: Pipe, dot: Any) -> Any:
        value: Any = MISSING
        for n, cmd in enumerate(pipe.cmds):
            value = self.command(cmd, dot, value, n > 0)
        for name in pipe.decl:
            self._set(name, value, pipe.assign)
        return value

    def command(self, cmd: Command, dot: Any, final: Any, piped: bool) -> Any:
        first = cmd.args[0]
        if first.kind != "func":
            return self.term(first, dot)
        name = first.name
        if name == "externalURL":
            return self.data.ExternalURL
        if name == "pathPrefix":
            return urllib.parse.urlsplit(self.data.ExternalURL).path
        arg_terms = cmd.args[1:]
        if name in ("and", "or"):
            # Go 1.18+ stops at the first argument that decides the result
            result: Any = MISSING
            for k in range(len(arg_terms) + (1 if piped else 0)):
                result = self.term(arg_terms[k], dot) if k < len(arg_terms) else final
                if (name == "and") != truth(result):
                    return result
            return result
        args = [self.term(t, dot) for t in arg_terms]
        if piped:
            args.append(final)
        return _call(name, args)

    def term(self, term: Term, dot: Any) -> Any:
        if term.kind == "literal":
            return term.value
        if term.kind == "dot":
            return dot
        if term.kind == "field":
            return _fields(dot, term.chain)
        if term.kind == "var":
            for scope in reversed(self.vars):
                if term.name in scope:
                    return _fields(scope[term.name], term.chain)
            raise TemplateError(f"undefined variable {term.name}")
        if term.kind == "func":
            return self.command(Command([term]), dot, MISSING, False)
        assert term.pipe is not None
        return _fields(self.pipe(term.pipe, dot), term.chain)


def _call(name: str, args: list[Any]) -> Any:
    """Call template function `name` with evaluated arguments, with Go's type checks."""
    fn = FUNCS[name]
    for k, ptype in enumerate(fn.params):
        if ptype == "string" and not isinstance(args[k], str):
            if args[k] is MISSING:
                raise TemplateError(f"error calling {name}: invalid value; expected string")
            raise TemplateError(f"wrong type for value; expected string; got {go_type(args[k])}")
    if name == "printf":
        args = [a if a is not MISSING else None for a in args]
    try:
        return fn.call(*args)
    except (ValueError, TypeError, OverflowError) as exc:
        raise TemplateError(f"error calling {name}: {exc}") from None


def _fields(value: Any, chain: Sequence[str]) -> Any:
    for name in chain:
        if isinstance(value, _AlertData):
            if name not in DATA_FIELDS:
                raise TemplateError(f"can't evaluate field {name} in type template.Data")
            value = getattr(value, name)
        elif isinstance(value, Mapping):
            # Prometheus expands alert templates with missingkey=zero: an absent
            # label is "", not "<no value>"
            value = value.get(name, "")
        elif value is MISSING or value is None:
            raise TemplateError(f"nil pointer evaluating {name}")
        else:
            raise TemplateError(f"can't evaluate field {name} in type {go_type(value)}")
    return value


class Template:
    """A parsed alert template. Parsing raises TemplateError; rendering returns text."""

    __slots__ = ("_nodes", "_static_text", "is_static", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            self._nodes = parse(text)
        except ParseError as exc:
            raise TemplateError(str(exc)) from None
        self.is_static = all(isinstance(n, Text) for n in self._nodes)
        self._static_text = "".join(n.text for n in self._nodes if isinstance(n, Text))

    def render(
        self,
        labels: Mapping[str, str],
        value: float,
        external_labels: Mapping[str, str] | None = None,
        external_url: str = "",
    ) -> str:
        """Render for one alert; raises TemplateError when the data makes it fail."""
        if self.is_static:
            return self._static_text
        data = _AlertData(labels, external_labels or {}, external_url, float(value))
        out: list[str] = []
        _Exec(data).run(self._nodes, data, out)
        return "".join(out)

    def expand(
        self,
        labels: Mapping[str, str],
        value: float,
        external_labels: Mapping[str, str] | None = None,
        external_url: str = "",
    ) -> str:
        """Render as Prometheus does: a failure becomes `<error expanding template: ...>`."""
        try:
            return self.render(labels, value, external_labels, external_url)
        except TemplateError as exc:
            return f"<error expanding template: {exc}>"
