"""Serving cost of OPT models: folded vs plain vs unfolded, and `predict`.

Usage:

    .venv/bin/python benchmarks/serving_benchmark.py [--dims 1024,4096]

For each fan-in d, a model `Input(d) → OPTDense(64, GS)` is trained for one
step, then:

- `serve (ms)`: one example through `tf.saved_model.load(dir).serve`, for the
  SavedModel of the unfolded OPT model, of `keras_opt.fold(model)` and of
  the same network built from a plain `Dense` (median of repeats, after a
  warm-up call); the size of each SavedModel directory;
- `predict (ms)`: one `model.predict` call on 32 examples of the OPT model,
  the first after a training step and the next ones with the weights
  unchanged (OPT layers compute W from their variables for every batch;
  releases before 0.3 reused a cached W while the weights were unchanged).

It prints markdown tables.
"""

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import _timing  # noqa: E402


def _median_ms(function, repeats):
    return 1000 * _timing.median_seconds(function, repeats)


def _size_mb(path):
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total / 2**20


def measure(dim, units, repeats, workdir):
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_opt

    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, dim)).astype("float32")
    y = rng.standard_normal((32, units)).astype("float32")
    inputs = keras.Input((dim,), name="features")
    model = keras.Model(
        inputs, keras_opt.layers.OPTDense(units, orthogonalizer="gs")(inputs)
    )
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    model.train_on_batch(x, y)
    plain = keras.Model(inputs, keras.layers.Dense(units)(inputs))
    plain.set_weights(keras_opt.fold(model).get_weights())

    rows = []
    one = tf.constant(x[:1])
    for label, candidate in (
        ("unfolded OPT", model),
        ("folded", keras_opt.fold(model)),
        ("plain Dense", plain),
    ):
        path = os.path.join(workdir, f"{label.replace(' ', '_')}_{dim}")
        candidate.export(path, verbose=False)
        served = tf.saved_model.load(path)
        ms = _median_ms(lambda: served.serve(one), repeats)
        rows.append((label, ms, _size_mb(path)))

    predict_rows = []
    model.train_on_batch(x, y)
    start = time.perf_counter()
    model.predict(x, verbose=0)
    predict_rows.append(("first after a training step", time.perf_counter() - start))
    again = _median_ms(lambda: model.predict(x, verbose=0), repeats) / 1000
    predict_rows.append(("weights unchanged (median)", again))
    return rows, predict_rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dims", default="1024,4096")
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    import keras
    import tensorflow as tf

    print(
        f"Machine: {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    with tempfile.TemporaryDirectory() as workdir:
        print("| fan-in d | SavedModel of | serve 1 example (ms) | size (MiB) |")
        print("|---|---|---|---|")
        predict_table = []
        for dim in [int(d) for d in args.dims.split(",")]:
            rows, predict_rows = measure(dim, args.units, args.repeats, workdir)
            for label, ms, size in rows:
                print(f"| {dim} | {label} | {ms:.2f} | {size:.2f} |")
            predict_table += [(dim, *row) for row in predict_rows]
        print()
        print("| fan-in d | `model.predict` (32 examples) | time (ms) |")
        print("|---|---|---|")
        for dim, label, seconds in predict_table:
            print(f"| {dim} | {label} | {1000 * seconds:.1f} |")


if __name__ == "__main__":
    main()
