"""Go's float64 math, where Python's differs: x/0 is ±Inf (never an exception), Pow and Log
are Go's own algorithms (so `x^2` and `ln(x)` agree with Prometheus to the last bit), and
Max/Min order NaN, ±Inf and ±0 the way Go does. Also Go's sort.Sort, whose order of equal
elements sort() and sort_desc() show."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

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


# -- Go's sort.Sort (pdqsort, Go 1.19) -----------------------------------------------------
#
# Prometheus sorts with sort.Sort, which is not stable: which of several equal values comes
# first follows the algorithm, so sort() and sort_desc() run the same algorithm here.


def go_sort(data: list[Any], less: Callable[[Any, Any], bool]) -> None:
    """Go 1.19's sort.Sort on `data` in place, `less(x, y)` being Interface.Less."""
    n = len(data)
    if n > 1:
        _Pdq(data, less).pdqsort(0, n, n.bit_length())


class _Pdq:
    __slots__ = ("d", "lt")

    def __init__(self, data: list[Any], less: Callable[[Any, Any], bool]) -> None:
        self.d = data
        self.lt = less

    def less(self, i: int, j: int) -> bool:
        return self.lt(self.d[i], self.d[j])

    def swap(self, i: int, j: int) -> None:
        d = self.d
        d[i], d[j] = d[j], d[i]

    def insertion_sort(self, a: int, b: int) -> None:
        for i in range(a + 1, b):
            j = i
            while j > a and self.less(j, j - 1):
                self.swap(j, j - 1)
                j -= 1

    def sift_down(self, lo: int, hi: int, first: int) -> None:
        root = lo
        while True:
            child = 2 * root + 1
            if child >= hi:
                return
            if child + 1 < hi and self.less(first + child, first + child + 1):
                child += 1
            if not self.less(first + root, first + child):
                return
            self.swap(first + root, first + child)
            root = child

    def heap_sort(self, a: int, b: int) -> None:
        first, hi = a, b - a
        for i in range((hi - 1) // 2, -1, -1):
            self.sift_down(i, hi, first)
        for i in range(hi - 1, -1, -1):
            self.swap(first, first + i)
            self.sift_down(0, i, first)

    def pdqsort(self, a: int, b: int, limit: int) -> None:
        was_balanced = was_partitioned = True
        while True:
            length = b - a
            if length <= 12:
                self.insertion_sort(a, b)
                return
            if limit == 0:
                self.heap_sort(a, b)
                return
            if not was_balanced:
                self.break_patterns(a, b)
                limit -= 1
            pivot, hint = self.choose_pivot(a, b)
            if hint == _DECREASING:
                self.reverse_range(a, b)
                pivot = (b - 1) - (pivot - a)
                hint = _INCREASING
            if (
                was_balanced
                and was_partitioned
                and hint == _INCREASING
                and self.partial_insertion_sort(a, b)
            ):
                return
            if a > 0 and not self.less(a - 1, pivot):
                a = self.partition_equal(a, b, pivot)
                continue
            mid, was_partitioned = self.partition(a, b, pivot)
            left, right = mid - a, b - mid
            threshold = length // 8
            if left < right:
                was_balanced = left >= threshold
                self.pdqsort(a, mid, limit)
                a = mid + 1
            else:
                was_balanced = right >= threshold
                self.pdqsort(mid + 1, b, limit)
                b = mid

    def partition(self, a: int, b: int, pivot: int) -> tuple[int, bool]:
        self.swap(a, pivot)
        i, j = a + 1, b - 1
        while i <= j and self.less(i, a):
            i += 1
        while i <= j and not self.less(j, a):
            j -= 1
        if i > j:
            self.swap(j, a)
            return j, True
        self.swap(i, j)
        i += 1
        j -= 1
        while True:
            while i <= j and self.less(i, a):
                i += 1
            while i <= j and not self.less(j, a):
                j -= 1
            if i > j:
                break
            self.swap(i, j)
            i += 1
            j -= 1
        self.swap(j, a)
        return j, False

    def partition_equal(self, a: int, b: int, pivot: int) -> int:
        self.swap(a, pivot)
        i, j = a + 1, b - 1
        while True:
            while i <= j and not self.less(a, i):
                i += 1
            while i <= j and self.less(a, j):
                j -= 1
            if i > j:
                return i
            self.swap(i, j)
            i += 1
            j -= 1

    def partial_insertion_sort(self, a: int, b: int) -> bool:
        i = a + 1
        for _ in range(5):
            while i < b and not self.less(i, i - 1):
                i += 1
            if i == b:
                return True
            if b - a < 50:
                return False
            self.swap(i, i - 1)
            if i - a >= 2:
                j = i - 1
                while j >= 1 and self.less(j, j - 1):
                    self.swap(j, j - 1)
                    j -= 1
            if b - i >= 2:
                j = i + 1
                while j < b and self.less(j, j - 1):
                    self.swap(j, j - 1)
                    j += 1
        return False

    def break_patterns(self, a: int, b: int) -> None:
        length = b - a
        if length >= 8:
            random = length
            modulus = 1 << length.bit_length()
            for idx in range(a + (length // 4) * 2 - 1, a + (length // 4) * 2 + 2):
                random ^= (random << 13) & _U64
                random ^= random >> 17
                random ^= (random << 5) & _U64
                other = random & (modulus - 1)
                if other >= length:
                    other -= length
                self.swap(idx, a + other)

    def choose_pivot(self, a: int, b: int) -> tuple[int, int]:
        n = b - a
        swaps = [0]
        i, j, k = a + n // 4 * 1, a + n // 4 * 2, a + n // 4 * 3
        if n >= 8:
            if n >= 50:
                i = self.median(i - 1, i, i + 1, swaps)
                j = self.median(j - 1, j, j + 1, swaps)
                k = self.median(k - 1, k, k + 1, swaps)
            j = self.median(i, j, k, swaps)
        if swaps[0] == 0:
            return j, _INCREASING
        if swaps[0] == 12:
            return j, _DECREASING
        return j, _UNKNOWN

    def median(self, a: int, b: int, c: int, swaps: list[int]) -> int:
        if self.less(b, a):
            swaps[0] += 1
            a, b = b, a
        if self.less(c, b):
            swaps[0] += 1
            b, c = c, b
        if self.less(b, a):
            swaps[0] += 1
            a, b = b, a
        return b

    def reverse_range(self, a: int, b: int) -> None:
        i, j = a, b - 1
        while i < j:
            self.swap(i, j)
            i += 1
            j -= 1


_UNKNOWN, _INCREASING, _DECREASING = 0, 1, 2
_U64 = (1 << 64) - 1
