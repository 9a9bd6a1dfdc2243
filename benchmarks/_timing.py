"""Timing helpers shared by the benchmark scripts."""

import statistics
import time


def median_seconds(function, repeats, warmups=1):
    """The median wall time of `repeats` calls of `function`, after warm-ups."""
    for _ in range(warmups):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
