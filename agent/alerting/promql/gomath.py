"""Go's float64 math, where Python's differs: x/0 is ±Inf (never an exception), Pow and Log
are Go's own algorithms (so `x^2` and `ln(x)` agree with Prometheus to the last bit), and
Max/Min order NaN, ±Inf and ±0 the way Go does."""

from __future__ import annotations

import math
from collections.abc import Callable

NAN = float("nan")
INF = float("inf")


def go_div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0:
            return NAN
        return math.copysign(INF, a) * math.copysign(1.0, b)


def go_mod(a: float, b: float) -> float:
    try:
        return math.fmod(a, b)
    except ValueError:
        return NAN


def _is_odd_int(y: float) -> bool:
    return math.isfinite(y) and y == math.floor(y) and int(y) % 2 == 1


def _safe(f: Callable[[float], float]) -> Callable[[float], float]:
    """A libm function with Go's answers instead of exceptions (sqrt(-1) is NaN)."""

    def g(x: float) -> float:
        try:
            return f(x)
        except ValueError:
            return NAN
        except OverflowError:
            return INF

    return g


go_exp = _safe(math.exp)
go_sqrt = _safe(math.sqrt)


def go_pow(x: float, y: float) -> float:
    """Go's math.Pow: integer powers by repeated squaring (so x^2 matches to the bit)."""
    if y == 0 or x == 1:
        return 1.0
    if y == 1:
        return x
    if x != x or y != y:
        return NAN
    if x == 0 or math.isinf(x) or math.isinf(y) or abs(y) >= 2**63:
        return _pow(x, y)
    if y == 0.5:
        return math.sqrt(x) if x >= 0 else NAN
    if y == -0.5:
        return 1 / math.sqrt(x) if x > 0 else NAN
    yf, yi = math.modf(abs(y))
    if yf != 0 and x < 0:
        return NAN
    a1 = 1.0
    ae = 0
    if yf != 0:
        if yf > 0.5:
            yf -= 1
            yi += 1
        a1 = go_exp(yf * go_log(x))
    x1, xe = math.frexp(x)
    i = int(yi)
    while i != 0:
        if xe < -(1 << 12) or xe > (1 << 12):
            ae += xe
            break
        if i & 1 == 1:
            a1 *= x1
            ae += xe
        x1 *= x1
        xe <<= 1
        if x1 < 0.5:
            x1 += x1
            xe -= 1
        i >>= 1
    if y < 0:
        a1 = 1 / a1
        ae = -ae
    try:
        return math.ldexp(a1, ae)
    except OverflowError:
        return math.copysign(INF, a1)


def _pow(a: float, b: float) -> float:
    """libm's pow with Go's answers for the special cases Python raises on."""
    try:
        return math.pow(a, b)
    except (ValueError, ZeroDivisionError):
        if a == 0 and b < 0:
            return math.copysign(INF, a) if _is_odd_int(b) else INF
        return NAN
    except OverflowError:
        return -INF if a < 0 and _is_odd_int(b) else INF


def go_floor(x: float) -> float:
    if not math.isfinite(x):
        return x
    r = float(math.floor(x))
    return math.copysign(0.0, x) if r == 0 else r


def go_ceil(x: float) -> float:
    """Go's Ceil: -Floor(-x), so ceil(-0.5) is -0."""
    return -go_floor(-x)


def go_log(x: float) -> float:
    """Go's math.Log (FreeBSD's e_log.c algorithm), which can differ from libm in the last bit."""
    if x != x or x == INF:
        return x
    if x < 0:
        return NAN
    if x == 0:
        return -INF
    f1, ki = math.frexp(x)
    if f1 < math.sqrt(2) / 2:
        f1 *= 2
        ki -= 1
    f = f1 - 1
    k = float(ki)
    s = f / (2 + f)
    s2 = s * s
    s4 = s2 * s2
    t1 = s2 * (
        6.666666666666735130e-01
        + s4
        * (
            2.857142874366239149e-01
            + s4 * (1.818357216161805012e-01 + s4 * 1.479819860511658591e-01)
        )
    )
    t2 = s4 * (
        3.999999999940941908e-01 + s4 * (2.222219843214978396e-01 + s4 * 1.531383769920937332e-01)
    )
    r = t1 + t2
    hfsq = 0.5 * f * f
    return k * 6.93147180369123816490e-01 - (
        (hfsq - (s * (hfsq + r) + k * 1.90821492927058770002e-10)) - f
    )


# Go evaluates 1/Ln2 and 1/Ln10 as exact constants, then rounds once.
_INV_LN2 = 1.4426950408889634
_INV_LN10 = 0.4342944819032518


def go_log2(x: float) -> float:
    """Go's math.Log2: exact for powers of two, else Log(frac)/Ln2 + exp."""
    if x != x or x <= 0 or math.isinf(x):
        return go_log(x)
    frac, exp = math.frexp(x)
    if frac == 0.5:
        return float(exp - 1)
    return go_log(frac) * _INV_LN2 + float(exp)


def go_log10(x: float) -> float:
    """Go's math.Log10: Log(x) * (1/Ln10)."""
    return go_log(x) * _INV_LN10


def go_max(x: float, y: float) -> float:
    if x == INF or y == INF:
        return INF
    if x != x or y != y:
        return NAN
    if x == 0 and x == y:
        return y if math.copysign(1, x) < 0 else x
    return x if x > y else y


def go_min(x: float, y: float) -> float:
    if x == -INF or y == -INF:
        return -INF
    if x != x or y != y:
        return NAN
    if x == 0 and x == y:
        return x if math.copysign(1, x) < 0 else y
    return x if x < y else y
