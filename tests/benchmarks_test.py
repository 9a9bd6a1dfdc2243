"""Smoke tests of the benchmark scripts: a step or two at small sizes.

The numbers in docs/benchmarks.md come from full runs of these scripts;
here each one runs as documented, in a subprocess, and its tables are read.
"""

import json
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
                step, ratio, matmul = (float(row[i]) for i in (2, 3, 6))
                # A 4096² float32 matmul takes ≥ 5 ms on any CPU here.
                self.assertGreater(matmul, 0.0, str(row))
                # The ratio column is step / matmul, up to the printed
                # rounding (±0.005 on each of the three numbers).
                self.assertBetween(
                    ratio,
                    max(step - 0.005, 0.0) / (matmul + 0.005) - 0.005,
                    (step + 0.005) / max(matmul - 0.005, 1e-9) + 0.005,
                )
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
                self.assertLessEqual(float(row[4]), 1e-5, str(row))
        cnn6 = {row[0]: row for row in _table_rows(lines, "CNN-6 built with")}
        self.assertEqual(list(cnn6), ["plain", "gram_schmidt", "lowdin"])
        # Löwdin opts out of XLA (supports_jit=False): Keras falls back.
        self.assertEqual(cnn6["gram_schmidt"][1], "on")
        self.assertEqual(cnn6["lowdin"][1], "off")
        # Ratios are against the plain network's row (step in whole ms and
        # ratios printed to 2 decimals; peak RSS in whole MiB).
        for method, row in cnn6.items():
            for value, ratio in ((2, 3), (5, 6)):
                self.assertRoundedRatio(
                    float(row[ratio]), float(row[value]),
                    float(cnn6["plain"][value]), method)

    def test_main_job_profile(self):
        args = ["--synthetic", "640", "--epochs", "2", "--max_steps", "3",
                "--repeats", "1"]
        rows = _table_rows(
            _run("main_job_profile.py", *args, "--variants",
                 "memory,memory_no_test,spe8"), "variant")
        self.assertEqual([row[0] for row in rows],
                         ["memory", "memory_no_test", "spe8"])
        for row in rows:
            self.assertRoundedRatio(float(row[3]), float(row[2]),
                                    float(rows[0][2]), row[0], scale=0.0005)
            self.assertGreater(float(row[5]), 0.0, str(row))  # CPU seconds
            self.assertEqual(row[8], "6", str(row))  # 2 epochs of 3 batches
        self.assertEqual(float(rows[1][7]), 0.0)  # no test evaluation
        parts = _table_rows(_run("main_job_profile.py", *args,
                                 "--interleaved"), "part (median of rounds 2+)")
        self.assertLen(parts, 6)
        pipelines = _table_rows(_run("main_job_profile.py", *args,
                                     "--pipeline_only"), "pipeline")
        self.assertEqual([row[0] for row in pipelines], ["tfds", "memory"])

    def test_linalg_kernels_benchmark(self):
        for jit_compile in ([], ["--jit_compile"]):
            rows = _table_rows(
                _run("linalg_kernels_benchmark.py", "--dims", "48",
                     "--repeats", "1", *jit_compile), "d")
            kernels = {row[1]: row for row in rows}
            self.assertEqual(set(kernels), {
                "matmul", "qr", "cholesky_qr", "cholesky",
                "triangular_solve", "lu_solve", "svd"})
            for row in rows:  # seconds to 4 significant digits
                exact = float(row[2]) / float(kernels["matmul"][2])
                self.assertBetween(float(row[3]), exact * 0.999 - 0.005,
                                   exact * 1.001 + 0.005, str(row))

    def assertRoundedRatio(self, ratio, value, base, msg, scale=0.5):
        """`ratio` = value / base, printed rounded: ±0.005 on the ratio,
        ±`scale` on value and base."""
        exact = value / base
        error = 0.005 + scale * (1 + exact) / (base - scale)
        self.assertBetween(ratio, exact - error, exact + error, msg)

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

    def test_large_d_benchmark_with_blocks(self):
        methods = ["gram_schmidt", "stiefel"]
        lines = _run(
            "large_d_benchmark.py", "--dims", "96", "--repeats", "1",
            "--block_size", "16", "--methods", *methods,
        )
        self.assertIn("block_size: 16", lines)
        rows = _table_rows(lines, "d")
        self.assertEqual([row[1] for row in rows], methods)
        for row in rows:
            self.assertLessEqual(float(row[5]), 1e-5)

    def test_block_size_benchmark_report(self):
        # The table and the plot come from the JSON alone.
        directory = self.get_temp_dir()
        paths = {
            name: os.path.join(directory, name)
            for name in ("results.json", "doc.md", "plot.png")
        }
        stats = {"mean": 0.8, "std": 0.01, "values": [0.79, 0.81]}
        rows = {
            label: {
                "command": f"python -m examples.gcn {label}",
                "test_accuracy": stats,
                "val_accuracy": stats,
                "step_s": step,
                "paper_params": 10,
            }
            for label, step in (("b=8", 0.01), ("full", 0.04))
        }
        with open(paths["results.json"], "w") as f:
            json.dump({"tasks": {"gcn": rows}}, f)
        with open(paths["doc.md"], "w") as f:
            f.write("# Benchmarks\n\nkept\n")
        for _ in range(2):  # a second report replaces the first
            _run(
                "block_size_benchmark.py", "--report",
                "--json", paths["results.json"], "--doc", paths["doc.md"],
                "--plot", paths["plot.png"],
            )
        with open(paths["doc.md"]) as f:
            text = f.read()
        self.assertEqual(text.count("block_size_benchmark:start"), 1)
        self.assertIn("kept", text)
        self.assertIn("| b=8 | 2 | 80.0 ± 1.0 | 80.0 ± 1.0 | +0.00 | 10.0 "
                      "| 0.25 | 10 |", text)
        self.assertGreater(os.path.getsize(paths["plot.png"]), 1000)


if __name__ == "__main__":
    absltest.main()
