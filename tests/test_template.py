"""Alert templates render exactly as Prometheus renders them.

The humanize* cases are Prometheus' own (template/template_test.go); Go's number
formatting (`%v`, `%.4g`) is what users see in Slack, so it must match to the character.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from agent.alerting.template.exec import Template, TemplateError
from agent.alerting.template.funcs import (
    humanize,
    humanize1024,
    humanize_duration,
    humanize_percentage,
    humanize_timestamp,
)
from agent.support.goformat import go_float, go_sprintf


def render(text: str, labels: dict[str, str] | None = None, value: float = 0.0) -> str:
    return Template(text).render(labels or {}, value, {"cluster": "eu-1"}, "http://cw:9317")


def joined(fn: object, inputs: Sequence[object]) -> str:
    assert callable(fn)
    return "".join(f"{fn(x)}:" for x in inputs)


# -- Prometheus' template_test.go ------------------------------------------------------


def test_humanize_float_and_string_inputs() -> None:
    assert joined(humanize, [0.0, 1.0, 1234567.0, 0.12]) == "0:1:1.235M:120m:"
    assert joined(humanize, ["0.0", "1.0", "1234567.0", ".12"]) == "0:1:1.235M:120m:"


def test_humanize_int_and_uint_inputs() -> None:
    assert joined(humanize, [0, -1, 1, 1234567, 2**63 - 1]) == "0:-1:1:1.235M:9.223E:"
    assert joined(humanize, [0, 1, 1234567, 2**64 - 1]) == "0:1:1.235M:18.45E:"


def test_humanize1024() -> None:
    assert joined(humanize1024, [0.0, 1.0, 1048576.0, 0.12]) == "0:1:1Mi:0.12:"
    assert joined(humanize1024, ["0.0", "1.0", "1048576.0", ".12"]) == "0:1:1Mi:0.12:"
    assert joined(humanize1024, [0, -1, 1, 1234567, 2**63 - 1]) == "0:-1:1:1.177Mi:8Ei:"
    assert joined(humanize1024, [0, 1, 1234567, 2**64 - 1]) == "0:1:1.177Mi:16Ei:"


def test_humanize_duration() -> None:
    secs = [0, 1, 60, 3600, 86400, 86400 + 3600, -(86400 * 2 + 3600 * 3 + 60 * 4 + 5), 899.99]
    assert (
        joined(humanize_duration, secs)
        == "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:1d 1h 0m 0s:-2d 3h 4m 5s:14m 59s:"
    )
    assert (
        joined(humanize_duration, ["0", "1", "60", "3600", "86400"])
        == "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:"
    )
    frac = [0.1, 0.0001, 0.12345, 60.1, 60.5, 1.2345, 12.345]
    assert joined(humanize_duration, frac) == "100ms:100us:123.5ms:1m 0s:1m 0s:1.234s:12.35s:"
    assert joined(humanize_duration, [str(x) for x in frac]) == joined(humanize_duration, frac)
    assert joined(humanize_duration, [0, -1, 1, 1234567]) == "0s:-1s:1s:14d 6h 56m 7s:"


def test_humanize_functions_on_inf_and_nan() -> None:
    fns = (humanize, humanize1024, humanize_duration, humanize_timestamp)
    for inputs in ([math.inf, -math.inf, math.nan], ["+Inf", "-Inf", "NaN"]):
        out = "".join(f"{fn(x)}:" for x in inputs for fn in fns)
        assert out == "+Inf:+Inf:+Inf:+Inf:-Inf:-Inf:-Inf:-Inf:NaN:NaN:NaN:NaN:"


def test_humanize_percentage() -> None:
    text = (
        "{{ -0.22222 | humanizePercentage }}:{{ 0.0 | humanizePercentage }}:"
        "{{ 0.1234567 | humanizePercentage }}:{{ 1.23456 | humanizePercentage }}"
    )
    assert render(text) == "-22.22%:0%:12.35%:123.5%"
    assert (
        joined(humanize_percentage, [0, -1, 1, 1234567, 2**63 - 1])
        == "0%:-100%:100%:1.235e+08%:9.223e+20%:"
    )
    uints = [0, 1, 1234567, 2**64 - 1]
    assert joined(humanize_percentage, uints) == "0%:100%:1.235e+08%:1.845e+21%:"
    strings = '{{ "-0.22222" | humanizePercentage }}:{{ "0.0" | humanizePercentage }}'
    assert render(strings) == "-22.22%:0%"


def test_humanize_timestamp() -> None:
    assert joined(humanize_timestamp, [0, -1, 1, 1234567, 9223372036]) == (
        "1970-01-01 00:00:00 +0000 UTC:1969-12-31 23:59:59 +0000 UTC:"
        "1970-01-01 00:00:01 +0000 UTC:1970-01-15 06:56:07 +0000 UTC:"
        "2262-04-11 23:47:16 +0000 UTC:"
    )
    want = "2015-06-23 13:19:44.128 +0000 UTC"
    assert render("{{ 1435065584.128 | humanizeTimestamp }}") == want
    assert render('{{ "1435065584.128" | humanizeTimestamp }}') == want


def test_string_functions() -> None:
    assert render('{{ "aa bb CC" | title }}') == "Aa Bb CC"
    assert render('{{ "aa bb CC" | toUpper }}') == "AA BB CC"
    assert render('{{ "aA bB CC" | toLower }}') == "aa bb cc"
    assert render('{{ match "a+" "aa" }} {{ match "a+" "b" }}') == "true false"
    assert render('{{ reReplaceAll "(a)b" "x$1" "ab" }}') == "xa"
    assert render('{{ printf "%0.2f" (parseDuration "1h2m10ms") }}') == "3720.01"
    assert render("{{ 1 }}") == "1"
    assert render('{{ "<b>" }}') == "<b>"


@pytest.mark.parametrize(
    ("host", "port_stripped", "domain_stripped"),
    [
        ("foo.example.com", "foo.example.com", "foo"),
        ("foo.example.com:12345", "foo.example.com", "foo:12345"),
        ("192.0.2.1", "192.0.2.1", "192.0.2.1"),
        ("192.0.2.1:12345", "192.0.2.1", "192.0.2.1:12345"),
        ("2001:0DB8::1", "2001:0DB8::1", "2001:0DB8::1"),
        ("[2001:0DB8::1]:12345", "2001:0DB8::1", "[2001:0DB8::1]:12345"),
        ("[2001:0DB8::1]::12345", "[2001:0DB8::1]::12345", "[2001:0DB8::1]::12345"),
    ],
)
def test_strip_port_and_domain(host: str, port_stripped: str, domain_stripped: str) -> None:
    assert render("{{ $labels.h | stripPort }}", {"h": host}) == port_stripped
    assert render("{{ $labels.h | stripDomain }}", {"h": host}) == domain_stripped


def test_runtime_errors_render_as_prometheus_does() -> None:
    out = Template('{{ humanize "one" }}').expand({}, 0.0)
    assert out == (
        "<error expanding template: error calling humanize: "
        'strconv.ParseFloat: parsing "one": invalid syntax>'
    )


# -- alert data: $labels, $value, .Labels, .Value, $externalLabels ------------------------


def test_labels_value_and_external_labels() -> None:
    labels = {"route": "/chat", "instance": "bot-1:8080"}
    text = (
        "{{ $labels.route }} {{ .Labels.route }} {{ $value }} {{ .Value }} "
        "{{ $externalLabels.cluster }} {{ .ExternalLabels.cluster }} {{ $externalURL }}"
    )
    assert render(text, labels, 0.25) == "/chat /chat 0.25 0.25 eu-1 eu-1 http://cw:9317"


def test_value_prints_like_go() -> None:
    # Go's %v of float64: shortest digits, exponent from 1e+06 up and below 1e-4
    assert render("{{ $value }}", value=1234567.0) == "1.234567e+06"
    assert render("{{ $value }}", value=123456.0) == "123456"
    assert render("{{ $value }}", value=0.1 + 0.2) == "0.30000000000000004"
    assert render("{{ $value }}", value=0.00001) == "1e-05"
    assert render("{{ $value }}", value=math.inf) == "+Inf"
    assert render("{{ $value }}", value=math.nan) == "NaN"
    assert [go_float(x) for x in (100.0, -2.5, 1e21, 0.0001)] == ["100", "-2.5", "1e+21", "0.0001"]


def test_missing_label_is_empty_as_in_prometheus() -> None:
    assert render("[{{ $labels.nope }}]", {"a": "b"}) == "[]"
    assert render("[{{ $labels.nope | toUpper }}]", {"a": "b"}) == "[]"
    assert render('[{{ index $labels "nope" }}]', {"a": "b"}) == "[]"


def test_pipelines_and_printf() -> None:
    assert render("{{ $value | humanize }}", value=1234567.0) == "1.235M"
    assert render('{{ $value | printf "%.2f" }}', value=3.14159) == "3.14"
    assert render('{{ printf "%.1f%%" $value }}', value=12.345) == "12.3%"
    assert render("{{ $value | humanizePercentage }}", value=0.05) == "5%"
    assert render("{{ $value | humanizeDuration }}", value=3725.0) == "1h 2m 5s"
    assert render('{{ $labels.route | printf "%q" }}', {"route": "/chat"}) == '"/chat"'


def test_go_sprintf_verbs() -> None:
    assert go_sprintf("%d %s %v %5.1f|%-5s|%x %q %%", 3, "s", 1.5, 2.25, "ab", 255, "q") == (
        '3 s 1.5   2.2|ab   |ff "q" %'
    )
    assert go_sprintf("%d", 1.5) == "%!d(float64=1.5)"
    assert go_sprintf("%s") == "%!s(MISSING)"
    assert go_sprintf("x", 1) == "x%!(EXTRA int=1)"
    assert go_sprintf("%g %e %f", 1e6, 1e6, math.inf) == "1e+06 1.000000e+06 +Inf"


def test_if_else_with_range() -> None:
    text = "{{ if gt $value 10.0 }}high{{ else if gt $value 5.0 }}mid{{ else }}low{{ end }}"
    assert [render(text, value=v) for v in (20.0, 7.0, 1.0)] == ["high", "mid", "low"]
    assert render('{{ if eq $labels.severity "page" }}P{{ end }}', {"severity": "page"}) == "P"
    assert render("{{ if $labels.route }}route={{ $labels.route }}{{ end }}", {}) == ""
    with_text = "{{ with $labels.route }}on {{ . }}{{ else }}nowhere{{ end }}"
    assert render(with_text, {"route": "/a"}) == "on /a"
    assert render(with_text, {}) == "nowhere"
    labels = {"b": "2", "a": "1"}
    assert render("{{ range $k, $v := $labels }}{{ $k }}={{ $v }} {{ end }}", labels) == "a=1 b=2 "
    assert render("{{ if and (gt $value 1.0) (lt $value 3.0) }}in{{ end }}", value=2.0) == "in"
    assert render("{{ if not (eq $value 0.0) }}nz{{ end }}", value=2.0) == "nz"


def test_trim_markers_and_comments() -> None:
    assert render("a  {{- 1 -}}  b") == "a1b"
    assert render("a {{/* a comment */}}b") == "a b"
    assert render("x {{- /* c */ -}} y") == "xy"


def test_variables_can_be_declared() -> None:
    assert render("{{ $v := $value | humanize }}v={{ $v }}", value=2000.0) == "v=2k"


# -- load-time errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{{ humanise $value }}", "function 'humanise' not defined"),
        ("{{ $lables.route }}", "undefined variable '$lables'"),
        ("{{ .Labes.route }}", "can't evaluate field Labes"),
        ("{{ $value", "unclosed action"),
        ("{{ if $value }}x", "unexpected EOF"),
        ("{{ end }}", "unexpected {{end}}"),
        ("{{ gt $value 10 }}", "incompatible types for comparison"),
        ('{{ query "up" }}', "not supported"),
        ("{{ humanize }}", "wrong number of args for humanize: want 1 got 0"),
        ("{{ toUpper $value }}", "expected string; got float64"),
        ('{{ $value "x" }}', "can't give argument to non-function"),
        ('{{ template "x" }}', "not supported"),
        ("{{ $x }}", "undefined variable '$x'"),
        ("{{ if 1 }}{{ $x := 1 }}{{ end }}{{ $x }}", "undefined variable '$x'"),
    ],
)
def test_parse_errors(text: str, reason: str) -> None:
    with pytest.raises(TemplateError) as info:
        Template(text)
    assert reason in str(info.value)


def test_parse_error_names_line_and_column() -> None:
    with pytest.raises(TemplateError) as info:
        Template("ok\n  {{ nosuchfunc }}")
    assert str(info.value).startswith("line 2, column 6:")


def test_go_comparison_and_integer_quirks() -> None:
    # Go's gt is !le and ge is !lt: with NaN both are true
    assert render(
        "{{ gt $value 1.0 }} {{ ge $value 1.0 }} {{ lt $value 1.0 }}", value=math.nan
    ) == ("true true false")
    # int64(1e21) is MinInt64 in Go, and Go's % and / truncate toward zero
    assert humanize_duration(1e21) == "-106751991167300d -15h -30m -8s"


def test_to_time_prints_as_go_time() -> None:
    assert (
        render("{{ $value | toTime }}", value=1435065584.128) == "2015-06-23 13:19:44.128 +0000 UTC"
    )
