"""Times one training step of an OPTDense at large fan-in against a matmul.

Usage:

    .venv/bin/python benchmarks/large_d_benchmark.py [--dims 1024 2304 4096]
        [--block_size 64]

For every fan-in d and method it builds `OPTDense(64)` on inputs of width
d, compiles it with SGD (momentum 0.9; `StiefelSGD` for OGD) and MSE, and
times `train_on_batch` on a batch of 128 (median of `--repeats` after one
warm-up call) and one `predict_on_batch`. A `keras.layers.Dense(64)` step
and one d×d float32 matmul (`keras.ops.matmul`, in a `tf.function`) are
timed in the same process, and every OPT time is also given in units of
the 4096×4096 matmul, so that machines of different speed compare. Each
(method, d) runs in a fresh subprocess, which also reports `max |RᵀR − I|`
of `layer.rotation` after the steps. With `--block_size b` the OPT layers
are `OPTDense(64, block_size=b)` (block-diagonal R). Prints a markdown
table.
"""

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

METHODS = ["plain", "gram_schmidt", "householder", "cayley", "stiefel"]


def _median(values):
    values = sorted(values)
    return values[len(values) // 2]


def matmul_seconds(d, repeats):
    import numpy as np
    import tensorflow as tf

    a = tf.constant(np.random.default_rng(0).standard_normal((d, d)), "float32")
    product = tf.function(lambda: tf.matmul(a, a))
    product().numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        product().numpy()
        times.append(time.perf_counter() - start)
    return _median(times)


def step_seconds(method, d, repeats, jit_compile=False, block_size=None):
    import keras
    import numpy as np

    import keras_opt

    keras.utils.set_random_seed(0)
    if method == "plain":
        layer = keras.layers.Dense(64)
    else:
        layer = keras_opt.layers.OPTDense(
            64, orthogonalizer=method, block_size=block_size
        )
    model = keras.Sequential([keras.Input((d,)), layer])
    if method == "stiefel":
        optimizer = keras_opt.optimizers.StiefelSGD(0.01, momentum=0.9)
    else:
        optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    model.compile(optimizer, "mse", jit_compile=jit_compile)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((128, d)).astype("float32")
    y = rng.standard_normal((128, 64)).astype("float32")
    model.train_on_batch(x, y)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    model.predict_on_batch(x)
    start = time.perf_counter()
    model.predict_on_batch(x)
    predict = time.perf_counter() - start
    error = None
    if method != "plain":
        error = float(keras_opt.linalg.orthogonality_error(layer.rotation))
    return _median(times), predict, error


def child(method, d, repeats, jit_compile, block_size):
    step, predict, error = step_seconds(
        method, d, repeats, jit_compile, block_size
    )
    matmul = matmul_seconds(4096, max(repeats, 2))
    print(
        json.dumps(
            {
                "method": method,
                "d": d,
                "step": step,
                "predict": predict,
                "error": error,
                "matmul": matmul,
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[1024, 2304, 4096])
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--jit_compile", action="store_true", help="Compile the steps with XLA."
    )
    parser.add_argument(
        "--block_size", type=int, default=None,
        help="block_size of the OPT layers (default: one d×d rotation).",
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(
            args.child[0], int(args.child[1]), args.repeats, args.jit_compile,
            args.block_size,
        )
        return
    print(f"load average before: {os.getloadavg()}", flush=True)
    print(f"XLA: {'on' if args.jit_compile else 'off'}")
    print(f"block_size: {args.block_size}")
    print(
        "| d | method | step (s) | step / 4096² matmul | predict (s) "
        "| max abs(RᵀR − I) | 4096² matmul (s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for d in args.dims:
        for method in args.methods:
            output = subprocess.run(
                [
                    sys.executable,
                    os.path.abspath(__file__),
                    "--child",
                    method,
                    str(d),
                    "--repeats",
                    str(args.repeats),
                ]
                + (["--jit_compile"] if args.jit_compile else [])
                + (
                    ["--block_size", str(args.block_size)]
                    if args.block_size
                    else []
                ),
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            row = json.loads(output.strip().splitlines()[-1])
            error = "–" if row["error"] is None else f"{row['error']:.1e}"
            print(
                f"| {d} | {method} | {row['step']:.3f} | "
                f"{row['step'] / row['matmul']:.3f} | {row['predict']:.2f} | "
                f"{error} | {row['matmul']:.2f} |",
                flush=True,
            )
    print(f"load average after: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
