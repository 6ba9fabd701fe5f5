"""Go's regexp package where its behaviour shows: `Regexp.Expand` templates.

PromQL's `label_replace` and the templates' `reReplaceAll` both expand replacements
the way Go does (`$1`, `${1}`, `$name`, `${name}`, `$$`; a group that does not exist
expands to nothing; a malformed `${` stays as text), so they share this one function.
"""

from __future__ import annotations

import re

_VAR = re.compile(r"\$(?:\$|\{([A-Za-z0-9_]*)\}|([A-Za-z0-9_]+))")


def expand(template: str, m: re.Match[str]) -> str:
    """Go's regexp.Expand of `template` with the groups of `m`."""

    def repl(v: re.Match[str]) -> str:
        if v.group(0) == "$$":
            return "$"
        name = v.group(1) if v.group(1) is not None else v.group(2)
        if name == "" and v.group(1) is not None:
            return v.group(0)  # "${}" is malformed: Go keeps it as text
        try:
            if name.isdigit():
                return m.group(int(name)) or ""
            return m.group(name) or ""
        except IndexError:
            return ""

    return _VAR.sub(repl, template)
