"""Tests of examples/stats.py against closed forms, tables and hand values."""

import math

import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from examples import stats
from tests import test_case

# Two-sided 95 % critical values of Student's t (the 0.975 quantile), as
# printed to 3 decimals in every statistics table (e.g. NIST/SEMATECH
# e-Handbook of Statistical Methods, table 1.4.2.2).
T_TABLE_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571,
               6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
               20: 2.086, 30: 2.042, 100: 1.984}


class TQuantileTest(test_case.TestCase):
    @parameterized.parameters(sorted(T_TABLE_975.items()))
    def test_table(self, df, value):
        self.assertAlmostEqual(stats.t_quantile(0.975, df), value, delta=5e-4)

    @parameterized.parameters(0.6, 0.9, 0.975, 0.995, 0.9999)
    def test_closed_forms_for_one_and_two_degrees(self, p):
        # df = 1 is Cauchy; df = 2 has t = (2p − 1) / sqrt(2p(1 − p)).
        self.assertAllClose(stats.t_quantile(p, 1),
                            math.tan(math.pi * (p - 0.5)), rtol=1e-12)
        self.assertAllClose(stats.t_quantile(p, 2),
                            (2 * p - 1) / math.sqrt(2 * p * (1 - p)),
                            rtol=1e-12)

    def test_cdf_of_three_degrees_closed_form(self):
        for t in (-4.0, -0.3, 0.0, 0.7, 2.5, 30.0):
            theta = math.atan(t / math.sqrt(3))
            expected = 0.5 + (theta + math.sin(theta) * math.cos(theta)) / math.pi
            self.assertAllClose(stats.t_cdf(t, 3), expected, rtol=1e-13)

    def test_symmetry_and_normal_limit(self):
        for df in (1, 4, 9):
            self.assertAllClose(stats.t_quantile(0.05, df),
                                -stats.t_quantile(0.95, df), rtol=1e-12)
        self.assertEqual(stats.t_quantile(0.5, 7), 0.0)
        # Large df: z + (z³ + z) / (4 df) + O(1/df²), z = 1.959964.
        z = 1.959963985
        self.assertAlmostEqual(stats.t_quantile(0.975, 20_000),
                               z + (z**3 + z) / 80_000, delta=1e-8)

    def test_coverage_by_simulation(self):
        # The 95 % interval of n = 4 normal samples covers the mean in 95 %
        # of 40,000 draws (binomial sd 0.0011); the normal quantile 1.96
        # would cover only about 86 %.
        samples = np.random.default_rng(0).normal(size=(40_000, 4))
        t = samples.mean(1) / (samples.std(1, ddof=1) / 2)
        coverage = np.mean(np.abs(t) <= stats.t_quantile(0.975, 3))
        self.assertAlmostEqual(coverage, 0.95, delta=0.004)

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "`p`"):
            stats.t_quantile(1.0, 3)
        with self.assertRaisesRegex(ValueError, "`df`"):
            stats.t_cdf(1.0, 2.5)


class PairedDifferenceTest(test_case.TestCase):
    def test_hand_computed_interval(self):
        # Differences 2, 3, 2: mean 7/3, sd sqrt(1/3), se 1/3, t(0.975, 2)
        # = 4.302653, half-width 1.434218.
        result = stats.paired_difference([3, 5, 4], [1, 2, 2])
        self.assertEqual(result["n"], 3)
        self.assertAllClose(result["mean"], 7 / 3)
        self.assertAllClose(result["std"], math.sqrt(1 / 3))
        self.assertAllClose(result["low"], 7 / 3 - 1.434218, atol=1e-6)
        self.assertAllClose(result["high"], 7 / 3 + 1.434218, atol=1e-6)
        self.assertEqual(stats.verdict(result), "better")

    def test_verdicts(self):
        self.assertEqual(
            stats.verdict(stats.paired_difference([1, 2, 2], [3, 5, 4])),
            "worse")
        self.assertEqual(
            stats.verdict(stats.paired_difference([1, 3, 2], [2, 2, 2])),
            "no difference shown")
        one = stats.paired_difference([0.9], [0.8])
        self.assertIsNone(one["low"])
        self.assertAllClose(one["mean"], 0.1)
        self.assertEqual(stats.verdict(one), "one seed: no interval")

    def test_confidence_level(self):
        wide = stats.paired_difference([3, 5, 4], [1, 2, 2], confidence=0.99)
        narrow = stats.paired_difference([3, 5, 4], [1, 2, 2])
        self.assertGreater(narrow["low"], wide["low"])
        self.assertAllClose(wide["t"], stats.t_quantile(0.995, 2))

    def test_mismatched_lengths(self):
        with self.assertRaisesRegex(ValueError, "same length"):
            stats.paired_difference([1, 2], [1, 2, 3])

    def test_paired_by_seed(self):
        seeds, mine, base = stats.paired_by_seed(
            [0.5, 0.6, 0.7], [2, 0, 1], [0.1, 0.2, 0.3, 0.4], [0, 1, 2, 3]
        )
        self.assertEqual(seeds, [2, 0, 1])
        self.assertEqual(mine, [0.5, 0.6, 0.7])
        self.assertEqual(base, [0.3, 0.1, 0.2])


if __name__ == "__main__":
    absltest.main()
