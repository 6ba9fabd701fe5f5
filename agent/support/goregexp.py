"""Go's regexp package where its behaviour shows: RE2 syntax and `Regexp.Expand` templates.

Prometheus compiles label matchers (`=~`, `!~`) and label_replace() regexes with Go's
`regexp` (RE2 syntax, Go 1.19 as in the Debian build of Prometheus 2.42). Python's `re`
reads much of that syntax differently: inline flags such as `(?i)` only at the very start,
`$` also before a final newline, `\\s`, `\\d`, `\\w` and `\\b` over all of Unicode, POSIX
classes (`[[:alpha:]]`) not at all, `\\z` not at all, `x{,3}` as a repeat, and lookarounds
and backreferences that RE2 rejects. `translate` therefore parses the pattern the way Go's
regexp/syntax parser does (same grammar, same errors, same messages) and writes a Python
pattern that matches the same strings:

- flags (`i`, `m`, `s`, `U`, negated with `-`) apply from where they are set to the end of
  the enclosing group, as in Go; nothing relies on Python's own flags: case-insensitive
  literals and classes are written out as explicit classes of their simple case-folding
  orbits (`k` is `[Kk\\u212a]`, as Go's unicode.SimpleFold has it), `^`/`$` become `\\A`/`\\Z`
  or their multi-line forms, and `U` swaps the greediness of each repetition;
- Perl classes (`\\d \\s \\w`), POSIX classes and Unicode categories (`\\pL`, `\\p{Lu}`) are
  written out as explicit ranges with Go's ASCII definitions; `\\b` is ASCII-only;
- Go's limits hold: repeat counts up to 1000 (also nested), no `**`.

Unicode scripts (`\\p{Greek}`) are the one thing not translated: Python has no script
table, so they raise `RegexpUnsupported`.

PromQL's `label_replace` and the templates' `reReplaceAll` both expand replacements the
way Go does (`$1`, `${1}`, `$name`, `${name}`, `$$`; a group that does not exist expands
to nothing; a malformed `${` stays as text), so they share `expand`.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import unicodedata

__all__ = [
    "RegexpError",
    "RegexpUnsupported",
    "compile_anchored",
    "compile_go",
    "expand",
    "translate",
]


class RegexpError(ValueError):
    """The pattern is not valid Go regexp syntax (the message is Go's)."""


class RegexpUnsupported(RegexpError):
    """Valid Go syntax that chatwatch cannot translate (Unicode scripts)."""


def _error(code: str, expr: str) -> RegexpError:
    return RegexpError(f"error parsing regexp: {code}: `{expr}`")


_MAX_RUNE = 0x10FFFF
_MAX_REPEAT = 1000
_MIN_FOLD, _MAX_FOLD = 0x41, 0x1E943

Ranges = list[tuple[int, int]]

# Go's regexp/syntax perl_groups.go: Perl and POSIX classes are ASCII-only.
_PERL: dict[str, tuple[int, Ranges]] = {
    "\\d": (+1, [(0x30, 0x39)]),
    "\\D": (-1, [(0x30, 0x39)]),
    "\\s": (+1, [(0x9, 0xA), (0xC, 0xD), (0x20, 0x20)]),
    "\\S": (-1, [(0x9, 0xA), (0xC, 0xD), (0x20, 0x20)]),
    "\\w": (+1, [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]),
    "\\W": (-1, [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]),
}
_POSIX_CLASSES: dict[str, Ranges] = {
    "alnum": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
    "alpha": [(0x41, 0x5A), (0x61, 0x7A)],
    "ascii": [(0x0, 0x7F)],
    "blank": [(0x9, 0x9), (0x20, 0x20)],
    "cntrl": [(0x0, 0x1F), (0x7F, 0x7F)],
    "digit": [(0x30, 0x39)],
    "graph": [(0x21, 0x7E)],
    "lower": [(0x61, 0x7A)],
    "print": [(0x20, 0x7E)],
    "punct": [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
    "space": [(0x9, 0xD), (0x20, 0x20)],
    "upper": [(0x41, 0x5A)],
    "word": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
    "xdigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
}
_POSIX: dict[str, tuple[int, Ranges]] = {}
for _name, _ranges in _POSIX_CLASSES.items():
    _POSIX[f"[:{_name}:]"] = (+1, _ranges)
    _POSIX[f"[:^{_name}:]"] = (-1, _ranges)

# Go's unicode.Categories: the two-letter categories and the one-letter unions. Go's "C"
# leaves out Cn (unassigned), like its table does.
_CATEGORY_NAMES = {
    "Cc", "Cf", "Co", "Cs", "Ll", "Lm", "Lo", "Lt", "Lu", "Mc", "Me", "Mn", "Nd", "Nl",
    "No", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "Sc", "Sk", "Sm", "So", "Zl", "Zp",
    "Zs", "C", "L", "M", "N", "P", "S", "Z",
}  # fmt: skip

# Go 1.19's unicode.Scripts (Unicode 13): valid in \p{...}, but not translatable.
_SCRIPTS = set(
    """Adlam Ahom Anatolian_Hieroglyphs Arabic Armenian Avestan Balinese Bamum Bassa_Vah
    Batak Bengali Bhaiksuki Bopomofo Brahmi Braille Buginese Buhid Canadian_Aboriginal Carian
    Caucasian_Albanian Chakma Cham Cherokee Chorasmian Common Coptic Cuneiform Cypriot
    Cyrillic Deseret Devanagari Dives_Akuru Dogra Duployan Egyptian_Hieroglyphs Elbasan
    Elymaic Ethiopic Georgian Glagolitic Gothic Grantha Greek Gujarati Gunjala_Gondi Gurmukhi
    Han Hangul Hanifi_Rohingya Hanunoo Hatran Hebrew Hiragana Imperial_Aramaic Inherited
    Inscriptional_Pahlavi Inscriptional_Parthian Javanese Kaithi Kannada Katakana Kayah_Li
    Kharoshthi Khitan_Small_Script Khmer Khojki Khudawadi Lao Latin Lepcha Limbu Linear_A
    Linear_B Lisu Lycian Lydian Mahajani Makasar Malayalam Mandaic Manichaean Marchen
    Masaram_Gondi Medefaidrin Meetei_Mayek Mende_Kikakui Meroitic_Cursive Meroitic_Hieroglyphs
    Miao Modi Mongolian Mro Multani Myanmar Nabataean Nandinagari New_Tai_Lue Newa Nko Nushu
    Nyiakeng_Puachue_Hmong Ogham Ol_Chiki Old_Hungarian Old_Italic Old_North_Arabian
    Old_Permic Old_Persian Old_Sogdian Old_South_Arabian Old_Turkic Oriya Osage Osmanya
    Pahawh_Hmong Palmyrene Pau_Cin_Hau Phags_Pa Phoenician Psalter_Pahlavi Rejang Runic
    Samaritan Saurashtra Sharada Shavian Siddham SignWriting Sinhala Sogdian Sora_Sompeng
    Soyombo Sundanese Syloti_Nagri Syriac Tagalog Tagbanwa Tai_Le Tai_Tham Tai_Viet Takri
    Tamil Tangut Telugu Thaana Thai Tibetan Tifinagh Tirhuta Ugaritic Vai Wancho Warang_Citi
    Yezidi Yi Zanabazar_Square""".split()  # noqa: SIM905
)


# -- character classes as sorted, merged (lo, hi) ranges ----------------------------------


def _clean(ranges: Ranges) -> Ranges:
    out: Ranges = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def _negate(ranges: Ranges) -> Ranges:
    out: Ranges = []
    next_lo = 0
    for lo, hi in _clean(ranges):
        if next_lo <= lo - 1:
            out.append((next_lo, lo - 1))
        next_lo = hi + 1
    if next_lo <= _MAX_RUNE:
        out.append((next_lo, _MAX_RUNE))
    return out


@functools.cache
def _fold_orbits() -> dict[int, tuple[int, ...]]:
    """Code point -> every code point of its simple case-folding orbit (Go's
    unicode.SimpleFold cycle), for the code points that have others in their orbit.

    Two characters are in one orbit when they have the same simple case folding, which is
    their lower case of their upper case except where Unicode's folding deliberately
    differs: the Turkish dotted/dotless i stay alone."""
    by_key: dict[str, list[int]] = {}
    for c in range(_MIN_FOLD, _MAX_FOLD + 1):
        ch = chr(c)
        if c in (0x130, 0x131):
            key = ch
        else:
            up = ch.upper()
            key = up.lower() if len(up) == 1 else ch.lower()
            if len(key) != 1:
                key = ch
        by_key.setdefault(key, []).append(c)
    orbits: dict[int, tuple[int, ...]] = {}
    for members in by_key.values():
        if len(members) > 1:
            for c in members:
                orbits[c] = tuple(members)
    return orbits


def _fold_ranges(ranges: Ranges) -> Ranges:
    """The ranges plus everything case-equivalent to them (Go's appendFoldedRange)."""
    out: Ranges = []
    orbits = _fold_orbits()
    for lo, hi in ranges:
        out.append((lo, hi))
        if hi < _MIN_FOLD or lo > _MAX_FOLD or (lo <= _MIN_FOLD and hi >= _MAX_FOLD):
            continue
        for c in range(max(lo, _MIN_FOLD), min(hi, _MAX_FOLD) + 1):
            for f in orbits.get(c, ()):
                out.append((f, f))
    return _clean(out)


@functools.cache
def _category(name: str) -> tuple[tuple[int, int], ...]:
    if name == "Any":
        return ((0, _MAX_RUNE),)
    if name not in _CATEGORY_NAMES:
        return ()
    if len(name) == 1:
        want = {"C": ("Cc", "Cf", "Co", "Cs")}.get(name)
        ok = (lambda cat: cat in want) if want else (lambda cat: cat[0] == name)
    else:
        ok = lambda cat: cat == name  # noqa: E731
    out: Ranges = []
    start = -1
    for c in range(_MAX_RUNE + 2):
        inside = c <= _MAX_RUNE and ok(unicodedata.category(chr(c)))
        if inside and start < 0:
            start = c
        elif not inside and start >= 0:
            out.append((start, c - 1))
            start = -1
    return tuple(out)


def _class_text(ranges: Ranges) -> str:
    """A Python character class matching exactly `ranges` (no flags involved)."""
    if not ranges:
        return "(?!)"
    if ranges == [(0, _MAX_RUNE)]:
        return "(?s:.)"
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return re.escape(chr(ranges[0][0]))
    parts = []
    for lo, hi in ranges:
        parts.append(_class_char(lo) if lo == hi else f"{_class_char(lo)}-{_class_char(hi)}")
    return "[" + "".join(parts) + "]"


def _class_char(c: int) -> str:
    if 0x30 <= c <= 0x39 or 0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A:
        return chr(c)
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" if c < 0x10000 else f"\\U{c:08x}"


# Python's \B never matches an empty string; Go's does. Both are ASCII here, as in Go.
_NOT_BOUNDARY = "(?a:(?<=\\w)(?=\\w)|(?<!\\w)(?!\\w))"


# -- the parser ----------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _Flags:
    fold: bool = False  # i
    multi: bool = False  # m: ^ and $ at line boundaries (Go: OneLine off)
    dotnl: bool = False  # s
    ungreedy: bool = False  # U


@dataclasses.dataclass(slots=True)
class _Item:
    text: str
    atom: bool  # can take a Python quantifier as it is
    weight: int = 1  # product of nested {n,m} counts, for Go's repeat limit
    repeat: bool = False


@dataclasses.dataclass(slots=True)
class _Group:
    flags: _Flags
    opening: str  # "(", "(?:", "(?P<name>"
    branches: list[list[_Item]] = dataclasses.field(default_factory=list)
    items: list[_Item] = dataclasses.field(default_factory=list)


def _parse_int(s: str, i: int) -> tuple[int, int] | None:
    """Go's parseInt: digits without leading zeros; -1 when too big."""
    j = i
    while j < len(s) and s[j].isascii() and s[j].isdigit():
        j += 1
    if j == i or (j - i >= 2 and s[i] == "0"):
        return None
    n = 0
    for ch in s[i:j]:
        if n >= 100_000_000:
            n = -1
            break
        n = n * 10 + int(ch)
    return n, j


def _parse_repeat(s: str, i: int) -> tuple[int, int, int] | None:
    """{n}, {n,} or {n,m} at s[i]: (min, max or -1, end); None if it is not one."""
    got = _parse_int(s, i + 1)
    if got is None:
        return None
    lo, j = got
    if j >= len(s):
        return None
    if s[j] != ",":
        hi = lo
    else:
        j += 1
        if j >= len(s):
            return None
        if s[j] == "}":
            hi = -1
        else:
            got = _parse_int(s, j)
            if got is None:
                return None
            hi, j = got
            if hi < 0:
                lo = -1
    if j >= len(s) or s[j] != "}":
        return None
    return lo, hi, j + 1


def _hex(ch: str) -> int:
    return int(ch, 16) if ch in "0123456789abcdefABCDEF" and ch else -1


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.s = pattern
        self.flags = _Flags()
        self.stack: list[_Group] = []
        self.items: list[_Item] = []
        self.branches: list[list[_Item]] = []
        self.last_repeat = -1  # start of the previous repetition operator, if just parsed
        self.names: set[str] = set()

    def parse(self) -> str:
        s = self.s
        i = 0
        while i < len(s):
            repeat_at = -1
            c = s[i]
            if c == "(":
                if s.startswith("(?", i):
                    i = self.perl_flags(i)
                else:
                    self.open_group("(")
                    i += 1
            elif c == "|":
                self.branches.append(self.items)
                self.items = []
                i += 1
            elif c == ")":
                self.close_group()
                i += 1
            elif c == "^":
                self.push("(?m:^)" if self.flags.multi else "\\A", atom=False)
                i += 1
            elif c == "$":
                self.push("(?m:$)" if self.flags.multi else "\\Z", atom=False)
                i += 1
            elif c == ".":
                self.push("(?s:.)" if self.flags.dotnl else "[^\\n]", atom=True)
                i += 1
            elif c == "[":
                i = self.char_class(i)
            elif c in "*+?":
                repeat_at = i
                i = self.repeat(i, i + 1, c)
            elif c == "{":
                rep = _parse_repeat(s, i)
                if rep is None:
                    self.literal(ord("{"))
                    i += 1
                else:
                    lo, hi, end = rep
                    if lo < 0 or lo > _MAX_REPEAT or hi > _MAX_REPEAT or (hi >= 0 and lo > hi):
                        raise _error("invalid repeat count", s[i:end])
                    repeat_at = i
                    i = self.repeat(i, end, "{", lo, hi)
            elif c == "\\":
                i = self.escape(i)
            else:
                self.literal(ord(c))
                i += 1
            self.last_repeat = repeat_at
        if self.stack:
            raise _error("missing closing )", s)
        return self.alternation([*self.branches, self.items])

    # items

    def push(self, text: str, atom: bool, weight: int = 1) -> None:
        self.items.append(_Item(text, atom, weight))

    def literal(self, c: int) -> None:
        if self.flags.fold and _MIN_FOLD <= c <= _MAX_FOLD and c in _fold_orbits():
            self.push(_class_text(_clean([(f, f) for f in _fold_orbits()[c]])), atom=True)
        else:
            self.push(re.escape(chr(c)), atom=True)

    def ranges(self, ranges: Ranges) -> None:
        self.push(_class_text(_clean(ranges)), atom=True)

    def alternation(self, branches: list[list[_Item]]) -> str:
        return "|".join("".join(item.text for item in b) for b in branches)

    # groups and flags

    def open_group(self, opening: str) -> None:
        group = _Group(dataclasses.replace(self.flags), opening, self.branches, self.items)
        self.stack.append(group)
        self.branches, self.items = [], []

    def close_group(self) -> None:
        if not self.stack:
            raise _error("unexpected )", self.s)
        group = self.stack.pop()
        branches = [*self.branches, self.items]
        weight = max((it.weight for b in branches for it in b), default=1)
        body = self.alternation(branches)
        self.flags = group.flags
        self.branches, self.items = group.branches, group.items
        self.push(f"{group.opening}{body})", atom=True, weight=weight)

    def perl_flags(self, i: int) -> int:
        s = self.s
        t = s[i:]
        if t.startswith("(?P<") and len(t) > 4:
            end = t.find(">")
            if end < 0:
                raise _error("invalid named capture", t)
            name = t[4:end]
            if not name or not all(ch == "_" or (ch.isascii() and ch.isalnum()) for ch in name):
                raise _error("invalid named capture", t[: end + 1])
            # Python wants identifiers and unique names; Go takes any [A-Za-z0-9_]+.
            usable = name.isidentifier() and name not in self.names
            self.names.add(name)
            self.open_group(f"(?P<{name}>" if usable else "(")
            return i + end + 1
        flags = dataclasses.replace(self.flags)
        sign = +1
        saw = False
        j = i + 2
        while j < len(s):
            c = s[j]
            j += 1
            if c in "imsU":
                on = sign > 0
                if c == "i":
                    flags.fold = on
                elif c == "m":
                    flags.multi = on
                elif c == "s":
                    flags.dotnl = on
                else:
                    flags.ungreedy = on
                saw = True
            elif c == "-":
                if sign < 0:
                    break
                sign = -1
                saw = False
            elif c in ":)":
                if sign < 0 and not saw:
                    break
                if c == ":":
                    self.open_group("(?:")
                self.flags = flags
                return j
            else:
                break
        raise _error("invalid or unsupported Perl syntax", s[i:j])

    # repetition

    def repeat(self, start: int, after: int, op: str, lo: int = 0, hi: int = 0) -> int:
        s = self.s
        non_greedy = self.flags.ungreedy
        if after < len(s) and s[after] == "?":
            after += 1
            non_greedy = not non_greedy
        if self.last_repeat >= 0:
            raise _error("invalid nested repetition operator", s[self.last_repeat : after])
        if not self.items:
            raise _error("missing argument to repetition operator", s[start:after])
        sub = self.items.pop()
        weight = sub.weight
        if op == "{":
            if lo >= 2 or hi >= 2:
                m = hi if hi >= 0 else lo
                if m > 0 and m * max(weight, 1) > _MAX_REPEAT:
                    raise _error("invalid repeat count", s[start:after])
            m = hi if hi >= 0 else lo
            weight = 0 if m == 0 else m * weight
            quant = f"{{{lo}}}" if lo == hi else f"{{{lo},}}" if hi < 0 else f"{{{lo},{hi}}}"
        else:
            quant = op
        text = sub.text if sub.atom else f"(?:{sub.text})"
        self.items.append(_Item(f"(?:{text}{quant}{'?' if non_greedy else ''})", True, weight))
        return after

    # escapes and classes

    def escape(self, i: int) -> int:
        s = self.s
        if i + 1 < len(s):
            c = s[i + 1]
            simple = {"A": "\\A", "z": "\\Z", "b": "(?a:\\b)", "B": _NOT_BOUNDARY}.get(c)
            if simple is not None:
                self.push(simple, atom=False)
                return i + 2
            if c == "C":
                raise _error("invalid escape sequence", "\\C")
            if c == "Q":
                end = s.find("\\E", i + 2)
                lit = s[i + 2 :] if end < 0 else s[i + 2 : end]
                for ch in lit:
                    self.literal(ord(ch))
                return len(s) if end < 0 else end + 2
            if c in "pP":
                ranges, j = self.unicode_class(i)
                self.ranges(ranges)
                return j
            group = _PERL.get(s[i : i + 2])
            if group is not None:
                self.ranges(self.group_ranges(group))
                return i + 2
        r, j = self.parse_escape(i)
        self.literal(r)
        return j

    def parse_escape(self, i: int) -> tuple[int, int]:
        """Go's parseEscape: the rune of the escape at s[i] ('\\')."""
        s = self.s
        if i + 1 >= len(s):
            raise _error("trailing backslash at end of expression", "")
        c = s[i + 1]
        j = i + 2
        if c < "\x80" and not (c.isascii() and c.isalnum()):
            return ord(c), j
        if c in "1234567" and (j >= len(s) or not "0" <= s[j] <= "7"):
            raise _error("invalid escape sequence", s[i:j])
        if c in "01234567":
            r = int(c)
            for _ in range(2):
                if j >= len(s) or not "0" <= s[j] <= "7":
                    break
                r = r * 8 + int(s[j])
                j += 1
            return r, j
        if c == "x" and j < len(s):
            c2 = s[j]
            j += 1
            if c2 == "{":
                r = nhex = 0
                while j < len(s):
                    d = s[j]
                    j += 1
                    if d == "}":
                        if nhex == 0:
                            break
                        return r, j
                    v = _hex(d)
                    if v < 0:
                        break
                    r = r * 16 + v
                    if r > _MAX_RUNE:
                        break
                    nhex += 1
                raise _error("invalid escape sequence", s[i:j])
            if j < len(s):
                x, y = _hex(c2), _hex(s[j])
                j += 1
                if x >= 0 and y >= 0:
                    return x * 16 + y, j
            raise _error("invalid escape sequence", s[i:j])
        controls = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
        if c in controls:
            return controls[c], j
        raise _error("invalid escape sequence", s[i:j])

    def group_ranges(self, group: tuple[int, Ranges]) -> Ranges:
        """Go's appendGroup: fold first (under i), then negate."""
        sign, ranges = group
        if self.flags.fold:
            ranges = _fold_ranges(ranges)
        return _negate(ranges) if sign < 0 else list(ranges)

    def unicode_class(self, i: int) -> tuple[Ranges, int]:
        s = self.s
        sign = -1 if s[i + 1] == "P" else +1
        if i + 2 >= len(s):
            raise _error("invalid character class range", s[i:])
        if s[i + 2] != "{":
            seq, name, j = s[i : i + 3], s[i + 2], i + 3
        else:
            end = s.find("}", i)
            if end < 0:
                raise _error("invalid character class range", s[i:])
            seq, name, j = s[i : end + 1], s[i + 3 : end], end + 1
        if name.startswith("^"):
            sign, name = -sign, name[1:]
        table = list(_category(name))
        if not table:
            if name in _SCRIPTS:
                raise RegexpUnsupported(
                    f"Unicode script classes such as {seq} are not supported (only "
                    "general categories such as \\pL and \\p{Lu})"
                )
            raise _error("invalid character class range", seq)
        if self.flags.fold:
            table = _fold_ranges(table)
        return (table if sign > 0 else _negate(table)), j

    def char_class(self, i: int) -> int:
        """Go's parseClass, from the '[' at s[i]."""
        s = self.s
        whole = s[i:]
        j = i + 1
        sign = +1
        if j < len(s) and s[j] == "^":
            sign = -1
            j += 1
        ranges: Ranges = []
        first = True
        while j >= len(s) or s[j] != "]" or first:
            first = False
            if j >= len(s):
                raise _error("missing closing ]", whole)
            if s.startswith("[:", j) and len(s) - j > 2:
                end = s.find(":]", j + 2)
                if end >= 0:
                    name = s[j : end + 2]
                    group = _POSIX.get(name)
                    if group is None:
                        raise _error("invalid character class range", name)
                    ranges.extend(self.group_ranges(group))
                    j = end + 2
                    continue
            if s[j] == "\\" and j + 1 < len(s):
                if s[j + 1] in "pP":
                    got, j = self.unicode_class(j)
                    ranges.extend(got)
                    continue
                group = _PERL.get(s[j : j + 2])
                if group is not None:
                    ranges.extend(self.group_ranges(group))
                    j += 2
                    continue
            start = j
            lo, j = self.class_char(j, whole)
            hi = lo
            if j + 1 < len(s) and s[j] == "-" and s[j + 1] != "]":
                hi, j = self.class_char(j + 1, whole)
                if hi < lo:
                    raise _error("invalid character class range", s[start:j])
            ranges.extend(_fold_ranges([(lo, hi)]) if self.flags.fold else [(lo, hi)])
        ranges = _clean(ranges)
        self.ranges(_negate(ranges) if sign < 0 else ranges)
        return j + 1

    def class_char(self, j: int, whole: str) -> tuple[int, int]:
        if j >= len(self.s):
            raise _error("missing closing ]", whole)
        if self.s[j] == "\\":
            return self.parse_escape(j)
        return ord(self.s[j]), j + 1


@functools.lru_cache(maxsize=4096)
def translate(pattern: str) -> str:
    """The Python `re` pattern that matches what Go's regexp.Compile(pattern) matches.

    Raises RegexpError with Go's message for what Go rejects."""
    return _Parser(pattern).parse()


@functools.lru_cache(maxsize=4096)
def compile_go(pattern: str) -> re.Pattern[str]:
    """Go's regexp.Compile(pattern) as a Python pattern (unanchored, like Go's)."""
    return re.compile(translate(pattern))


@functools.lru_cache(maxsize=4096)
def compile_anchored(pattern: str) -> re.Pattern[str]:
    """A label matcher's regex as Prometheus 2.42 builds it (labels.NewFastRegexMatcher):
    Go compiles `^(?:pattern)$` as one text, then parses `pattern` alone too; both must
    succeed (the first error is the one reported) and the anchored one matches."""
    anchored = translate(f"^(?:{pattern})$")
    translate(pattern)
    return re.compile(anchored)


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
