"""Parsing templates: the lexer, the parse tree and the checks made at load time.

As Go's text/template/parse, for two dialects (`Dialect`): Prometheus' alert templates
(`PROMETHEUS`, the default) and Alertmanager's notification templates, which add
`{{ define }}`, `{{ template }}` and `{{ block }}` and call methods with arguments
(`.CommonLabels.Remove .GroupLabels.Names`); agent/notify/template.py defines that one.
Everything Go rejects at parse time (syntax, an unknown function, an undefined variable)
is a ParseError, and so are a few things Go would only find while rendering but that are
certain from the text alone: a field `.Foo` the data does not have, a wrong number of
arguments, a number given where a function wants a string, or a comparison of `$value`
(a float) with an integer literal (`gt $value 10` fails in Go; write `10.0`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.alerting.template.funcs import DATA_FUNCS, FUNCS, UNSUPPORTED, Func, GoInt
from agent.support.goformat import go_print

__all__ = [
    "DATA_FIELDS",
    "PREDEFINED",
    "PROMETHEUS",
    "Action",
    "Command",
    "Control",
    "Dialect",
    "Node",
    "ParseError",
    "Pipe",
    "TemplateCall",
    "Term",
    "Text",
    "parse",
    "parse_templates",
]


class ParseError(ValueError):
    """A template that cannot be parsed, or that is certain to fail whatever the data."""


# ---------------------------------------------------------------------------------------
# Lexer


@dataclass(slots=True)
class _Tok:
    kind: str  # field var dot ident string number bool nil pipe lparen rparen declare assign comma
    text: str
    value: Any
    space_before: bool
    pos: int


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<pipe>\|)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)+')
  | (?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)
                   (?:[eE][+-]?\d+)?)(?![\w.]))
  | (?P<var>\$\w*(?:\.\w+)*)
  | (?P<field>(?:\.\w+)+)
  | (?P<dot>\.)
  | (?P<ident>[A-Za-z_]\w*)
    """,
    re.X,
)

_GO_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
}


def _unquote(s: str) -> str:
    """Go's strconv.Unquote of a "..." or '...' literal; a malformed escape (`\\x` without
    two hex digits, `\\'` inside double quotes, a surrogate `\\ud800`...) is Go's
    "invalid syntax", reported as a ParseError like every other template error."""
    quote, body = s[0], s[1:-1]
    out = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < len(body) else ""
        width = {"x": 2, "u": 4, "U": 8}.get(nxt, 0)
        if nxt in _GO_ESCAPES and (nxt not in "'\"" or nxt == quote):
            out.append(_GO_ESCAPES[nxt])
            i += 2
        elif width:
            digits = body[i + 2 : i + 2 + width]
            if len(digits) != width or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise ParseError(f"invalid syntax: malformed escape sequence \\{nxt} in {s}")
            code = int(digits, 16)
            if nxt != "x" and (code > 0x10FFFF or 0xD800 <= code <= 0xDFFF):
                raise ParseError(f"invalid syntax: escape sequence is invalid Unicode in {s}")
            out.append(chr(code))
            i += 2 + width
        elif nxt and nxt in "01234567":
            digits = body[i + 1 : i + 4]
            if len(digits) != 3 or any(c not in "01234567" for c in digits) or int(digits, 8) > 255:
                raise ParseError(f"invalid syntax: malformed octal escape in {s}")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise ParseError(f"invalid syntax: unknown escape sequence \\{nxt} in {s}")
    return "".join(out)


def _number(text: str) -> Any:
    clean = text.replace("_", "")
    if re.fullmatch(r"[+-]?0[xX][0-9a-fA-F]+", clean):
        return GoInt(int(clean, 16))
    if any(c in clean for c in ".eE"):
        return float(clean)
    if re.fullmatch(r"[+-]?0[0-7]+", clean):
        return GoInt(int(clean, 8))
    return GoInt(int(clean))


def _lex_action(text: str, offset: int) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    space = False
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            ch = text[pos]
            raise ParseError(f"unrecognized character in action: {ch!r} (U+{ord(ch):04X})")
        kind = m.lastgroup
        assert kind is not None
        tok = m.group(0)
        pos = m.end()
        if kind == "ws":
            space = True
            continue
        value: Any = tok
        if kind == "string":
            value = _unquote(tok)
        elif kind == "raw":
            kind, value = "string", tok[1:-1]
        elif kind == "char":
            char = _unquote(tok)
            if len(char) != 1:
                raise ParseError(f"malformed character constant: {tok}")
            kind, value = "number", GoInt(ord(char))
        elif kind == "number":
            value = _number(tok)
        elif kind == "ident" and tok in ("true", "false"):
            kind, value = "bool", tok == "true"
        elif kind == "ident" and tok == "nil":
            kind, value = "nil", None
        toks.append(_Tok(kind, tok, value, space, offset + m.start()))
        space = False
    return toks


# ---------------------------------------------------------------------------------------
# Parse tree


@dataclass(slots=True)
class Term:
    """One argument of a command: a literal, `.`, `.Field`, `$var.field`, a function name
    or a parenthesized pipeline (`pipe`, followed by fields in `chain`)."""

    kind: str  # literal dot field var func pipe
    value: Any = None
    name: str = ""
    chain: tuple[str, ...] = ()
    pipe: Pipe | None = None
    static: str = "any"
    """Static type when known from the text: int, float, string, bool, map, data, any."""


@dataclass(slots=True)
class Command:
    """A function name with its arguments, or a single value."""

    args: list[Term]


@dataclass(slots=True)
class Pipe:
    """`$x := cmd | cmd ...`: the variables it declares (or assigns) and its commands."""

    decl: list[str]
    assign: bool
    cmds: list[Command]


@dataclass(slots=True)
class Text:
    """Text outside actions, printed as it is."""

    text: str


@dataclass(slots=True)
class Action:
    """`{{ pipeline }}`: printed unless it declares a variable."""

    pipe: Pipe


@dataclass(slots=True)
class Control:
    """`{{ if }}`, `{{ with }}` or `{{ range }}` with its body and its `{{ else }}` body."""

    kind: str  # if with range
    pipe: Pipe
    body: list[Node]
    else_body: list[Node] = field(default_factory=list)


@dataclass(slots=True)
class TemplateCall:
    """`{{ template "name" pipeline }}`: a `{{ define }}`d template run with that dot."""

    name: str
    pipe: Pipe | None


Node = Text | Action | Control | TemplateCall

# The `.` of an alert template (Prometheus' template data) and the variables Prometheus
# defines before the text, with their static types.
DATA_FIELDS = {"Labels": "map", "ExternalLabels": "map", "ExternalURL": "string", "Value": "float"}
PREDEFINED = {
    "$": "data",
    "$labels": "map",
    "$externalLabels": "map",
    "$externalURL": "string",
    "$value": "float",
}


@dataclass(frozen=True)
class Dialect:
    """What a family of templates may use: functions, data, sub-templates.

    `fields` gives, for each static type, its fields and methods with their result types;
    a `"*"` entry makes the type a map (any other name is a key, of that type). A type
    absent from `fields` is not checked. `describe` says what the data has, for errors.
    """

    funcs: Mapping[str, Func]
    data_funcs: Mapping[str, int]
    """Functions the interpreter evaluates from the rendering itself, with their arity."""
    unsupported: Mapping[str, str]
    fields: Mapping[str, Mapping[str, str]]
    predefined: Mapping[str, str]
    dot: str
    sub_templates: bool = False
    """`{{ define }}`, `{{ template }}`, `{{ block }}`, and methods called with arguments."""
    describe: Mapping[str, str] = field(default_factory=dict)


PROMETHEUS = Dialect(
    funcs=FUNCS,
    data_funcs=dict.fromkeys(DATA_FUNCS, 0),
    unsupported=UNSUPPORTED,
    fields={"data": DATA_FIELDS, "map": {"*": "string"}},
    predefined=PREDEFINED,
    dot="data",
    describe={
        "data": "alert templates have .Labels, .ExternalLabels, .ExternalURL, .Value",
    },
)


def parse(text: str, dialect: Dialect = PROMETHEUS) -> list[Node]:
    """The parse tree of a template; ParseError says what is wrong and where."""
    nodes, defines = _Parser(text, dialect).parse_all()
    if defines and not dialect.sub_templates:  # pragma: no cover - refused while parsing
        raise ParseError("{{define}} is not supported by chatwatch")
    return nodes


def parse_templates(text: str, dialect: Dialect) -> tuple[list[Node], dict[str, list[Node]]]:
    """A template file or text: its own nodes and the `{{ define }}`d templates, by name,
    in the order Go's parser adds them (a `{{ block }}` defines one too)."""
    return _Parser(text, dialect).parse_all()


_NOT_STRING = ("int", "float", "bool", "map", "kv", "pairs", "alerts", "list", "ntf", "data")


class _Parser:
    def __init__(self, text: str, dialect: Dialect = PROMETHEUS) -> None:
        self.text = text
        self.dialect = dialect
        self.items = self._split(text)
        self.i = 0
        self.scopes: list[dict[str, str]] = [dict(dialect.predefined)]
        self.dot: list[str] = [dialect.dot]
        self.defines: dict[str, list[Node]] = {}

    # -- splitting text and actions -----------------------------------------------------

    @staticmethod
    def _split(text: str) -> list[tuple[str, str, int]]:
        """[(kind, content, pos)]: kind "text" or "action"; trim markers applied."""
        items: list[tuple[str, str, int]] = []
        pos = 0
        trim_next = False
        while True:
            start = text.find("{{", pos)
            chunk = text[pos:] if start < 0 else text[pos:start]
            if trim_next:
                chunk = chunk.lstrip(" \t\r\n")
            if start < 0:
                if chunk:
                    items.append(("text", chunk, pos))
                return items
            inner_start = start + 2
            trim_left = text.startswith("- ", inner_start) or text.startswith(
                ("-\t", "-\r", "-\n"), inner_start
            )
            if trim_left:
                chunk = chunk.rstrip(" \t\r\n")
                inner_start += 1
            if chunk:
                items.append(("text", chunk, pos))
            body_start = inner_start
            # a comment runs to */ followed by the closing delimiter
            probe = text[body_start:].lstrip(" \t\r\n") if trim_left else text[body_start:]
            if probe.startswith("/*"):
                cstart = text.find("/*", body_start)
                cend = text.find("*/", cstart + 2)
                if cend < 0:
                    raise ParseError(f"{_where(text, start)}: unclosed comment")
                after = cend + 2
                trim_next = False
                if text.startswith((" -}}", "\t-}}", "\r-}}", "\n-}}"), after):
                    after += 1
                    trim_next = True
                if not text.startswith("}}", after) and not text.startswith("-}}", after):
                    raise ParseError(
                        f"{_where(text, start)}: comment ends before closing delimiter"
                    )
                if text.startswith("-}}", after):
                    after += 1
                pos = after + 2
                continue
            end = _find_close(text, body_start)
            if end < 0:
                raise ParseError(f"{_where(text, start)}: unclosed action")
            body = text[body_start:end]
            trim_next = False
            if body.endswith("-") and len(body) >= 2 and body[-2] in " \t\r\n":
                body = body[:-1]
                trim_next = True
            items.append(("action", body, body_start))
            pos = end + 2

    # -- parsing ------------------------------------------------------------------------

    def parse(self) -> list[Node]:
        return self.parse_all()[0]

    def parse_all(self) -> tuple[list[Node], dict[str, list[Node]]]:
        nodes, term = self._list(top=True)
        if term is not None:
            raise ParseError(f"{_where(self.text, term[1])}: unexpected {{{{{term[0]}}}}}")
        return nodes, self.defines

    def _template_name(self, toks: list[_Tok], pos: int, keyword: str) -> str:
        if not toks or toks[0].kind != "string" or toks[0].text.startswith("'"):
            raise ParseError(f"{_where(self.text, pos)}: missing name in {{{{{keyword}}}}}")
        name: str = toks[0].value
        return name

    def _sub_template(self, keyword: str, toks: list[_Tok], pos: int, top: bool) -> Node | None:
        """`define` (returns None: the body goes to `self.defines`), `template`, `block`."""
        where = _where(self.text, pos)
        name = self._template_name(toks, pos, keyword)
        rest = toks[1:]
        if keyword == "template":
            pipe = self._pipeline(rest, pos, allow_decl=False) if rest else None
            return TemplateCall(name, pipe)
        if keyword == "define" and not top:
            raise ParseError(f"{where}: unexpected {{{{define}}}}: not at the top level")
        if keyword == "define" and rest:
            raise ParseError(f"{where}: unexpected {rest[0].text!r} in define clause")
        call_pipe = None
        if keyword == "block":
            if not rest:
                raise ParseError(f"{where}: missing value for block clause")
            call_pipe = self._pipeline(rest, pos, allow_decl=False, context="block clause")
        # a defined template can be run with any data: its dot and $ are not known here
        saved = (self.scopes, self.dot)
        self.scopes, self.dot = [{"$": "any"}], ["any"]
        try:
            body, term = self._list()
        finally:
            self.scopes, self.dot = saved
        assert term is not None
        if term[0] != "end" or term[2]:
            raise ParseError(
                f"{_where(self.text, term[1])}: unexpected {{{{{term[0]}}}}} in {keyword} clause"
            )
        empty = all(isinstance(n, Text) and not n.text.strip() for n in body)
        if not (empty and name in self.defines):  # Go: an empty body replaces nothing
            self.defines[name] = body
        return TemplateCall(name, call_pipe) if keyword == "block" else None

    def _list(self, top: bool = False) -> tuple[list[Node], tuple[str, int, list[_Tok]] | None]:
        """Nodes up to an {{else}} or {{end}}, which is returned with its tokens."""
        nodes: list[Node] = []
        while self.i < len(self.items):
            kind, content, pos = self.items[self.i]
            self.i += 1
            if kind == "text":
                nodes.append(Text(content))
                continue
            try:
                toks = _lex_action(content, pos)
            except ParseError as exc:
                raise ParseError(f"{_where(self.text, pos)}: {exc}") from None
            if not toks:
                raise ParseError(f"{_where(self.text, pos)}: missing value for command")
            head = toks[0]
            if head.kind == "ident" and head.text in ("end", "else"):
                if top:
                    raise ParseError(f"{_where(self.text, pos)}: unexpected {{{{{head.text}}}}}")
                return nodes, (head.text, pos, toks[1:])
            if head.kind == "ident" and head.text in ("if", "with", "range"):
                nodes.append(self._control(head.text, toks[1:], pos))
                continue
            if (
                head.kind == "ident"
                and head.text in ("define", "template", "block")
                and self.dialect.sub_templates
            ):
                node = self._sub_template(head.text, toks[1:], pos, top)
                if node is not None:
                    nodes.append(node)
                continue
            if head.kind == "ident" and head.text in (
                "define",
                "template",
                "block",
                "break",
                "continue",
            ):
                raise ParseError(
                    f"{_where(self.text, pos)}: {{{{{head.text}}}}} is not supported by chatwatch"
                )
            nodes.append(Action(self._pipeline(toks, pos, allow_decl=True)))
        if not top:
            raise ParseError(f"{_where(self.text, len(self.text))}: unexpected EOF")
        return nodes, None

    def _control(self, kind: str, toks: list[_Tok], pos: int) -> Control:
        self.scopes.append({})
        pipe = self._pipeline(toks, pos, allow_decl=True, range_decl=kind == "range", context=kind)
        dot_type = "any"
        if kind == "with" and pipe.cmds:
            dot_type = self._static(pipe)
        elif kind == "if":
            dot_type = self.dot[-1]
        self.dot.append(dot_type)
        body, term = self._list()
        self.dot.pop()
        node = Control(kind, pipe, body)
        assert term is not None
        self.scopes.pop()
        word, tpos, rest = term
        if word == "else":
            if rest and rest[0].kind == "ident" and rest[0].text in ("if", "with"):
                # {{else if ...}} is {{else}}{{if ...}}...{{end}} sharing the outer {{end}}
                inner = self._control_chain(rest[0].text, rest[1:], tpos)
                node.else_body = [inner]
                return node
            if rest:
                raise ParseError(f"{_where(self.text, tpos)}: unexpected {rest[0].text!r} in else")
            self.scopes.append({})
            self.dot.append(self.dot[-1])
            else_body, term2 = self._list()
            self.dot.pop()
            self.scopes.pop()
            assert term2 is not None
            if term2[0] != "end":
                raise ParseError(
                    f"{_where(self.text, term2[1])}: expected end; found {{{{{term2[0]}}}}}"
                )
            node.else_body = else_body
            return node
        if rest:
            raise ParseError(f"{_where(self.text, tpos)}: unexpected {rest[0].text!r} in end")
        return node

    def _control_chain(self, kind: str, toks: list[_Tok], pos: int) -> Control:
        return self._control(kind, toks, pos)

    def _pipeline(
        self,
        toks: list[_Tok],
        pos: int,
        allow_decl: bool,
        range_decl: bool = False,
        context: str = "command",
    ) -> Pipe:
        decl: list[str] = []
        assign = False
        # $x := ...   or   $k, $v := ... (range)
        if allow_decl and len(toks) >= 2 and toks[0].kind == "var" and "." not in toks[0].text:
            if toks[1].kind in ("declare", "assign"):
                decl = [toks[0].text]
                assign = toks[1].kind == "assign"
                toks = toks[2:]
            elif (
                range_decl and toks[1].kind == "comma" and len(toks) >= 4 and toks[2].kind == "var"
            ):
                if toks[3].kind not in ("declare", "assign"):
                    raise ParseError(f"{_where(self.text, pos)}: expected := after range variables")
                decl = [toks[0].text, toks[2].text]
                assign = toks[3].kind == "assign"
                toks = toks[4:]
        if not toks:
            raise ParseError(f"{_where(self.text, pos)}: missing value for {context}")
        cmds: list[Command] = []
        current: list[_Tok] = []
        depth = 0
        for tok in toks:
            if tok.kind == "lparen":
                depth += 1
            elif tok.kind == "rparen":
                depth -= 1
            if tok.kind == "pipe" and depth == 0:
                cmds.append(self._command(current, pos))
                current = []
            else:
                current.append(tok)
        cmds.append(self._command(current, pos))
        pipe = Pipe(decl, assign, cmds)
        self._check_pipe(pipe, pos)
        if decl:
            if assign:
                for name in decl:
                    if self._lookup(name) is None:
                        raise ParseError(f"{_where(self.text, pos)}: undefined variable {name!r}")
            else:
                static = self._static(pipe) if len(decl) == 1 and not range_decl else "any"
                if range_decl:
                    self.scopes[-1][decl[0]] = "any"
                    if len(decl) == 2:
                        self.scopes[-1][decl[1]] = "any"
                else:
                    self.scopes[-1][decl[0]] = static
        return pipe

    def _command(self, toks: list[_Tok], pos: int) -> Command:
        if not toks:
            raise ParseError(f"{_where(self.text, pos)}: missing value for command")
        args: list[Term] = []
        i = 0
        while i < len(toks):
            term, i = self._term(toks, i, pos)
            args.append(term)
        return Command(args)

    def _term(self, toks: list[_Tok], i: int, pos: int) -> tuple[Term, int]:
        tok = toks[i]
        where = _where(self.text, tok.pos)
        if tok.kind == "lparen":
            depth = 0
            j = i
            while j < len(toks):
                if toks[j].kind == "lparen":
                    depth += 1
                elif toks[j].kind == "rparen":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= len(toks):
                raise ParseError(f"{where}: unclosed left paren")
            inner = self._pipeline(
                toks[i + 1 : j], tok.pos, allow_decl=False, context="parenthesized pipeline"
            )
            term = Term("pipe", pipe=inner, static=self._static(inner))
            j += 1
            # (x).Field
            if j < len(toks) and toks[j].kind == "field" and not toks[j].space_before:
                term.chain = tuple(toks[j].text[1:].split("."))
                term.static = "any"
                j += 1
            return term, j
        if tok.kind == "rparen":
            raise ParseError(f"{where}: unexpected right paren")
        if tok.kind in ("string", "number", "bool", "nil"):
            static = {"string": "string", "bool": "bool", "nil": "nil"}.get(tok.kind)
            if static is None:
                static = "int" if isinstance(tok.value, GoInt) else "float"
            return Term("literal", value=tok.value, static=static), i + 1
        if tok.kind == "dot":
            return Term("dot", static=self.dot[-1]), i + 1
        if tok.kind == "field":
            chain = tuple(tok.text[1:].split("."))
            static = self._field_type(self.dot[-1], chain, where)
            return Term("field", chain=chain, static=static), i + 1
        if tok.kind == "var":
            name, *rest = tok.text.split(".")
            var_chain = tuple(rest)
            vtype = self._lookup(name)
            if vtype is None:
                raise ParseError(f"{where}: undefined variable {name!r}")
            static = self._field_type(vtype, var_chain, where) if var_chain else vtype
            return Term("var", name=name, chain=var_chain, static=static), i + 1
        if tok.kind == "ident":
            name = tok.text
            if name in ("if", "else", "end", "range", "with", "define", "template", "block"):
                raise ParseError(f"{where}: unexpected keyword {name!r} in command")
            d = self.dialect
            if name in d.unsupported:
                raise ParseError(
                    f"{where}: function {name!r} is not supported: {d.unsupported[name]}"
                )
            if name not in d.funcs and name not in d.data_funcs:
                raise ParseError(f"{where}: function {name!r} not defined")
            returns = d.funcs[name].returns if name in d.funcs else "string"
            return Term("func", name=name, static=returns), i + 1
        raise ParseError(f"{where}: unexpected {tok.text!r} in command")

    def _lookup(self, name: str) -> str | None:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return None

    def _field_type(self, base: str, chain: tuple[str, ...], where: str) -> str:
        t = base
        for name in chain:
            known = self.dialect.fields.get(t)
            if known is not None:
                if name in known:
                    t = known[name]
                elif "*" in known:
                    t = known["*"]
                else:
                    hint = self.dialect.describe.get(t)
                    raise ParseError(
                        f"{where}: can't evaluate field {name} in type {_GO_TYPES.get(t, t)}"
                        + (f" ({hint})" if hint else "")
                    )
            elif t in ("string", "float", "int", "bool"):
                raise ParseError(f"{where}: can't evaluate field {name} in type {t}")
            else:
                t = "any"
        return t

    def _static(self, pipe: Pipe) -> str:
        last = pipe.cmds[-1].args[0]
        return last.static

    def _check_pipe(self, pipe: Pipe, pos: int) -> None:
        where = _where(self.text, pos)
        for n, cmd in enumerate(pipe.cmds):
            first = cmd.args[0]
            piped = n > 0
            if first.kind != "func":
                if self.dialect.sub_templates and first.chain:
                    continue  # a method may take arguments: checked when it runs
                if len(cmd.args) > 1:
                    raise ParseError(
                        f"{where}: can't give argument to non-function {_describe(first)}"
                    )
                if piped:
                    raise ParseError(
                        f"{where}: can't give argument to non-function {_describe(first)}"
                    )
                continue
            nargs = len(cmd.args) - 1 + (1 if piped else 0)
            name = first.name
            if name in self.dialect.data_funcs:
                arity = self.dialect.data_funcs[name]
                if nargs != arity:
                    raise ParseError(
                        f"{where}: wrong number of args for {name}: want {arity} got {nargs}"
                    )
                continue
            fn = self.dialect.funcs[name]
            want = len(fn.params)
            if (fn.variadic and nargs < want) or (not fn.variadic and nargs != want):
                more = " or more" if fn.variadic else ""
                raise ParseError(
                    f"{where}: wrong number of args for {name}: want {want}{more} got {nargs}"
                )
            arg_types = [a.static for a in cmd.args[1:]]
            if piped:
                arg_types.append(pipe.cmds[n - 1].args[0].static)
            for k, ptype in enumerate(fn.params):
                if ptype == "string" and arg_types[k] in _NOT_STRING:
                    got = _go_static(arg_types[k])
                    raise ParseError(
                        f"{where}: wrong type for value in {name}; expected string; got {got}"
                    )
            if name in ("eq", "ne", "lt", "le", "gt", "ge") and len(arg_types) >= 2:
                known = [t for t in arg_types if t in ("int", "float", "string", "bool")]
                if len(set(known)) > 1:
                    types = " and ".join(map(_go_static, known))
                    raise ParseError(
                        f"{where}: {name}: incompatible types for comparison ({types})"
                        + (
                            "; write a float literal such as 10.0"
                            if {"int", "float"} <= set(known)
                            else ""
                        )
                    )


_GO_TYPES = {
    "float": "float64",
    "map": "map[string]string",
    "data": "template.Data",
    "ntf": "*template.Data",
    "kv": "template.KV",
    "pairs": "template.Pairs",
    "alerts": "template.Alerts",
    "list": "[]string",
    "alertslice": "[]template.Alert",
}


def _go_static(t: str) -> str:
    return _GO_TYPES.get(t, t)


def _describe(term: Term) -> str:
    if term.kind == "literal":
        return go_print(term.value) if not isinstance(term.value, str) else json.dumps(term.value)
    if term.kind == "var":
        return ".".join((term.name, *term.chain))
    if term.kind == "field":
        return "." + ".".join(term.chain)
    return term.kind


def _find_close(text: str, start: int) -> int:
    """Position of the `}}` closing an action, skipping quoted strings."""
    i = start
    while i < len(text):
        ch = text[i]
        if ch in "\"'`":
            end_ch = ch
            i += 1
            while i < len(text) and text[i] != end_ch:
                if text[i] == "\\" and end_ch != "`":
                    i += 1
                if text[i] == "\n" and end_ch != "`":
                    return -1
                i += 1
        elif text.startswith("}}", i):
            return i
        i += 1
    return -1


def _where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line}, column {col}"
