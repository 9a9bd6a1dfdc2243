"""Times every orthogonalizer and the CNN-6 training step, OPT against plain.

Usage:

    .venv/bin/python benchmarks/orthogonalizers_benchmark.py

Part 1 times forward + backward of `sum(R(P) · C)` for every registered
orthogonalizer and d ∈ {27, 576, 1024, 2304} (float32, `tf.function`
without XLA; median of repeats) and reports `max |RᵀR − I|`. Part 2 times one
training step (`train_on_batch`, batch 128, 32×32×3, 100 classes, SGD with
momentum) of CNN-6 built from OPT layers with each method and from plain
`Conv2D`, each in a fresh subprocess that also reports its peak resident
memory. It prints markdown tables. Part 2 runs on any Keras backend:

    KERAS_BACKEND=jax OPENBLAS_NUM_THREADS=1 \\
        .venv/bin/python benchmarks/orthogonalizers_benchmark.py --skip_maps
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.cnn6 import orthogonalizer_names  # noqa: E402



def time_orthogonalizers(dimensions, repeats):
    import numpy as np
    import tensorflow as tf

    from keras_opt import linalg
    from keras_opt import orthogonalizers

    rows = []
    for name in orthogonalizer_names():
        orthogonalizer = orthogonalizers.get(name)
        for d in dimensions:
            rng = np.random.default_rng(d)
            p = tf.Variable(rng.standard_normal((d, d)).astype("float32"))
            c = tf.constant(rng.standard_normal((d, d)).astype("float32"))

            @tf.function
            def step():
                with tf.GradientTape() as tape:
                    loss = tf.reduce_sum(orthogonalizer(p) * c)
                return tape.gradient(loss, p)

            start = time.perf_counter()
            step()
            first = time.perf_counter() - start
            times = []
            for _ in range(repeats if d < 2000 else max(3, repeats // 3)):
                start = time.perf_counter()
                step().numpy()
                times.append(time.perf_counter() - start)
            error = float(linalg.orthogonality_error(orthogonalizer(p)))
            rows.append((name, d, first, statistics.median(times), error))
    return rows


def cnn6_child(orthogonalizer, steps, jit_compile, block_size=None):
    import keras
    import numpy as np

    import keras_opt
    from benchmarks.cnn6 import build_cnn6

    keras.utils.set_random_seed(0)
    model = build_cnn6(
        None if orthogonalizer == "plain" else orthogonalizer,
        block_size=block_size,
    )
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    if orthogonalizer != "plain":
        if keras_opt.orthogonalizers.get(orthogonalizer).is_stiefel:
            optimizer = keras_opt.optimizers.StiefelSGD(0.1, momentum=0.9)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (128, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 100, (128,))
    start = time.perf_counter()
    model.train_on_batch(x, y)
    first = time.perf_counter() - start
    for _ in range(2):
        model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(
        json.dumps(
            {
                "first_s": first,
                "step_ms": 1000 * statistics.median(times),
                "peak_mib": peak,
                "jit_compile": bool(model.jit_compile),
            }
        )
    )


def time_cnn6(methods, steps, jit_compile, block_size=None, rounds=1):
    """Per method, the child's results; over `rounds` interleaved rounds
    (plain and every method once per round) the median step time."""
    runs = {method: [] for method in ["plain"] + methods}
    for _ in range(rounds):
        for method in runs:
            command = [sys.executable, __file__, "--cnn6_child", method]
            command += ["--steps", str(steps)]
            if jit_compile:
                command.append("--jit_compile")
            if block_size:
                command += ["--block_size", str(block_size)]
            output = subprocess.run(
                command,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            runs[method].append(json.loads(output.strip().splitlines()[-1]))
            print(method, runs[method][-1], file=sys.stderr, flush=True)
    results = {}
    for method, found in runs.items():
        results[method] = dict(found[-1])
        results[method]["step_ms"] = statistics.median(
            run["step_ms"] for run in found
        )
    return results


def machine():
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        backend = f"TensorFlow {tf.__version__}"
    elif backend == "jax":
        import jax

        backend = (
            f"JAX {jax.__version__} (OPENBLAS_NUM_THREADS="
            f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')})"
        )
    return f"{os.cpu_count()} CPU cores ({model}), {backend}, Keras {keras.__version__}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dimensions", default="27,576,1024,2304")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--methods", default=",".join(orthogonalizer_names()))
    parser.add_argument(
        "--jit_compile",
        action="store_true",
        help="Compile CNN-6 with XLA (a map with supports_jit=False falls back).",
    )
    parser.add_argument(
        "--block_size", type=int, default=None,
        help="block_size of CNN-6's OPT layers (default: full rotations).",
    )
    parser.add_argument(
        "--rounds", type=int, default=1,
        help="Interleaved rounds of the CNN-6 steps; median over rounds.",
    )
    parser.add_argument("--skip_maps", action="store_true")
    parser.add_argument("--skip_cnn6", action="store_true")
    parser.add_argument("--cnn6_child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cnn6_child:
        cnn6_child(
            args.cnn6_child, args.steps, args.jit_compile, args.block_size
        )
        return

    print(f"Machine: {machine()}\n")
    if not args.skip_maps:
        dimensions = [int(d) for d in args.dimensions.split(",")]
        rows = time_orthogonalizers(dimensions, args.repeats)
        print("| orthogonalizer | d | first call (s) | forward+backward (ms) | max abs(RᵀR − I) |")
        print("|---|---|---|---|---|")
        for name, d, first, median, error in rows:
            print(f"| {name} | {d} | {first:.2f} | {1000 * median:.1f} | {error:.1e} |")
        print()
    if not args.skip_cnn6:
        results = time_cnn6(
            args.methods.split(","), args.steps, args.jit_compile,
            args.block_size, args.rounds,
        )
        print(f"block_size: {args.block_size}, rounds: {args.rounds}")
        plain = results["plain"]
        print(
            "| CNN-6 built with | XLA | step (ms) | ratio to plain | first step (s) "
            "| peak RSS (MiB) | RSS / plain |"
        )
        print("|---|---|---|---|---|---|---|")
        for method, result in results.items():
            print(
                f"| {method} | {'on' if result['jit_compile'] else 'off'} | "
                f"{result['step_ms']:.0f} | "
                f"{result['step_ms'] / plain['step_ms']:.2f} | "
                f"{result['first_s']:.1f} | {result['peak_mib']:.0f} | "
                f"{result['peak_mib'] / plain['peak_mib']:.2f} |"
            )


if __name__ == "__main__":
    main()
