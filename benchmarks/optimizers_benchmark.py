"""Times the Stiefel optimizers and the CNN-6 training step, OGD vs plain.

Usage:

    .venv/bin/python benchmarks/optimizers_benchmark.py

Part 1 times one optimizer step (`optimizer.apply` in a `tf.function`
without XLA, float32, median of repeats after a warm-up) on a single Stiefel
variable of shape (d, d) for d ∈ {64, 576, 2304}, for `StiefelSGD` and
`StiefelAdam` with both retractions, and reports `max |XᵀX − I|` after the
timed steps. Part 2 times one training step (`train_on_batch`, batch 128,
32×32×3 synthetic images, 100 classes) of CNN-6 (opt_reference.md §7.1)
built from `OPTConv2D(..., orthogonalizer="ogd")` and trained by
`StiefelSGD` (OPT's OGD recipe: lr 0.1, rotations 0.02, momentum 0.9),
against the plain `Conv2D` network trained by `keras.optimizers.SGD`. The two
models alternate step by step so that load from other processes hits both
alike. It prints markdown tables.
"""

import argparse
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import _timing  # noqa: E402


def _median_seconds(fn, repeats, warmup=1):
    return _timing.median_seconds(fn, repeats, warmups=warmup)


def optimizer_steps(dims, repeats):
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_opt import optimizers
    from keras_opt import variable_tags

    rows = []
    for dim in dims:
        rng = np.random.default_rng(0)
        x0 = np.linalg.qr(rng.standard_normal((dim, dim)))[0].astype("f4")
        grad = tf.constant(
            rng.standard_normal((dim, dim)).astype("f4") / np.sqrt(dim)
        )
        for cls in (optimizers.StiefelSGD, optimizers.StiefelAdam):
            for retraction in ("cayley", "qr"):
                variable = variable_tags.mark_stiefel(keras.Variable(x0))
                optimizer = cls(learning_rate=0.02, retraction=retraction)
                optimizer.build([variable])

                @tf.function(jit_compile=False)
                def step():
                    optimizer.apply([grad], [variable])

                reps = repeats if dim < 2000 else max(2, repeats // 4)
                seconds = _median_seconds(lambda: step(), reps)
                x = variable.numpy().astype(np.float64)
                error = np.max(np.abs(x.T @ x - np.eye(dim)))
                rows.append(
                    (cls.__name__, retraction, dim, seconds * 1e3, error)
                )
                print(
                    f"  {cls.__name__} {retraction} d={dim}: "
                    f"{seconds * 1e3:.2f} ms",
                    file=sys.stderr,
                    flush=True,
                )
    return rows


def cnn6_steps(repeats, batch_size=128):
    import keras
    import numpy as np

    from benchmarks.cnn6 import build_cnn6
    from keras_opt import layers
    from keras_opt import optimizers

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch_size, 32, 32, 3)).astype("float32")
    labels = rng.integers(0, 100, (batch_size,))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    keras.utils.set_random_seed(0)
    plain = build_cnn6(None)
    plain.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss=loss,
        jit_compile=False,
    )
    ogd = build_cnn6("ogd")
    ogd.compile(
        optimizer=optimizers.StiefelSGD(
            learning_rate=0.1, momentum=0.9, rotation_learning_rate=0.02
        ),
        loss=loss,
        jit_compile=False,
    )
    for _ in range(3):
        plain.train_on_batch(images, labels)
        ogd.train_on_batch(images, labels)
    times = {"plain": [], "ogd": []}
    for _ in range(repeats):
        for name, model in (("plain", plain), ("ogd", ogd)):
            start = time.perf_counter()
            model.train_on_batch(images, labels)
            times[name].append(time.perf_counter() - start)
    errors = []
    for layer in ogd.layers:
        if isinstance(layer, layers.BaseOPT):
            r = keras.ops.convert_to_numpy(layer.rotation).astype(np.float64)
            errors.append(np.max(np.abs(r.T @ r - np.eye(r.shape[1]))))
    plain_s = statistics.median(times["plain"])
    ogd_s = statistics.median(times["ogd"])
    return plain_s, ogd_s, max(errors)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[64, 576, 2304])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--cnn6-repeats", type=int, default=10)
    parser.add_argument("--skip-cnn6", action="store_true")
    args = parser.parse_args()

    import keras

    print(
        f"Machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; keras {keras.__version__}, "
        f"backend {keras.backend.backend()}\n"
    )
    rows = optimizer_steps(args.dims, args.repeats)
    print("| optimizer | retraction | d | step (ms) | max abs(XᵀX − I) |")
    print("|---|---|---|---|---|")
    for name, retraction, dim, ms, error in rows:
        print(f"| {name} | {retraction} | {dim} | {ms:.2f} | {error:.1e} |")
    if args.skip_cnn6:
        return
    plain_s, ogd_s, error = cnn6_steps(args.cnn6_repeats)
    print()
    print("| CNN-6, batch 128 | step (ms) | ratio to plain |")
    print("|---|---|---|")
    print(f"| plain Conv2D + SGD | {plain_s * 1e3:.0f} | 1.00 |")
    print(
        f"| OPT (OGD) + StiefelSGD | {ogd_s * 1e3:.0f} | "
        f"{ogd_s / plain_s:.2f} |"
    )
    print(f"\nmax abs(RᵀR − I) over the OGD rotations: {error:.1e}")


if __name__ == "__main__":
    main()
