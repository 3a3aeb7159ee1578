"""Confidence intervals of a mean over a few independent repeats (seeds): Student's t.

With three to five seeds per arm a normal interval (±1.96 standard errors) is far too
narrow; the t-interval ``mean ± t_{(1+c)/2, n-1} · s / √n`` (``s`` the sample standard
deviation) is the textbook one for a mean of normal-ish values with unknown variance. The t
quantile is computed here (regularized incomplete beta, then bisection), so no SciPy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MeanInterval", "student_t_cdf", "student_t_quantile", "t_interval"]


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    # Lentz's method for the continued fraction of the incomplete beta function.
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return result


def _regularized_beta(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom.

    >>> round(student_t_cdf(0.0, 3), 6), round(student_t_cdf(12.706205, 1), 4)
    (0.5, 0.975)
    """
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    tail = 0.5 * _regularized_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def student_t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom.

    >>> round(student_t_quantile(0.975, 2), 4), round(student_t_quantile(0.975, 30), 4)
    (4.3027, 2.0423)
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if p < 0.5:
        return -student_t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while student_t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if student_t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low < 1e-12:
            break
    return (low + high) / 2.0


@dataclass(frozen=True)
class MeanInterval:
    """A mean over ``n`` repeats and its two-sided t-interval (None below two repeats)."""

    n: int
    mean: float | None
    low: float | None
    high: float | None
    std: float | None
    confidence: float = 0.95

    @property
    def half_width(self) -> float | None:
        if self.mean is None or self.high is None:
            return None
        return self.high - self.mean


def t_interval(values: Sequence[float | None], confidence: float = 0.95) -> MeanInterval:
    """Mean of ``values`` (None left out) with its Student-t interval at ``confidence``.

    >>> r = t_interval([1.0, 2.0, 3.0])
    >>> (r.n, r.mean, round(r.low, 4), round(r.high, 4))
    (3, 2.0, -0.4841, 4.4841)
    >>> t_interval([5.0]).low is None
    True
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    present = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(present)
    if n == 0:
        return MeanInterval(0, None, None, None, None, confidence)
    mean = math.fsum(present) / n
    if n == 1:
        return MeanInterval(1, mean, None, None, None, confidence)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in present) / (n - 1))
    half = student_t_quantile((1.0 + confidence) / 2.0, n - 1) * std / math.sqrt(n)
    return MeanInterval(n, mean, mean - half, mean + half, std, confidence)
