"""Smoke tests of the benchmark scripts: a step or two at small sizes.

The numbers in docs/benchmarks.md come from full runs of these scripts;
here each one runs as documented, in a subprocess, and its tables are read.
"""

import os
import subprocess
import sys

from absl.testing import absltest

import keras_opt
from tests import test_case

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(script, *args):
    output = subprocess.run(
        [sys.executable, os.path.join(_ROOT, "benchmarks", script), *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    ).stdout
    return output.splitlines()


def _table_rows(lines, first_header):
    """The rows of the markdown table whose header starts with a cell."""
    start = next(
        i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |")
    )
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


class BenchmarksTest(test_case.TestCase):
    def test_large_d_benchmark(self):
        methods = ["plain", "gram_schmidt", "stiefel"]
        for jit_compile in (False, True):
            args = ["--dims", "96", "--repeats", "1", "--methods", *methods]
            lines = _run(
                "large_d_benchmark.py",
                *args,
                *(["--jit_compile"] if jit_compile else []),
            )
            self.assertIn(f"XLA: {'on' if jit_compile else 'off'}", lines)
            rows = _table_rows(lines, "d")
            self.assertEqual([row[1] for row in rows], methods)
            for row in rows:
                self.assertGreater(float(row[2]) + float(row[6]), 0.0)
                if row[1] != "plain":
                    self.assertLessEqual(float(row[5]), 1e-5)

    def test_orthogonalizers_benchmark_with_xla(self):
        lines = _run(
            "orthogonalizers_benchmark.py",
            "--dimensions",
            "27,64",
            "--repeats",
            "1",
            "--steps",
            "1",
            "--methods",
            "gram_schmidt,lowdin",
            "--jit_compile",
        )
        maps = _table_rows(lines, "orthogonalizer")
        names = {row[0] for row in maps}
        self.assertEqual(len(maps), 2 * len(names))
        for row in maps:
            orthogonalizer = keras_opt.orthogonalizers.get(row[0])
            # OGD's map is the identity: its optimizer keeps P orthogonal.
            if orthogonalizer.is_exact and not orthogonalizer.is_stiefel:
                self.assertLessEqual(float(row[4]), 1e-5, row)
        cnn6 = {row[0]: row for row in _table_rows(lines, "CNN-6 built with")}
        self.assertEqual(list(cnn6), ["plain", "gram_schmidt", "lowdin"])
        # Löwdin opts out of XLA (supports_jit=False): Keras falls back.
        self.assertEqual(cnn6["gram_schmidt"][1], "on")
        self.assertEqual(cnn6["lowdin"][1], "off")
        self.assertEqual(float(cnn6["plain"][3]), 1.0)

    def test_backend_step_benchmark(self):
        lines = _run(
            "backend_step_benchmark.py",
            "--steps=1",
            "--rounds=1",
            "--batch_size=8",
            "--methods=plain,gram_schmidt",
        )
        rows = _table_rows(lines, "backend")
        self.assertEqual(
            [(row[0], row[1]) for row in rows],
            [
                ("tensorflow", "plain"),
                ("tensorflow", "gram_schmidt"),
                ("jax", "plain"),
                ("jax", "gram_schmidt"),
            ],
        )
        for row in rows:
            self.assertGreater(float(row[2]), 0.0)
            if row[1] == "plain":
                self.assertEqual(row[3], "1.00")


if __name__ == "__main__":
    absltest.main()
