"""Rendering templates: Prometheus' alert templates, and the engine under Alertmanager's
notification templates (agent/notify/template.py).

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

`Exec` is the interpreter, shared by both dialects: notification templates give it their
functions, their `{{ define }}`d templates and their data, whose values answer field and
method lookups through `GoValue.go_get` (Go's reflection, in the few shapes they need).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agent.alerting.template.funcs import FUNCS, MISSING, Func, GoInt, GoValue, SafeHTML, truth
from agent.alerting.template.parse import (
    DATA_FIELDS,
    Action,
    Command,
    Control,
    Node,
    ParseError,
    Pipe,
    TemplateCall,
    Term,
    Text,
    parse,
)
from agent.support.goformat import go_print, go_type

__all__ = ["Exec", "Template", "TemplateError"]

MAX_DEPTH = 100
"""Nested `{{ template }}` calls before rendering stops (Go allows 100000; a template
that calls itself is a mistake long before that)."""


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


class Exec:
    """One rendering: the variables in scope, the functions and the defined templates.

    `escape`, when given, is applied to what every `{{ action }}` prints (html/template's
    escaping of interpolated values), except to a `safeHtml` value; it is given the output
    so far, to see the context (an `href="` just before); `text_filter` to the
    template's own text (html/template drops HTML comments there). `data_funcs` are
    functions whose result comes from the rendering itself (`externalURL`, `since`).
    """

    def __init__(
        self,
        variables: dict[str, Any],
        funcs: Mapping[str, Func] = FUNCS,
        defines: Mapping[str, list[Node]] | None = None,
        data_funcs: Mapping[str, Callable[..., Any]] | None = None,
        escape: Callable[[str, list[str]], str] | None = None,
        text_filter: Callable[[str], str] | None = None,
    ) -> None:
        self.vars: list[dict[str, Any]] = [variables]
        self.text_filter = text_filter
        self.funcs = funcs
        self.defines = defines or {}
        self.data_funcs = data_funcs or {}
        self.escape = escape
        self.depth = 0

    def run(self, nodes: list[Node], dot: Any, out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, Text):
                out.append(node.text if self.text_filter is None else self.text_filter(node.text))
            elif isinstance(node, Action):
                value = self.pipe(node.pipe, dot)
                if not node.pipe.decl:
                    text = go_print(value)
                    if self.escape is not None and not isinstance(value, SafeHTML):
                        text = self.escape(text, out)
                    out.append(text)
            elif isinstance(node, TemplateCall):
                self.call_template(node, dot, out)
            else:
                self.control(node, dot, out)

    def call_template(self, node: TemplateCall, dot: Any, out: list[str]) -> None:
        body = self.defines.get(node.name)
        if body is None:
            raise TemplateError(f'template "{node.name}" not defined')
        value = self.pipe(node.pipe, dot) if node.pipe is not None else None
        if self.depth >= MAX_DEPTH:
            raise TemplateError(f'exceeded maximum template depth ({MAX_DEPTH}) in "{node.name}"')
        saved = self.vars
        self.vars = [{"$": value}]
        self.depth += 1
        try:
            self.run(body, value, out)
        finally:
            self.vars = saved
            self.depth -= 1

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
        arg_terms = cmd.args[1:]
        if first.kind != "func":
            if len(cmd.args) == 1 and not piped:
                return self.term(first, dot)
            # a method called with arguments: `.CommonLabels.Remove .GroupLabels.Names`
            args = [self.term(t, dot) for t in arg_terms]
            if piped:
                args.append(final)
            return self.term(first, dot, args)
        name = first.name
        if name in self.data_funcs:
            args = [self.term(t, dot) for t in arg_terms]
            if piped:
                args.append(final)
            try:
                return self.data_funcs[name](*args)
            except (ValueError, TypeError, OverflowError) as exc:
                raise TemplateError(f"error calling {name}: {exc}") from None
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
        return _call(self.funcs, name, args)

    def term(self, term: Term, dot: Any, args: list[Any] | None = None) -> Any:
        if args is not None and not term.chain:
            raise TemplateError(f"can't give argument to non-function {go_print(term.value)}")
        if term.kind == "literal":
            return term.value
        if term.kind == "dot":
            return dot
        if term.kind == "field":
            return _fields(dot, term.chain, args)
        if term.kind == "var":
            for scope in reversed(self.vars):
                if term.name in scope:
                    return _fields(scope[term.name], term.chain, args)
            raise TemplateError(f"undefined variable {term.name}")
        if term.kind == "func":
            return self.command(Command([term]), dot, MISSING, False)
        assert term.pipe is not None
        return _fields(self.pipe(term.pipe, dot), term.chain, args)


def _call(funcs: Mapping[str, Func], name: str, args: list[Any]) -> Any:
    """Call template function `name` with evaluated arguments, with Go's type checks."""
    fn = funcs[name]
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


def _fields(value: Any, chain: Sequence[str], args: list[Any] | None = None) -> Any:
    for n, name in enumerate(chain):
        if isinstance(value, GoValue):
            # a method of the data: given the command's arguments when it ends the chain
            call_args = args if args is not None and n == len(chain) - 1 else []
            try:
                value = value.go_get(name, call_args)
            except (ValueError, TypeError) as exc:
                raise TemplateError(str(exc)) from None
            continue
        if args is not None and n == len(chain) - 1:
            raise TemplateError(f"can't give argument to non-function .{name}")
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
        variables = {
            "$": data,
            "$labels": data.Labels,
            "$externalLabels": data.ExternalLabels,
            "$externalURL": data.ExternalURL,
            "$value": data.Value,
        }
        data_funcs = {
            "externalURL": lambda: data.ExternalURL,
            "pathPrefix": lambda: urllib.parse.urlsplit(data.ExternalURL).path,
        }
        out: list[str] = []
        Exec(variables, FUNCS, data_funcs=data_funcs).run(self._nodes, data, out)
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
