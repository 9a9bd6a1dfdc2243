"""Times a `model.fit` step of a CLS-OPT head against a plain Dense head.

Usage:

    .venv/bin/python benchmarks/cls_opt_benchmark.py
    .venv/bin/python benchmarks/cls_opt_benchmark.py --num_classes=10000

The model is the classifier alone, on d-dimensional features (d = 512,
C = 100,000 classes by default): `keras_opt.layers.OPTClassifier` (CLS-OPT,
Gram–Schmidt, no bias) against `keras.layers.Dense(C, use_bias=False)`, both
trained by momentum SGD on a softmax cross-entropy over all C classes, batch
128, on random features and labels. Each head runs in a fresh subprocess so
that the peak resident set size (`ru_maxrss`, TensorFlow included) is its
own; the step time is the median over `--steps` `model.fit` steps after one
warm-up epoch, from a callback's batch timestamps. It also reports the size
of the saved `.keras` file, for CLS-OPT with and without `save_basis`.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def measure(head, num_classes, dim, batch_size, steps):
    import resource
    import statistics
    import time

    import keras
    import numpy as np

    from keras_opt import layers

    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if head == "dense":
        classifier = keras.layers.Dense(num_classes, use_bias=False)
    else:
        classifier = layers.OPTClassifier(
            num_classes, save_basis=head != "cls_opt_seeded"
        )
    model = keras.Sequential([keras.Input((dim,)), classifier])
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch_size * steps, dim)).astype("float32")
    y = rng.integers(0, num_classes, batch_size * steps)
    times = []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.start)

    model.fit(x[:batch_size], y[:batch_size], batch_size=batch_size, verbose=0)
    model.fit(
        x, y, batch_size=batch_size, epochs=1, verbose=0, callbacks=[Timer()]
    )
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.keras")
        model.save(path)
        file_size = os.path.getsize(path)
    return {
        "head": head,
        "num_classes": num_classes,
        "dim": dim,
        "step_s": statistics.median(times),
        "base_rss_mib": base_rss / 1024,
        "peak_rss_mib": peak_rss / 1024,
        "file_mib": file_size / 2**20,
        "trainable": sum(
            int(np.prod(v.shape)) for v in model.trainable_weights
        ),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--num_classes", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--heads", default="dense,cls_opt,cls_opt_seeded")
    parser.add_argument("--child", default=None)
    args = parser.parse_args()
    if args.child is not None:
        row = measure(
            args.child, args.num_classes, args.dim, args.batch_size, args.steps
        )
        print(json.dumps(row))
        return
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root, TF_CPP_MIN_LOG_LEVEL="3")
    rows = []
    for head in args.heads.split(","):
        command = [
            sys.executable, __file__, "--child", head,
            "--num_classes", str(args.num_classes), "--dim", str(args.dim),
            "--batch_size", str(args.batch_size), "--steps", str(args.steps),
        ]
        output = subprocess.run(
            command, capture_output=True, text=True, env=env, check=True
        ).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
    print(
        "| head | C | d | trained weights | fit step (s) | RSS before (MiB) "
        "| peak RSS (MiB) | .keras file (MiB) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    names = {
        "dense": "Dense",
        "cls_opt": "CLS-OPT",
        "cls_opt_seeded": "CLS-OPT, save_basis=False",
    }
    for row in rows:
        print(
            f"| {names[row['head']]} | {row['num_classes']:,} | {row['dim']} "
            f"| {row['trainable']:,} | {row['step_s']:.3f} "
            f"| {row['base_rss_mib']:.0f} | {row['peak_rss_mib']:.0f} "
            f"| {row['file_mib']:.1f} |"
        )


if __name__ == "__main__":
    main()
