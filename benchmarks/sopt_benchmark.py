"""Times S-OPT (p = d/4) against full OPT and the plain network.

Usage:

    .venv/bin/python benchmarks/sopt_benchmark.py
    .venv/bin/python benchmarks/sopt_benchmark.py --models=cnn6 --steps=10

For CNN-6 and Wide CNN-9 (`keras_opt.models`, 100 classes) it times one
training step (`train_on_batch`, batch 128 of 32×32×3 random images,
momentum SGD, Gram–Schmidt) of three variants: the plain network, full OPT
and S-OPT with p = d/4 (the first convolution full OPT, as in the paper),
and reports the paper's parameter count. Each variant runs in a fresh
subprocess, so the peak resident set size (`ru_maxrss`, TensorFlow
included) is its own; the step time is the median of `--steps` steps after
one warm-up step. One S-OPT episode boundary (merge, resample, reset) is
timed too.
"""

import argparse
import json
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

VARIANTS = {
    "plain": {"orthogonalizer": None},
    "opt": {"orthogonalizer": "gram_schmidt"},
    "s_opt": {"orthogonalizer": "gram_schmidt", "subspace": 0.25},
}


def measure(model_name, variant, batch_size, steps):
    import resource
    import statistics
    import time

    import keras
    import numpy as np

    from keras_opt import callbacks
    from keras_opt import models

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model = getattr(models, model_name)(**VARIANTS[variant])
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch_size, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 100, batch_size)
    model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    episode_s = float("nan")
    if variant == "s_opt":
        start = time.perf_counter()
        callbacks.next_subspace_episode(model)
        episode_s = time.perf_counter() - start
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "model": model_name,
        "variant": variant,
        "count": models.paper_parameter_count(model),
        "step_s": statistics.median(times),
        "episode_s": episode_s,
        "base_rss_mib": base_rss / 1024,
        "peak_rss_mib": peak_rss / 1024,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="cnn6,wide_cnn9")
    parser.add_argument("--variants", default="plain,opt,s_opt")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--child", default=None)
    args = parser.parse_args()
    if args.child is not None:
        model_name, variant = args.child.split(":")
        row = measure(model_name, variant, args.batch_size, args.steps)
        print(json.dumps(row))
        return
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root, TF_CPP_MIN_LOG_LEVEL="3")
    print(
        "| network | variant | paper params | step (s) | episode end (s) "
        "| RSS before (MiB) | peak RSS (MiB) |"
    )
    print("|---|---|---|---|---|---|---|")
    for model_name in args.models.split(","):
        for variant in args.variants.split(","):
            command = [
                sys.executable, __file__, "--child", f"{model_name}:{variant}",
                "--batch_size", str(args.batch_size),
                "--steps", str(args.steps),
            ]
            output = subprocess.run(
                command, capture_output=True, text=True, env=env, check=True
            ).stdout
            row = json.loads(output.strip().splitlines()[-1])
            print(
                f"| {row['model']} | {row['variant']} | {row['count']:,} "
                f"| {row['step_s']:.3f} | {row['episode_s']:.3f} "
                f"| {row['base_rss_mib']:.0f} | {row['peak_rss_mib']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
