"""The training step of the main-job network, OPT against plain, per backend.

Usage:

    .venv/bin/python benchmarks/backend_step_benchmark.py
    .venv/bin/python benchmarks/backend_step_benchmark.py \\
        --backends=tensorflow,jax --methods=plain,gram_schmidt,ogd --rounds=5

For each backend, in its own subprocess (`KERAS_BACKEND`), it builds the
main job's network (`examples.fashion_mnist.build_model`: two OPTConv2D, an
OPTDense(128) and a plain classifier) for every method, compiled as the
main job compiles it (`StiefelSGD(0.1, momentum=0.9)`, sparse categorical
cross-entropy, accuracy), and times `model.fit` on random 28×28×1 images,
batch 128. After one warm-up fit per model (tracing and compilation), it
runs `--rounds` rounds; in each, every model fits `--steps` steps in turn,
so a change of machine load hits all methods alike. A step's time is the
median over rounds of the round's time divided by the steps. It prints a
markdown table with each method's step time and its ratio to the plain
network's on the same backend (`OPT/plain`), which is what a comparison of
backends measured on a shared machine can rely on. The JAX worker gets
`OPENBLAS_NUM_THREADS=1` unless `--jax_openblas_threads` says otherwise
(README, "Backends").
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def build(method):
    import keras

    import keras_opt
    from examples import fashion_mnist

    model = fashion_mnist.build_model(method)
    model.compile(
        optimizer=keras_opt.optimizers.StiefelSGD(0.1, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def time_steps(methods, steps, rounds, batch_size):
    """`{method: median seconds per step}` on the current backend."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((steps * batch_size, 28, 28, 1), dtype="float32")
    y = rng.integers(0, 10, steps * batch_size)
    models = {method: build(method) for method in methods}
    fit = dict(x=x, y=y, batch_size=batch_size, shuffle=False, verbose=0)
    for model in models.values():
        model.fit(**fit)  # Trace and compile.
    times = {method: [] for method in methods}
    for _ in range(rounds):
        for method, model in models.items():
            start = time.perf_counter()
            model.fit(**fit)
            times[method].append((time.perf_counter() - start) / steps)
    return {method: statistics.median(t) for method, t in times.items()}


def run_backend(backend, args):
    """Runs this script as a worker on `backend`; returns its JSON result."""
    command = [
        sys.executable, os.path.abspath(__file__), "--worker",
        f"--methods={args.methods}", f"--steps={args.steps}",
        f"--rounds={args.rounds}", f"--batch_size={args.batch_size}",
    ]
    env = dict(os.environ, KERAS_BACKEND=backend)
    if backend == "jax" and args.jax_openblas_threads != "unset":
        env["OPENBLAS_NUM_THREADS"] = args.jax_openblas_threads
    output = subprocess.run(
        command, env=env, capture_output=True, text=True, check=False
    )
    if output.returncode != 0:
        raise RuntimeError(f"{backend} worker failed:\n{output.stderr}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def table(results):
    lines = [
        "| backend | method | step (ms) | OPT/plain |",
        "|---|---|---|---|",
    ]
    for backend, times in results.items():
        plain = times.get("plain")
        for method, seconds in times.items():
            ratio = f"{seconds / plain:.2f}" if plain else "–"
            lines.append(
                f"| {backend} | {method} | {1000 * seconds:.1f} | {ratio} |"
            )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--methods", default="plain,gram_schmidt")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument(
        "--jax_openblas_threads",
        default="1",
        help="OPENBLAS_NUM_THREADS of the JAX worker (jaxlib's CPU LAPACK "
        "runs on SciPy's OpenBLAS), or 'unset' to inherit the environment.",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    methods = args.methods.split(",")
    if args.worker:
        times = time_steps(methods, args.steps, args.rounds, args.batch_size)
        print(json.dumps(times))
        return
    results = {b: run_backend(b, args) for b in args.backends.split(",")}
    print(
        f"Main-job network, batch {args.batch_size}, median of "
        f"{args.rounds} rounds of {args.steps} steps; "
        f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs; JAX with OPENBLAS_NUM_THREADS="
        f"{args.jax_openblas_threads}.\n"
    )
    print(table(results))


if __name__ == "__main__":
    main()
