"""What the OPT maps are made of: linear-algebra kernels in units of a matmul.

Usage:

    .venv/bin/python benchmarks/linalg_kernels_benchmark.py [--dims 576 1024 2048 4096] [--jit_compile]

For every d it times, in a `tf.function` (with `--jit_compile`: XLA) on a
float32 d×d matrix, the median of `--repeats` calls after one warm-up of:
a d×d matmul (the unit), TensorFlow's QR (`tf.linalg.qr`, Eigen
Householder), `keras_opt.linalg.cholesky_qr` (of a nearly orthonormal X, as
the Stiefel optimizers use it), a Cholesky factorization, a triangular
solve with d right-hand sides, an LU solve (`tf.linalg.solve`) and an SVD
(`tf.linalg.svd`, what Löwdin costs); `--skip` drops kernels (the SVD
takes minutes at d = 4096). Each d runs in a fresh subprocess. Prints a
markdown table: seconds, and each kernel in units of the matmul.
"""

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

KERNELS = ("matmul", "qr", "cholesky_qr", "cholesky", "triangular_solve",
           "lu_solve", "svd")


def _inputs(d):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(d)
    a = rng.standard_normal((d, d)) / np.sqrt(d)
    spd = a @ a.T + np.eye(d)
    near = np.linalg.qr(rng.standard_normal((d, d)))[0] + 1e-4 * a
    return {name: tf.constant(value, "float32") for name, value in (
        ("a", a), ("spd", spd), ("near", near),
        ("lower", np.linalg.cholesky(spd)))}


def _kernels(x):
    import tensorflow as tf

    from keras_opt import linalg

    return {
        "matmul": lambda: tf.matmul(x["a"], x["a"]),
        "qr": lambda: tf.linalg.qr(x["a"])[0],
        "cholesky_qr": lambda: linalg.cholesky_qr(x["near"]),
        "cholesky": lambda: tf.linalg.cholesky(x["spd"]),
        "triangular_solve": lambda: tf.linalg.triangular_solve(
            x["lower"], x["a"]),
        "lu_solve": lambda: tf.linalg.solve(x["spd"], x["a"]),
        "svd": lambda: tf.linalg.svd(x["a"])[0],
    }


def _seconds(function):
    start = time.perf_counter()
    function().numpy()
    return time.perf_counter() - start


def child(d, repeats, jit_compile, skip):
    import tensorflow as tf

    x = _inputs(d)
    seconds = {}
    for name, kernel in _kernels(x).items():
        if name in skip:
            continue
        function = tf.function(kernel, jit_compile=jit_compile)
        function().numpy()
        times = sorted(_seconds(function) for _ in range(repeats))
        seconds[name] = times[len(times) // 2]
    print(json.dumps({"d": d, "seconds": seconds}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+",
                        default=[576, 1024, 2048, 4096])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jit_compile", action="store_true")
    parser.add_argument("--skip", nargs="*", default=[])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.repeats, args.jit_compile, args.skip)
        return
    print(f"load average before: {os.getloadavg()}", flush=True)
    print(f"XLA: {'on' if args.jit_compile else 'off'}")
    print("| d | kernel | seconds | in matmuls |")
    print("|---|---|---|---|")
    for d in args.dims:
        command = [sys.executable, os.path.abspath(__file__), "--child",
                   str(d), "--repeats", str(args.repeats), "--skip",
                   *args.skip] + (["--jit_compile"] if args.jit_compile
                                  else [])
        output = subprocess.run(command, check=True, capture_output=True,
                                text=True).stdout
        seconds = json.loads(output.strip().splitlines()[-1])["seconds"]
        for name, value in seconds.items():
            print(f"| {d} | {name} | {value:.4g} | "
                  f"{value / seconds['matmul']:.2f} |", flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
