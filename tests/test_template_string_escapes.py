"""A malformed escape in a template's string literal is a template error reported at load,
in the user's terms (file, rule, annotation), as promtool reports `invalid syntax`; it once
escaped as a bare ValueError from the escape decoder."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.alerting.rule_file import RuleError, load_rule_files

RULES = """\
groups:
- name: g
  rules:
  - alert: A
    expr: vector(1)
    annotations:
      summary: |-
        {{{{ {literal} }}}} done
"""


@pytest.mark.parametrize(
    "literal",
    [
        r'"\x"',
        r'"\x4"',
        r'"\u12"',
        r'"\U0011ffff"',
        r'"\ud800"',
        r'"\400"',
        r'"\1"',
        r'"\q"',
        r'"\'"',
        "'ab'",
    ],
)
def test_malformed_escape_is_a_rule_error_naming_the_annotation(
    tmp_path: Path, literal: str
) -> None:
    path = tmp_path / "r.yml"
    path.write_text(RULES.format(literal=literal))
    with pytest.raises(RuleError) as exc:
        load_rule_files([str(path)])
    (problem,) = exc.value.problems
    assert str(path) in problem
    assert "annotation 'summary'" in problem
    assert "invalid syntax" in problem or "malformed character constant" in problem


@pytest.mark.parametrize("literal", [r'"\x41\u00e9\101\t"', "'\\''", r'"\""'])
def test_valid_escapes_still_load(tmp_path: Path, literal: str) -> None:
    path = tmp_path / "r.yml"
    path.write_text(RULES.format(literal=literal))
    load_rule_files([str(path)])
