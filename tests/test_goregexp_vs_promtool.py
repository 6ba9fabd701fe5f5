"""Label matchers use Go's regexp (RE2 syntax); chatwatch translates it to Python's re
(agent/support/goregexp.py). Each pattern below is asked of the real promtool 2.42 over
the same label values: the values it selects, or the error Go gives, must be ours too.

The patterns are the places where Python's re and Go's regexp read the same text
differently: inline flags after the start and inside groups, case folding beyond ASCII
(the Kelvin sign, the long s, sigma, sharp s, the Turkish i's), `$` before a newline, `.`
and newlines, ASCII-only \\d \\s \\w \\b, POSIX classes, `x{,3}`, `(?U)`, `\\z`, `\\Q...\\E`,
and what RE2 refuses (lookarounds, backreferences, `**`, counts over 1000).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from agent.support.goregexp import RegexpError, compile_anchored

VALUES = [
    "", "a", "A", "ab", "aB", "Ab", "abc", "aaa", "b", "k", "K", "\u212a", "s", "S", "\u017f",
    "x\ny", "x\n", "\n", " ", "\t", "\v", "_", "a b", "1a", "a1", "42", "\u00e9", "\u00c9",
    "\u00df", "\u1e9e", "\u0131", "I", "i", "\u0130", "\u03c3", "\u03c2", "\u03a3", "{,3}",
    "a{,3}", "a.b", "a-b", "PROD-1", "prod_2", "x$", "a)$", "\u00b5", "\u039c", "\u0663", "\u2028",
]  # fmt: skip

PATTERNS = [
    "(?i)a", "(?i)ab", "a(?i)b", "((?i)a)b", "(?i:a)b", "(?i)a(?-i)b", "(?i)k", "(?i)s",
    "(?i)\u03c3", "(?i)\u00df", "(?i)i", "(?i)I", "(?i)\u0131", "(?i)[a-c]+", "(?i)[^a]",
    "(?i)[[:upper:]]", "(?i)[[:^lower:]]", "(?i)\\w", "(?i)\\W", "(?i)\\pL", "(?i)\u00b5",
    "x|(?i)a", "(?i)x|a", "a$", "x$\\n?", "(?m)x$\\n?", "(?m)x$\\ny", "x.y", "(?s)x.y",
    "x[^a]y", "^a", "(?m)^y", "\\Aa\\z", "a\\z", ".*\\n", "\\d+", "\\D", "\\s", "\\S",
    "\\w+", "\\W", "[\\d\\s]", "a\\bb", "a\\Bb", "\\b.*", "\\B", ".*\\B.*", "[[:alpha:]]+",
    "[[:^alpha:]]", "[[:space:]]", "[[:punct:]]", "[[:word:]]+", "[[:xdigit:]]+",
    "[^[:alnum:]]", "\\pL", "\\PL", "\\p{Lu}", "\\p{^Ll}", "\\pN", "\\p{Nd}", "\\pZ", "\\p{Any}",
    "a{,3}", "a{2}", "a{1,2}b?", "a{2,}", "(?U)a+", "(?U)a+?", "a+?", "\\Qa.b\\E", "a\\.b",
    "\\x41", "\\x{17F}", "\\141", "\\0", "[\\x00-\\x{10FFFF}]", "[^\\x00-\\x{10FFFF}]", "",
    "(?P<name>a)b", "(a|ab)(c|bcd)?", "[]a]+", "[^]a]", "[a-]", "[-a]+", "x{", "{", "a{1",
    "(?i)PRO.*|prod.*", "\\Qa", "(?:)", "()", "(|a)", "a||b", "(?s:.)", "(?is)X.Y", "(?m-s:^.)",
]  # fmt: skip

ERRORS = [
    "(?<n>x)", "(?=x)", "(?!x)", "(?<=x)", "(?P=n)", "\\1", "\\8", "a**", "a*+", "x{2}{3}",
    "*", "(*)", "a|*", "a{1001}", "a{2,1}", "(a{100}){11}", "[a", "(a", "a)", "[[:foo:]]",
    "(?z)", "(?i-)", "\\Z", "\\C", "[z-a]", "\\p{Foo}", "\\pX", "\\x{110000}", "\\xZ1", "\\e",
    "a\\", "[\\b]", "(?P<n!>x)", "\\Q", "a)|(b",
]  # fmt: skip


def promql_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def expr(pattern: str) -> str:
    return f"m{{v=~{promql_string(pattern)}}}"


def ours(pattern: str) -> set[str] | str:
    try:
        regex = compile_anchored(pattern)
    except RegexpError as e:
        return str(e)
    return {v for v in VALUES if regex.match(v)}


HEAD = re.compile(r'\s+expr: "(.*)", time: [^,]+,(?: err: (.*))?$')
LABELSET = re.compile(r'\{((?:[^"}]|"(?:[^"\\]|\\.)*")*)\}')
GOT_V = re.compile(r'\bv="((?:[^"\\]|\\.)*)"')


def unquote(text: str) -> str:
    return yaml.safe_load(f'"{text}"')  # Go's quoting of label values reads as YAML's


def promtool_answers(tmp_path: Path, patterns: list[str]) -> dict[str, set[str] | str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed")
    doc = {
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f"m{{v={promql_string(v)}}}", "values": "1"} for v in VALUES
                ],
                "promql_expr_test": [
                    {
                        "expr": expr(p),
                        "eval_time": "0m",
                        "exp_samples": [{"labels": '{never="x"}', "value": -1}],
                    }
                    for p in patterns
                ],
            }
        ]
    }
    (tmp_path / "re.test.yml").write_text(yaml.safe_dump(doc, allow_unicode=True))
    run = subprocess.run(
        [promtool, "test", "rules", "re.test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    answers: dict[str, set[str] | str] = {}
    lines = iter(run.stderr.splitlines())
    by_expr = {expr(p): p for p in patterns}
    for line in lines:
        head = HEAD.match(line)
        if head is None:
            continue
        pattern = by_expr[unquote(head.group(1))]
        if head.group(2) is not None:
            answers[pattern] = head.group(2).split("parse error: ", 1)[1]
            continue
        next(lines)  # exp:
        got = next(lines).split("got: ", 1)[1]
        answers[pattern] = set()
        for labels in LABELSET.findall(got):
            v = GOT_V.search(labels)  # no v label: the series of the empty value
            answers[pattern].add(unquote(v.group(1)) if v else "")
    assert len(answers) == len(patterns), run.stderr
    return answers


def test_patterns_select_what_promtool_selects(tmp_path: Path) -> None:
    theirs = promtool_answers(tmp_path, PATTERNS)
    wrong = {p: (ours(p), theirs[p]) for p in PATTERNS if ours(p) != theirs[p]}
    assert not wrong


def test_invalid_patterns_fail_with_gos_message(tmp_path: Path) -> None:
    theirs = promtool_answers(tmp_path, ERRORS)
    wrong = {p: (ours(p), theirs[p]) for p in ERRORS if ours(p) != theirs[p]}
    assert not wrong
