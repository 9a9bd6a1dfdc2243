"""Paired differences with Student-t confidence intervals, numpy only.

The example scripts compare an OPT method with the plain network over the
same seeds. `paired_difference(opt, plain)` gives the mean of the per-seed
differences opt − plain and its two-sided Student-t confidence interval
(n − 1 degrees of freedom, the sample standard deviation of the
differences); `verdict` calls a method better or worse only when that
interval excludes 0.

The t quantile is computed exactly, not read from a table: the
distribution function of Student's t with an integer number of degrees of
freedom ν is a finite trigonometric sum (Abramowitz & Stegun 26.7.3 and
26.7.4), inverted by bisection to full float64 precision.

Example:

```python
difference = paired_difference([0.89, 0.88, 0.88], [0.88, 0.89, 0.87])
difference["mean"], difference["low"], difference["high"]
verdict(difference)  # "no difference shown"
```
"""

import math

import numpy as np


def t_two_sided(t, df):
    """P(|T| ≤ t) for Student's t with `df` (a positive integer) d.o.f."""
    if df < 1 or int(df) != df:
        raise ValueError(
            "Invalid value for argument `df`. Expected a positive integer. "
            f"Received: df={df}"
        )
    t = abs(float(t))
    if math.isinf(t):
        return 1.0
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    # A&S 26.7.3 (odd df) and 26.7.4 (even df): df // 2 terms of a series
    # in cos²θ whose ratios are 2k/(2k + 1) (odd) or (2k − 1)/(2k) (even).
    odd = df % 2
    terms = df // 2
    term, total = 1.0, 1.0 if terms else 0.0
    for k in range(1, terms):
        term *= c2 * (2 * k - 1 + odd) / (2 * k + odd)
        total += term
    if odd:
        return (2 / math.pi) * (
            theta + math.sin(theta) * math.cos(theta) * total
        )
    return math.sin(theta) * total


def t_cdf(t, df):
    """P(T ≤ t) for Student's t with `df` degrees of freedom."""
    half = 0.5 * t_two_sided(t, df)
    return 0.5 + half if t >= 0 else 0.5 - half


def t_quantile(p, df):
    """The `p` quantile of Student's t with `df` degrees of freedom.

    Exact to float64 precision (bisection on `t_cdf`), 0 < p < 1.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(
            "Invalid value for argument `p`. Expected 0 < p < 1. "
            f"Received: p={p}"
        )
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, 2.0 * high
    for _ in range(200):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def paired_difference(values, baseline, confidence=0.95):
    """Mean of `values − baseline` (paired) with a Student-t interval.

    Args:
        values, baseline: equally long sequences, entry i of both from
            the same seed.
        confidence: the interval's two-sided coverage.

    Returns:
        A dict: `n`, `mean`, `std` (sample standard deviation of the
        differences, ddof = 1), `t` (the quantile used), `low` and `high`
        (the interval; `None` when n < 2) and `confidence`.
    """
    values = np.asarray(values, np.float64)
    baseline = np.asarray(baseline, np.float64)
    if values.shape != baseline.shape or values.ndim != 1 or not len(values):
        raise ValueError(
            "Invalid arguments `values` and `baseline`. Expected two "
            "non-empty 1-D sequences of the same length (one entry per "
            f"seed). Received shapes: {values.shape} and {baseline.shape}"
        )
    differences = values - baseline
    n = len(differences)
    result = {"n": n, "mean": float(differences.mean()), "std": None,
              "t": None, "low": None, "high": None,
              "confidence": confidence}
    if n >= 2:
        std = float(differences.std(ddof=1))
        t = t_quantile(0.5 + confidence / 2, n - 1)
        half = t * std / math.sqrt(n)
        result.update(std=std, t=t, low=result["mean"] - half,
                      high=result["mean"] + half)
    return result


def verdict(difference):
    """"better" / "worse" when the interval excludes 0, else no claim."""
    if difference["low"] is None:
        return "one seed: no interval"
    if difference["low"] > 0:
        return "better"
    if difference["high"] < 0:
        return "worse"
    return "no difference shown"


def paired_by_seed(values, seeds, baseline_values, baseline_seeds):
    """The entries of two per-seed lists on their common seeds, in order.

    Returns:
        `(common_seeds, values, baseline_values)`, each a list.
    """
    by_seed = dict(zip(baseline_seeds, baseline_values))
    common = [seed for seed in seeds if seed in by_seed]
    mine = dict(zip(seeds, values))
    return (common, [mine[s] for s in common],
            [by_seed[s] for s in common])
