"""Time and peak memory of `keras_opt.energy.hyperspherical_energy`.

Usage: .venv/bin/python benchmarks/energy_benchmark.py [--sizes 1000,10000]

Each size runs in a fresh subprocess, so that the peak resident set size
(`resource.getrusage(RUSAGE_SELF).ru_maxrss`, which includes TensorFlow's
allocator, unlike `tracemalloc`) belongs to that size alone. The baseline
RSS after importing Keras and creating the kernel is reported too, so the
extra memory of the energy computation is the difference. Timings are the
best of `--repeats` eager calls after one warm-up call (float32, s=2,
d=512, default chunk_size), with the process CPU time of that call, plus
one value-and-gradient call for n <= 10,000 (NaN in the table above that).
"""

import argparse
import json
import os
import subprocess
import sys


def measure(n, d, repeats, with_gradient):
    import resource
    import time

    import numpy as np
    import tensorflow as tf

    from keras_opt import energy

    weights = np.random.default_rng(0).normal(size=(d, n)).astype("float32")
    weights = tf.constant(weights)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    value = float(energy.hyperspherical_energy(weights))
    times, cpu_times = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        value = float(energy.hyperspherical_energy(weights))
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    forward_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if not with_gradient:
        return {
            "n": n, "d": d, "energy": value, "time_s": min(times),
            "cpu_s": min(cpu_times), "gradient_time_s": float("nan"),
            "base_rss_mib": base_rss / 1024,
            "forward_peak_rss_mib": forward_rss / 1024,
            "gradient_peak_rss_mib": float("nan"),
        }
    start = time.perf_counter()
    with tf.GradientTape() as tape:
        tape.watch(weights)
        result = energy.hyperspherical_energy(weights)
    gradient = tape.gradient(result, weights)
    float(tf.reduce_sum(gradient))
    gradient_time = time.perf_counter() - start
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "n": n,
        "d": d,
        "energy": value,
        "time_s": min(times),
        "cpu_s": min(cpu_times),
        "gradient_time_s": gradient_time,
        "base_rss_mib": base_rss / 1024,
        "forward_peak_rss_mib": forward_rss / 1024,
        "gradient_peak_rss_mib": peak_rss / 1024,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", type=int, default=None)
    args = parser.parse_args()
    if args.child is not None:
        small = args.child <= 10000
        repeats = args.repeats if small else 1
        print(json.dumps(measure(args.child, args.dim, repeats, small)))
        return
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root, TF_CPP_MIN_LOG_LEVEL="3")
    rows = []
    for n in (int(size) for size in args.sizes.split(",")):
        output = subprocess.run(
            [sys.executable, __file__, "--child", str(n), "--dim",
             str(args.dim), "--repeats", str(args.repeats)],
            capture_output=True, text=True, env=env, check=True,
        ).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
    print("| n | d | E_2 | forward wall (s) | forward CPU (s) "
          "| forward + gradient wall (s) "
          "| RSS before (MiB) | peak RSS forward (MiB) "
          "| peak RSS with gradient (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['n']:,} | {row['d']} | {row['energy']:.6f} "
            f"| {row['time_s']:.2f} | {row['cpu_s']:.2f} "
            f"| {row['gradient_time_s']:.2f} "
            f"| {row['base_rss_mib']:.0f} | {row['forward_peak_rss_mib']:.0f} "
            f"| {row['gradient_peak_rss_mib']:.0f} |"
        )


if __name__ == "__main__":
    main()
