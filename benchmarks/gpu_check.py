"""Checks the keras.ops core on a GPU with the JAX backend, and times it.

TensorFlow is not needed: the core of keras_opt uses `keras.ops` only. Run on
a machine with a GPU, JAX and Keras:

    KERAS_BACKEND=jax python3 benchmarks/gpu_check.py --out /tmp/gpu

1. Runs the core test files (linalg, orthogonalizers, layers) under pytest
   on the JAX backend, float64 enabled, TF32 off (`highest` precision).
2. Times forward + backward of every orthogonalizer (jit-compiled) for
   d ∈ {27, 576, 1024, 2304}, float32, and reports max |RᵀR − I|.
3. Times one CNN-6 training step (batch 128) with plain Conv2D and with OPT
   layers of several methods.
Writes `gpu_report.md` and `pytest.log` into `--out`.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

os.environ["KERAS_BACKEND"] = "jax"
os.environ["JAX_ENABLE_X64"] = "1"
os.environ["JAX_DEFAULT_MATMUL_PRECISION"] = "highest"
os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def run_tests(out, workers):
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/linalg_test.py",
        "tests/orthogonalizers_test.py",
        "tests/layers",
    ]
    if workers > 1:
        command += ["-n", str(workers)]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    with open(os.path.join(out, "pytest.log"), "w") as f:
        f.write(result.stdout + result.stderr)
    tail = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
    return f"{tail} (exit {result.returncode}, {time.perf_counter() - start:.0f} s)"


def time_maps(dimensions, repeats):
    import jax
    import numpy as np
    from keras import ops

    from keras_opt import linalg
    from keras_opt import orthogonalizers

    rows = []
    from benchmarks.cnn6 import orthogonalizer_names

    for name in orthogonalizer_names(lambda c: c.is_exact or c.is_stiefel):
        orthogonalizer = orthogonalizers.get(name)
        for d in dimensions:
            rng = np.random.default_rng(d)
            p = jax.numpy.asarray(rng.standard_normal((d, d)), dtype="float32")
            c = jax.numpy.asarray(rng.standard_normal((d, d)), dtype="float32")
            step = jax.jit(jax.grad(lambda p: ops.sum(orthogonalizer(p) * c)))
            start = time.perf_counter()
            step(p).block_until_ready()
            first = time.perf_counter() - start
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                step(p).block_until_ready()
                times.append(time.perf_counter() - start)
            error = float(linalg.orthogonality_error(orthogonalizer(p)))
            rows.append((name, d, first, statistics.median(times), error))
    return rows


def time_cnn6(methods, steps):
    import keras
    import numpy as np

    from benchmarks.cnn6 import build_cnn6

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (128, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 100, (128,))
    results = {}
    for method in ["plain"] + methods:
        keras.utils.set_random_seed(0)
        model = build_cnn6(None if method == "plain" else method)
        model.compile(
            optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        start = time.perf_counter()
        model.train_on_batch(x, y)
        first = time.perf_counter() - start
        model.train_on_batch(x, y)
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            model.train_on_batch(x, y)
            times.append(time.perf_counter() - start)
        results[method] = (first, 1000 * statistics.median(times))
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=".")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--dimensions", default="27,576,1024,2304")
    parser.add_argument("--methods", default=None, help="Default: the exact maps.")
    parser.add_argument("--skip_tests", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    import jax
    import keras

    lines = [
        f"Device: {jax.devices()[0].device_kind}, JAX {jax.__version__}, "
        f"Keras {keras.__version__} (backend {keras.backend.backend()})",
        "",
    ]
    if not args.skip_tests:
        lines += [f"Core tests on JAX/GPU: {run_tests(args.out, args.workers)}", ""]
    print("\n".join(lines), flush=True)
    dimensions = [int(d) for d in args.dimensions.split(",")]
    rows = time_maps(dimensions, args.repeats)
    lines += [
        "| orthogonalizer | d | first call (s) | forward+backward (ms) | max abs(RᵀR − I) |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {n} | {d} | {f:.2f} | {1000 * m:.2f} | {e:.1e} |"
        for n, d, f, m, e in rows
    ]
    print("\n".join(lines[-len(rows) - 2 :]), flush=True)
    if args.methods:
        methods = args.methods.split(",")
    else:
        from benchmarks.cnn6 import orthogonalizer_names

        methods = orthogonalizer_names(lambda cls: cls.is_exact)
    results = time_cnn6(methods, args.steps)
    plain = results["plain"][1]
    lines += [
        "",
        "| CNN-6 built with | step (ms) | ratio to plain | first step (s) |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {m} | {s:.1f} | {s / plain:.2f} | {f:.1f} |"
        for m, (f, s) in results.items()
    ]
    report = "\n".join(lines)
    print(report, flush=True)
    with open(os.path.join(args.out, "gpu_report.md"), "w") as f:
        f.write(report + "\n")


if __name__ == "__main__":
    main()
