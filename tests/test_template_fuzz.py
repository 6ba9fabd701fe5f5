"""Generated alert templates load or fail with a TemplateError, and render or fail with
one: whatever the template and the data (NaN, ±Inf, -0, huge and tiny floats, unicode,
absent labels), a rule author sees a message in their terms, never a traceback."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.alerting.template.exec import Template, TemplateError

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXTERNAL = {"cluster": "eu-1"}
URL = "http://cw:9317/prefix"

values = st.one_of(
    st.sampled_from(
        [
            math.nan,
            math.inf,
            -math.inf,
            -0.0,
            0.0,
            1.0,
            -42.5,
            1e21,
            1e-7,
            5e-324,
            1.7976931348623157e308,
            -1e300,
            123456.789,
            3725.5,
            1435065584.128,
            9.3e18,
        ]
    ),
    st.floats(),
)
label_names = st.sampled_from(["route", "model", "k", "é", "empty", "absent"])
label_values = st.one_of(
    st.sampled_from(
        ["", "/v1/chat", "gpt-4o", "1e3", "0x1p-2", "NaN", "-inf", "abc", "日本 ✓", "a\nb", "x:80"]
    ),
    st.text(max_size=8),
)
labels = st.dictionaries(
    st.sampled_from(["route", "model", "k", "é", "empty"]), label_values, max_size=5
)

string_terms = st.one_of(
    label_names.map(lambda n: f"$labels.{n}"),
    label_names.map(lambda n: f".Labels.{n}"),
    label_names.map(lambda n: f'(index $labels "{n}")'),
    st.sampled_from(['"lit"', '"日本"', "$externalLabels.cluster", "$externalURL", ".ExternalURL"]),
)
float_terms = st.sampled_from(["$value", ".Value", "1.5", "-0.0", "1e300"])
any_terms = st.one_of(string_terms, float_terms, st.sampled_from(["3", "true", "$labels", "."]))
humanizers = st.sampled_from(
    ["humanize", "humanize1024", "humanizeDuration", "humanizePercentage", "humanizeTimestamp"]
)
string_funcs = st.sampled_from(["toUpper", "toLower", "title", "stripPort", "stripDomain"])
formats = st.lists(
    st.sampled_from(
        ["%s", "%d", "%v", "%.2f", "%g", "%e", "%q", "%x", "%5.1f", "%-6s", "%T", "%c"]
    ),
    max_size=3,
).map(lambda verbs: '"' + " ".join(["x", *verbs]) + '"')


@st.composite
def pipelines(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 6))
    if kind == 0:
        return draw(any_terms)
    if kind == 1:
        return f"{draw(any_terms)} | {draw(humanizers)}"
    if kind == 2:
        return f"{draw(humanizers)} {draw(any_terms)}"
    if kind == 3:
        return f"{draw(string_terms)} | {draw(string_funcs)}"
    if kind == 4:
        return " ".join(["printf", draw(formats), *draw(st.lists(any_terms, max_size=3))])
    if kind == 5:
        return f"{draw(any_terms)} | printf {draw(formats)}"
    return f"{draw(float_terms)} | {draw(humanizers)} | {draw(string_funcs)}"


conditions = st.one_of(
    float_terms.map(lambda t: f"gt {t} 100.0"),
    any_terms.map(lambda t: f'eq {t} "gpt-4o"'),
    any_terms,
    st.builds(lambda a, b: f"and ({a}) ({b})", float_terms.map(lambda t: f"ge {t} 0.0"), any_terms),
)
texts = st.text(max_size=12).filter(lambda s: "{{" not in s and not s.endswith("{"))


def act(inside: str) -> str:
    return "{{ " + inside + " }}"


def _nest(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    body = st.lists(inner, max_size=3).map("".join)
    return st.one_of(
        st.builds(
            lambda c, a, b: act(f"if {c}") + a + act("else") + b + act("end"),
            conditions,
            body,
            body,
        ),
        st.builds(
            lambda t, a: act(f"with {t}") + f"[{act('.')}]" + a + act("end"), any_terms, body
        ),
        st.builds(
            lambda t, a: act(f"range {t}") + act(".") + ";" + a + act("end"), any_terms, body
        ),
        body.map(
            lambda a: act("range $k, $v := $labels") + act("$k") + "=" + act("$v") + a + act("end")
        ),
    )


templates = st.lists(
    st.recursive(st.one_of(texts, pipelines().map(act)), _nest, max_leaves=4),
    min_size=1,
    max_size=5,
).map("".join)


@st.composite
def damaged(draw: st.DrawFn) -> str:
    """A generated template with a piece cut out or a delimiter added."""
    text = draw(templates)
    i = draw(st.integers(0, len(text)))
    j = draw(st.integers(i, len(text)))
    return text[:i] + draw(st.sampled_from(["", "{{", "}}", "(", "|", '"', "$"])) + text[j:]


def loads(text: str) -> Template | None:
    try:
        return Template(text)
    except TemplateError:
        return None


@FUZZ
@given(st.one_of(templates, damaged()))
def test_any_template_loads_or_fails_with_a_template_error(text: str) -> None:
    loads(text)


@FUZZ
@given(templates, labels, values)
def test_any_loaded_template_renders_or_fails_with_a_template_error(
    text: str, lbls: dict[str, str], value: float
) -> None:
    template = loads(text)
    if template is None:
        return
    try:
        expected = template.render(lbls, value, EXTERNAL, URL)
    except TemplateError as exc:
        expected = f"<error expanding template: {exc}>"
    assert template.expand(lbls, value, EXTERNAL, URL) == expected
